/**
 * Route cache in Redis (ioredis), shared by every gateway replica.
 *
 * Redis is an accelerator, never a dependency: the client is built so that a
 * Redis outage costs a request nothing but a cache miss. The offline queue is
 * off (a command while disconnected fails at once instead of piling up),
 * commands time out after `commandTimeoutMs`, a request is never retried, and
 * ioredis reconnects by itself with a capped backoff. While the connection is
 * not ready we do not even try.
 *
 * Layout: `sluice:route:{topic}` → JSON `{route, expiresAt}`. Keys live three
 * TTLs in Redis so that a replica can still serve a stale route while the name
 * servers are unreachable; `expiresAt` says when it must be refreshed.
 */
import { Redis } from 'ioredis';
import type { Logger } from '../../common/logger.js';
import { DEFAULT_REDIS_COMMAND_TIMEOUT_MS } from '../options.js';
import type { CachedRoute, RouteCache, TopicRoute } from './index.js';

/** Longest pause between reconnect attempts. */
export const DEFAULT_REDIS_MAX_RECONNECT_DELAY_MS = 2_000;
/** Multiple of the TTL a route key is kept in Redis (stale copies for outages). */
const STALE_KEEP_FACTOR = 3;

export interface RedisClientOptions {
  commandTimeoutMs?: number;
  logger: Logger;
  /** Key prefix, so clusters can share one Redis. */
  prefix?: string;
}

/**
 * A client that fails fast while Redis is away and reconnects on its own.
 * Errors are logged once per outage, not once per command.
 *
 * @example const redis = createRedisClient('redis://127.0.0.1:6379', { logger });
 */
export function createRedisClient(url: string, opts: RedisClientOptions): Redis {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 1_000,
    enableReadyCheck: true,
    lazyConnect: false,
    retryStrategy: (times) =>
      Math.min(50 * 2 ** Math.min(times, 6), DEFAULT_REDIS_MAX_RECONNECT_DELAY_MS),
  });
  let down = false;
  client.on('error', (err: Error) => {
    if (!down)
      opts.logger.warn({ err: err.message }, 'redis unavailable; serving from the name servers');
    down = true;
  });
  client.on('ready', () => {
    if (down) opts.logger.info('redis reconnected');
    down = false;
  });
  return client;
}

/** True when a command can be sent now (connected and past the ready check). */
export function redisReady(client: Redis): boolean {
  return client.status === 'ready';
}

export class RedisRouteCache implements RouteCache {
  private readonly prefix: string;

  constructor(
    private readonly client: Redis,
    private readonly clock: () => number = Date.now,
    prefix = 'sluice:',
  ) {
    this.prefix = `${prefix}route:`;
  }

  async get(topic: string): Promise<CachedRoute | undefined> {
    if (!redisReady(this.client)) return undefined;
    const text = await this.client.get(this.prefix + topic);
    if (!text) return undefined;
    const parsed = JSON.parse(text) as CachedRoute;
    return parsed && typeof parsed.expiresAt === 'number' ? parsed : undefined;
  }

  async set(topic: string, route: TopicRoute, ttlMs: number): Promise<void> {
    if (!redisReady(this.client)) return;
    const value: CachedRoute = { route, expiresAt: this.clock() + ttlMs };
    await this.client.set(
      this.prefix + topic,
      JSON.stringify(value),
      'PX',
      ttlMs * STALE_KEEP_FACTOR,
    );
  }

  async invalidate(topic: string): Promise<void> {
    if (!redisReady(this.client)) return;
    await this.client.del(this.prefix + topic);
  }

  /** The client is shared (idempotency keys); its owner closes it. */
  async close(): Promise<void> {}
}
