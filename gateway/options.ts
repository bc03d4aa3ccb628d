/**
 * Gateway configuration. Durations are milliseconds; each default written once.
 */
import type { OptionsOf, Schema } from '../common/config/options.js';

export const GATEWAY_SCHEMA = {
  namesrvAddr: { type: 'string', default: '127.0.0.1:9876', doc: 'name servers, ";"-separated (also -n or NAMESRV_ADDR)' },
  httpPort: { type: 'int', default: 8080, min: 0, max: 65535, doc: 'REST port (0 = any free port)' },
  grpcPort: { type: 'int', default: 8081, min: 0, max: 65535, doc: 'apache.rocketmq.v2 gRPC port (0 = any free port)' },
  bindAddress: { type: 'string', default: '0.0.0.0', doc: 'address both servers bind' },
  redisUrl: { type: 'string', default: '', doc: 'redis://… shares the route cache and idempotency keys (also --redis or REDIS_URL); empty = in-process' },
  routeTtlMs: { type: 'int', default: 30_000, min: 100, doc: 'how long a topic route is cached' },
  receiptHandleSecret: { type: 'string', default: 'sluice-dev-secret', doc: 'HMAC key for receipt handles; the same on every broker and gateway of a cluster' },
  maxMessageSize: { type: 'int', default: 4 * 1024 * 1024, min: 1024, doc: 'largest message body, bytes (checked before a broker sees it)' },
  maxRequestBytes: { type: 'int', default: 8 * 1024 * 1024, min: 1024, doc: 'largest HTTP request body, bytes' },
  sendRetries: { type: 'int', default: 2, min: 0, max: 10, doc: 'extra attempts of a failed send, each on another broker' },
  rpcTimeoutMs: { type: 'int', default: 5_000, min: 100, doc: 'deadline of a call to a broker or name server' },
  corsOrigins: { type: 'string', default: '*', doc: 'allowed CORS origins, comma-separated; empty = CORS off' },
} satisfies Schema;

export type GatewayOptions = OptionsOf<typeof GATEWAY_SCHEMA>;
