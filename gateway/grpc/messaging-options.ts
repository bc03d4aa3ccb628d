/**
 * Settings of the apache.rocketmq.v2 service. Durations are milliseconds;
 * each default written once, here. Limits shared with REST (body size,
 * request size, RPC deadline) come from the gateway's options.
 */
import { errors } from '../../common/errors.js';
import type { GatewayOptions } from '../options.js';

/** Long poll of a ReceiveMessage that names none. */
export const DEFAULT_LONG_POLLING_MS = 20_000;
/** Longest long poll granted, whatever the client asks. */
export const MAX_LONG_POLLING_MS = 30_000;
/** A long poll answers this long before the client's deadline, so the answer is not lost. */
export const DEFAULT_DEADLINE_MARGIN_MS = 1_000;
/** Invisible time of a ReceiveMessage that names none. */
export const DEFAULT_INVISIBLE_MS = 30_000;
/** Most messages one ReceiveMessage or PullMessage hands out. */
export const MAX_RECEIVE_BATCH = 1024;
/** Batch size suggested to consumers in their settings. */
export const DEFAULT_RECEIVE_BATCH_SIZE = 32;
/**
 * Delivery attempts told to a consumer when no broker says what its group
 * allows (the broker's own maxReconsumeTimes default).
 */
export const DEFAULT_MAX_DELIVERY_ATTEMPTS = 16;
/** How often brokers are asked for orphaned transactions of the connected producers' topics. */
export const DEFAULT_ORPHAN_POLL_INTERVAL_MS = 1_000;
/** Orphaned transactions taken per topic from each of its masters per poll. */
export const DEFAULT_ORPHAN_BATCH = 64;
/** Producers retry a failed send after this, growing ×BACKOFF_MULTIPLIER up to PRODUCER_BACKOFF_MAX_MS. */
export const PRODUCER_BACKOFF_INITIAL_MS = 10;
export const PRODUCER_BACKOFF_MAX_MS = 1_000;
export const BACKOFF_MULTIPLIER = 2;
/** Consumers wait this long before a failed message is offered again, growing ×BACKOFF_MULTIPLIER up to the max. */
export const CONSUMER_BACKOFF_INITIAL_MS = 1_000;
export const CONSUMER_BACKOFF_MAX_MS = 60_000;

export interface MessagingServiceOptions {
  maxMessageSize: number;
  /** Largest sum of bodies in one SendMessage, bytes. */
  maxRequestBytes: number;
  rpcTimeoutMs: number;
  defaultLongPollingMs: number;
  maxLongPollingMs: number;
  deadlineMarginMs: number;
  defaultInvisibleMs: number;
  maxReceiveBatch: number;
  receiveBatchSize: number;
  maxDeliveryAttempts: number;
  orphanPollIntervalMs: number;
  orphanBatch: number;
}

/** Derives the service's options from the gateway's; `overrides` are for tests. */
export function parseMessagingServiceOptions(
  gateway: Pick<GatewayOptions, 'maxMessageSize' | 'maxRequestBytes' | 'rpcTimeoutMs'>,
  overrides: Partial<MessagingServiceOptions> = {},
): Readonly<MessagingServiceOptions> {
  const o: MessagingServiceOptions = {
    maxMessageSize: gateway.maxMessageSize,
    maxRequestBytes: gateway.maxRequestBytes,
    rpcTimeoutMs: gateway.rpcTimeoutMs,
    defaultLongPollingMs: DEFAULT_LONG_POLLING_MS,
    maxLongPollingMs: MAX_LONG_POLLING_MS,
    deadlineMarginMs: DEFAULT_DEADLINE_MARGIN_MS,
    defaultInvisibleMs: DEFAULT_INVISIBLE_MS,
    maxReceiveBatch: MAX_RECEIVE_BATCH,
    receiveBatchSize: DEFAULT_RECEIVE_BATCH_SIZE,
    maxDeliveryAttempts: DEFAULT_MAX_DELIVERY_ATTEMPTS,
    orphanPollIntervalMs: DEFAULT_ORPHAN_POLL_INTERVAL_MS,
    orphanBatch: DEFAULT_ORPHAN_BATCH,
    ...overrides,
  };
  for (const [k, v] of Object.entries(o)) {
    if (!Number.isFinite(v) || v < 0)
      throw errors.badRequest(`messaging service option ${k}=${v} must be a number >= 0`);
  }
  return Object.freeze(o);
}
