/**
 * Gateway configuration. Durations are milliseconds; each default written once.
 */
import type { OptionsOf, Schema } from '../common/config/options.js';

/** A Redis command slower than this counts as a cache miss. */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 250;
/** Most messages one coalesced send RPC to a broker carries. */
export const DEFAULT_SEND_MAX_BATCH = 256;
/** Coalesced send RPCs in flight per broker. */
export const DEFAULT_SEND_MAX_IN_FLIGHT = 4;
/** Messages that may wait for a send RPC slot, per broker, before sends are refused (429). */
export const DEFAULT_SEND_MAX_QUEUED = 16_384;
/** How long an Idempotency-Key remembers the first result. */
export const DEFAULT_IDEMPOTENCY_TTL_MS = 600_000;
/** Keys the in-process Idempotency-Key store holds at most. */
export const DEFAULT_IDEMPOTENCY_MAX_KEYS = 100_000;
/** Bytes (keys, fingerprints and stored results) the in-process Idempotency-Key store holds at most. */
export const DEFAULT_IDEMPOTENCY_MAX_BYTES = 64 * 1024 * 1024;
/** Interval of SSE heartbeat comments on /stream. */
export const DEFAULT_SSE_HEARTBEAT_MS = 15_000;
/** How long /readyz answers 503 on shutdown before the servers stop accepting. */
export const DEFAULT_SHUTDOWN_DRAIN_MS = 1_000;

export const GATEWAY_SCHEMA = {
  namesrvAddr: {
    type: 'string',
    default: '127.0.0.1:9876',
    doc: 'name servers, ";"-separated (also -n or NAMESRV_ADDR)',
  },
  httpPort: {
    type: 'int',
    default: 8080,
    min: 0,
    max: 65535,
    doc: 'REST port (0 = any free port)',
  },
  grpcPort: {
    type: 'int',
    default: 8081,
    min: 0,
    max: 65535,
    doc: 'apache.rocketmq.v2 gRPC port (0 = any free port)',
  },
  bindAddress: { type: 'string', default: '0.0.0.0', doc: 'address both servers bind' },
  redisUrl: {
    type: 'string',
    default: '',
    doc: 'redis://… shares the route cache and idempotency keys (also --redis or REDIS_URL); empty = in-process',
  },
  redisCommandTimeoutMs: {
    type: 'int',
    default: DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
    min: 10,
    doc: 'a Redis command slower than this counts as a miss; the name servers answer instead',
  },
  routeTtlMs: { type: 'int', default: 30_000, min: 100, doc: 'how long a topic route is cached' },
  routeRefreshAheadMs: {
    type: 'int',
    default: 5_000,
    min: 0,
    doc: 'a cached route this close to expiry is refreshed in the background while still served',
  },
  routeLocalTtlMs: {
    type: 'int',
    default: 1_000,
    min: 0,
    doc: 'with Redis: how long a replica reuses a route it read from Redis before asking Redis again',
  },
  receiptHandleSecret: {
    type: 'string',
    default: 'sluice-dev-secret',
    doc: 'HMAC key for receipt handles; the same on every broker and gateway of a cluster',
  },
  maxMessageSize: {
    type: 'int',
    default: 4 * 1024 * 1024,
    min: 1024,
    doc: 'largest message body, bytes (checked before a broker sees it)',
  },
  maxRequestBytes: {
    type: 'int',
    default: 8 * 1024 * 1024,
    min: 1024,
    doc: 'largest HTTP request body, bytes',
  },
  sendRetries: {
    type: 'int',
    default: 2,
    min: 0,
    max: 10,
    doc: 'extra attempts of a failed send, each on another broker',
  },
  sendLingerMs: {
    type: 'int',
    default: 0,
    min: 0,
    max: 100,
    doc: 'how long a send waits for others to share its batch RPC (0 = the rest of the current event-loop turn)',
  },
  sendMaxBatch: {
    type: 'int',
    default: DEFAULT_SEND_MAX_BATCH,
    min: 1,
    max: 4096,
    doc: 'most messages one coalesced batch RPC to a broker carries',
  },
  sendMaxInFlight: {
    type: 'int',
    default: DEFAULT_SEND_MAX_IN_FLIGHT,
    min: 1,
    max: 64,
    doc: 'batch RPCs in flight per broker; further sends queue and join the next batch',
  },
  sendMaxQueued: {
    type: 'int',
    default: DEFAULT_SEND_MAX_QUEUED,
    min: 1,
    doc: 'messages that may queue for a batch RPC per broker; beyond it sends answer 429 with Retry-After',
  },
  faultToleranceEnable: {
    type: 'bool',
    default: true,
    doc: 'avoid brokers that were slow or failed recently when choosing where to send',
  },
  idempotencyTtlMs: {
    type: 'int',
    default: DEFAULT_IDEMPOTENCY_TTL_MS,
    min: 1_000,
    doc: 'how long an Idempotency-Key remembers the first result',
  },
  idempotencyMaxKeys: {
    type: 'int',
    default: DEFAULT_IDEMPOTENCY_MAX_KEYS,
    min: 100,
    doc: 'in-process Idempotency-Key LRU size (without Redis, or while Redis is down)',
  },
  idempotencyMaxBytes: {
    type: 'int',
    default: DEFAULT_IDEMPOTENCY_MAX_BYTES,
    min: 64 * 1024,
    doc: 'bytes the in-process Idempotency-Key LRU holds at most (keys, fingerprints, stored answers)',
  },
  sseHeartbeatMs: {
    type: 'int',
    default: DEFAULT_SSE_HEARTBEAT_MS,
    min: 100,
    doc: 'interval of SSE heartbeat comments on /stream',
  },
  shutdownDrainMs: {
    type: 'int',
    default: DEFAULT_SHUTDOWN_DRAIN_MS,
    min: 0,
    doc: 'on shutdown, /readyz answers 503 this long before the servers stop accepting, so load balancers move traffic away first (set it to the probe interval)',
  },
  shutdownGraceMs: {
    type: 'int',
    default: 10_000,
    min: 0,
    doc: 'after the drain: time in-flight requests and long polls get to finish (long polls answer at once with what they have)',
  },
  rpcTimeoutMs: {
    type: 'int',
    default: 5_000,
    min: 100,
    doc: 'deadline of a call to a broker or name server',
  },
  corsOrigins: {
    type: 'string',
    default: '*',
    doc: 'allowed CORS origins, comma-separated; empty = CORS off',
  },
} satisfies Schema;

export type GatewayOptions = OptionsOf<typeof GATEWAY_SCHEMA>;
