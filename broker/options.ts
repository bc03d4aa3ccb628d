/**
 * Broker configuration: RocketMQ's property names, types and defaults. Each
 * default is written once, here. Durations are milliseconds unless the key
 * says otherwise (fileReservedTime is hours, as in RocketMQ).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { OptionsOf, Schema } from '../common/config/options.js';
import {
  DEFAULT_DISK_SPACE_WARNING_LEVEL_RATIO,
  DEFAULT_MAX_OPEN_FILES,
} from './store/store-options.js';

export const BROKER_ROLES = ['ASYNC_MASTER', 'SYNC_MASTER', 'SLAVE'] as const;
export const FLUSH_DISK_TYPES = ['ASYNC_FLUSH', 'SYNC_FLUSH'] as const;

export const DEFAULT_BROKER_PORT = 10911;
export const DEFAULT_STORE_ROOT = join(homedir(), 'store');

export const BROKER_SCHEMA = {
  brokerClusterName: {
    type: 'string',
    default: 'DefaultCluster',
    doc: 'cluster this broker belongs to',
  },
  brokerName: {
    type: 'string',
    default: 'broker-a',
    doc: 'brokers with one name form a master/slave group',
  },
  brokerId: { type: 'int', default: 0, min: 0, doc: '0 = master, > 0 = slave' },
  brokerRole: {
    type: 'enum',
    values: BROKER_ROLES,
    default: 'ASYNC_MASTER',
    doc: 'replication role',
  },
  flushDiskType: {
    type: 'enum',
    values: FLUSH_DISK_TYPES,
    default: 'ASYNC_FLUSH',
    doc: 'when a send is answered relative to fdatasync',
  },
  namesrvAddr: {
    type: 'string',
    default: '',
    doc: 'name servers, ";"-separated (also -n or NAMESRV_ADDR)',
  },
  listenPort: {
    type: 'int',
    default: DEFAULT_BROKER_PORT,
    min: 0,
    max: 65535,
    doc: 'gRPC port (0 = any free port)',
  },
  bindAddress: { type: 'string', default: '0.0.0.0', doc: 'address the gRPC server binds' },
  brokerIP1: {
    type: 'string',
    default: '127.0.0.1',
    doc: 'address registered with the name servers',
  },
  storePathRootDir: { type: 'string', default: DEFAULT_STORE_ROOT, doc: 'root of the store' },
  storePathCommitLog: {
    type: 'string',
    default: '',
    doc: 'commitlog directory (default: ROOT/commitlog)',
  },
  storePathConsumeQueue: {
    type: 'string',
    default: '',
    doc: 'consume queue directory (default: ROOT/consumequeue)',
  },
  storePathIndex: { type: 'string', default: '', doc: 'index directory (default: ROOT/index)' },
  storeCheckpoint: {
    type: 'string',
    default: '',
    doc: 'checkpoint file (default: ROOT/checkpoint)',
  },
  abortFile: { type: 'string', default: '', doc: 'abort marker (default: ROOT/abort)' },
  mapedFileSizeCommitLog: {
    type: 'int',
    default: 1024 * 1024 * 1024,
    min: 64 * 1024,
    doc: 'commitlog segment size, bytes',
  },
  mapedFileSizeConsumeQueue: {
    type: 'int',
    default: 300_000 * 20,
    min: 20,
    doc: 'consume queue file size, bytes (multiple of 20)',
  },
  flushIntervalCommitLog: { type: 'int', default: 500, min: 1, doc: 'ASYNC_FLUSH interval, ms' },
  syncFlushTimeout: {
    type: 'int',
    default: 5_000,
    min: 1,
    doc: 'SYNC_FLUSH wait before FLUSH_DISK_TIMEOUT, ms',
  },
  deleteWhen: {
    type: 'string',
    default: '04',
    doc: 'hour(s) of day expired files are deleted, e.g. 04 or 04;16',
  },
  fileReservedTime: { type: 'int', default: 72, min: 0, doc: 'hours a commitlog segment is kept' },
  diskMaxUsedSpaceRatio: {
    type: 'int',
    default: 75,
    min: 10,
    max: 95,
    doc: 'disk use (%) above which old files are deleted early',
  },
  diskSpaceWarningLevelRatio: {
    type: 'float',
    default: DEFAULT_DISK_SPACE_WARNING_LEVEL_RATIO,
    min: 0.000001,
    max: 1,
    doc: 'disk use (fraction 0..1) above which writes are refused (DISK_FULL; the gateway answers 429)',
  },
  maxOpenFiles: {
    type: 'int',
    default: DEFAULT_MAX_OPEN_FILES,
    min: 16,
    max: 1_048_576,
    doc: 'descriptors of complete store files (commitlog segments, consume queue and index files) kept open, least recently used closed first; files being written stay open besides. Keep well below `ulimit -n`',
  },
  maxMessageSize: {
    type: 'int',
    default: 4 * 1024 * 1024,
    min: 1024,
    doc: 'largest message body, bytes',
  },
  autoCreateTopicEnable: { type: 'bool', default: true, doc: 'create a topic on its first send' },
  autoCreateSubscriptionGroup: {
    type: 'bool',
    default: true,
    doc: 'create a consumer group on first use',
  },
  defaultTopicQueueNums: {
    type: 'int',
    default: 4,
    min: 1,
    max: 1024,
    doc: 'queues of an auto-created topic',
  },
  brokerPermission: {
    type: 'int',
    default: 6,
    min: 0,
    max: 7,
    doc: 'broker-wide permission: 4 read, 2 write',
  },
  registerBrokerInterval: {
    type: 'int',
    default: 30_000,
    min: 100,
    doc: 'heartbeat to every name server, ms',
  },
  brokerNotActiveTimeoutMillis: {
    type: 'int',
    default: 120_000,
    min: 500,
    doc: 'name servers drop this broker when silent this long, ms',
  },
  slaveReadEnable: {
    type: 'bool',
    default: false,
    doc: 'let consumers read from a slave when behind',
  },
  whichBrokerWhenConsumeSlowly: {
    type: 'int',
    default: 1,
    min: 0,
    doc: 'broker id suggested to slow consumers',
  },
  accessMessageInMemoryMaxRatio: {
    type: 'int',
    default: 40,
    min: 0,
    max: 100,
    doc: 'lag (% of memory) after which a consumer counts as slow',
  },
  haMasterAddress: {
    type: 'string',
    default: '',
    doc: 'master address for a slave (default: from the name servers)',
  },
  slaveTimeout: {
    type: 'int',
    default: 3_000,
    min: 1,
    doc: 'SYNC_MASTER wait for a slave before FLUSH_SLAVE_TIMEOUT, ms',
  },
  // --- replication (broker/ha); RocketMQ's key names, our defaults where noted.
  haTransferBatchSize: {
    type: 'int',
    default: 256 * 1024,
    min: 4 * 1024,
    doc: 'commitlog bytes per replication message (RocketMQ: 32 KiB), bytes',
  },
  haMaxGapNotInSync: {
    type: 'int',
    default: 256 * 1024 * 1024,
    min: 1,
    doc: 'a slave further behind than this is not in sync (SYNC_MASTER answers SLAVE_NOT_AVAILABLE), bytes',
  },
  haSendHeartbeatInterval: {
    type: 'int',
    default: 5_000,
    min: 10,
    doc: 'replication heartbeat when idle, both directions, ms',
  },
  haHousekeepingInterval: {
    type: 'int',
    default: 20_000,
    min: 100,
    doc: 'a replication stream silent this long is closed and reopened, ms',
  },
  haSyncMetadataInterval: {
    type: 'int',
    default: 1_000,
    min: 10,
    doc: 'how often the master checks topics, groups, offsets and timer progress for the slaves, ms',
  },
  maxReconsumeTimes: {
    type: 'int',
    default: 16,
    min: 1,
    doc: 'deliveries before a message goes to %DLQ%',
  },
  timerMaxDelaySec: {
    type: 'int',
    default: 3 * 24 * 3600,
    min: 1,
    doc: 'largest delay of a timer message, s',
  },
  timerWindowMs: {
    type: 'int',
    default: 300_000,
    min: 1_000,
    doc: 'timers due within this much are held in memory; later ones wait in the timer topic, ms',
  },
  timerMaxInMemory: {
    type: 'int',
    default: 250_000,
    min: 100,
    doc: 'timers held in memory at most (the nearest ones)',
  },
  messageDelayLevel: {
    type: 'string',
    default: '1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h',
    doc: 'the 18 delay levels',
  },
  transactionTimeOut: {
    type: 'int',
    default: 6_000,
    min: 100,
    doc: 'half message age before check-back, ms',
  },
  transactionCheckMax: {
    type: 'int',
    default: 15,
    min: 1,
    doc: 'check-backs before a half message is discarded',
  },
  transactionCheckInterval: {
    type: 'int',
    default: 6_000,
    min: 100,
    doc: 'check-back scan interval, ms',
  },
  receiptHandleSecret: {
    type: 'string',
    default: 'sluice-dev-secret',
    doc: 'HMAC key for receipt handles; the same on every broker and gateway of a cluster',
  },
  metricsPort: {
    type: 'int',
    default: 0,
    min: 0,
    max: 65535,
    doc: 'Prometheus /metrics port (0 = off)',
  },
} satisfies Schema;

export type BrokerOptions = OptionsOf<typeof BROKER_SCHEMA>;
