/**
 * Name server configuration: RocketMQ's `namesrv.properties` keys where they
 * exist. Each default is written once, here. Durations are milliseconds.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { OptionsOf, Schema } from '../common/config/options.js';

export const DEFAULT_NAMESRV_PORT = 9876;
/** How often brokers silent for too long are dropped (RocketMQ: 10 s). */
export const DEFAULT_SCAN_NOT_ACTIVE_BROKER_INTERVAL_MS = 10_000;
/** Silence after which a broker is dropped when its registration names no timeout (RocketMQ: 120 s). */
export const DEFAULT_BROKER_EXPIRE_MS = 120_000;
export const DEFAULT_KV_CONFIG_PATH = join(homedir(), 'namesrv', 'kvConfig.json');

export const NAMESRV_SCHEMA = {
  listenPort: {
    type: 'int',
    default: DEFAULT_NAMESRV_PORT,
    min: 0,
    max: 65535,
    doc: 'gRPC port (0 = any free port)',
  },
  bindAddress: { type: 'string', default: '0.0.0.0', doc: 'address the gRPC server binds' },
  kvConfigPath: {
    type: 'string',
    default: DEFAULT_KV_CONFIG_PATH,
    doc: 'file holding the KV config (a leading ~ is the home directory)',
  },
  scanNotActiveBrokerInterval: {
    type: 'int',
    default: DEFAULT_SCAN_NOT_ACTIVE_BROKER_INTERVAL_MS,
    min: 10,
    doc: 'how often brokers that stopped heartbeating are dropped, ms',
  },
  brokerExpireMillis: {
    type: 'int',
    default: DEFAULT_BROKER_EXPIRE_MS,
    min: 100,
    doc: 'silence after which a broker is dropped when its registration names no timeout, ms',
  },
  metricsPort: {
    type: 'int',
    default: 0,
    min: 0,
    max: 65535,
    doc: 'Prometheus /metrics port (0 = off)',
  },
} satisfies Schema;

export type NamesrvOptions = OptionsOf<typeof NAMESRV_SCHEMA>;
