/**
 * Resolves topic routes through the cache, asking the name servers on a miss
 * or once a cached route is past its TTL, and answers which brokers can take
 * writes or serve reads.
 *
 * Invariants:
 * - A route younger than its TTL is served from the cache; one within
 *   `refreshAheadMs` of expiry is still served while one background load
 *   (per topic, per process) refreshes it, so hot topics never wait.
 * - "Topic not found" is cached only briefly (`negativeTtlMs`): a topic
 *   created a moment ago must become visible quickly.
 * - A cache that fails (Redis down) is a miss, never an error.
 * - With a shared (Redis) cache a replica keeps what it read for
 *   `localTtlMs`, so a hot topic costs one Redis round trip per second, not
 *   one per request.
 */

import { anyAddrOf, masterAddrOf } from '../../common/broker-addrs.js';
import { Code, errors } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { isReadable, isWritable } from '../../common/names.js';
import type { CachedRoute, RouteCache, TopicRoute } from '../route-cache/index.js';
import type { NamesrvClient } from './namesrv-client.js';

export interface BrokerTarget {
  brokerName: string;
  /** Address of the master (id 0), or of a slave when reading and the master is gone. */
  addr: string;
  readQueueNums: number;
  writeQueueNums: number;
}

export const DEFAULT_NEGATIVE_ROUTE_TTL_MS = 1_000;

export interface RouteResolverTuning {
  /** Refresh in the background once a route is this close to expiry. 0 = off. */
  refreshAheadMs?: number;
  /** Per-process reuse of a route read from a shared cache. 0 = always ask the cache. */
  localTtlMs?: number;
  /** How long "topic not found" is cached. */
  negativeTtlMs?: number;
}

export type RouteSource = Pick<NamesrvClient, 'routes'>;

export class RouteResolver {
  private readonly loading = new Map<string, Promise<TopicRoute>>();
  private readonly local = new Map<string, { cached: CachedRoute; until: number }>();
  private readonly refreshAheadMs: number;
  private readonly localTtlMs: number;
  private readonly negativeTtlMs: number;
  /** Counters for /metrics. */
  readonly stats = { hits: 0, misses: 0, refreshes: 0, cacheErrors: 0 };

  constructor(
    private readonly namesrv: RouteSource,
    private readonly cache: RouteCache,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
    tuning: RouteResolverTuning = {},
  ) {
    this.refreshAheadMs = Math.min(tuning.refreshAheadMs ?? 0, ttlMs / 2);
    this.localTtlMs = tuning.localTtlMs ?? 0;
    this.negativeTtlMs = Math.min(tuning.negativeTtlMs ?? DEFAULT_NEGATIVE_ROUTE_TTL_MS, ttlMs);
  }

  private async cached(topic: string): Promise<CachedRoute | undefined> {
    const now = this.clock();
    const memo = this.local.get(topic);
    if (memo && memo.until > now) return memo.cached;
    let cached: CachedRoute | undefined;
    try {
      cached = await this.cache.get(topic);
    } catch (err) {
      this.stats.cacheErrors++;
      this.logger.debug({ err: (err as Error).message }, 'route cache read failed');
    }
    if (cached && this.localTtlMs > 0) {
      this.local.set(topic, { cached, until: Math.min(now + this.localTtlMs, cached.expiresAt) });
    }
    return cached;
  }

  /** The topic's route; `status.code` is TOPIC_NOT_FOUND when no broker serves it. */
  async route(topic: string): Promise<TopicRoute> {
    const cached = await this.cached(topic);
    const now = this.clock();
    if (cached && cached.expiresAt > now) {
      this.stats.hits++;
      if (
        this.refreshAheadMs > 0 &&
        cached.expiresAt - now < this.refreshAheadMs &&
        cached.route.status?.code !== Code.TOPIC_NOT_FOUND &&
        !this.loading.has(topic)
      ) {
        this.stats.refreshes++;
        this.load(topic).catch((err: unknown) =>
          this.logger.debug({ topic, err: (err as Error).message }, 'route refresh failed'),
        );
      }
      return cached.route;
    }
    this.stats.misses++;
    try {
      return await this.load(topic);
    } catch (err) {
      // Name servers unreachable: a stale route beats no route.
      if (cached && cached.route.status?.code !== Code.TOPIC_NOT_FOUND) return cached.route;
      throw err;
    }
  }

  private load(topic: string): Promise<TopicRoute> {
    let p = this.loading.get(topic);
    if (!p) {
      p = this.namesrv
        .routes([topic])
        .then(async ([route]) => {
          if (!route) throw errors.internal('name server returned no route');
          const ttl = route.status?.code === Code.TOPIC_NOT_FOUND ? this.negativeTtlMs : this.ttlMs;
          this.local.delete(topic);
          try {
            await this.cache.set(topic, route, ttl);
          } catch (err) {
            this.stats.cacheErrors++;
            this.logger.debug({ err: (err as Error).message }, 'route cache write failed');
          }
          if (this.localTtlMs > 0) {
            const now = this.clock();
            this.local.set(topic, {
              cached: { route, expiresAt: now + ttl },
              until: now + Math.min(this.localTtlMs, ttl),
            });
          }
          return route;
        })
        .finally(() => this.loading.delete(topic));
      this.loading.set(topic, p);
    }
    return p;
  }

  /** Drops a topic's route (a broker erred, or the topic changed); the next use reloads it. */
  async invalidate(topic: string): Promise<void> {
    this.local.delete(topic);
    try {
      await this.cache.invalidate(topic);
    } catch (err) {
      this.stats.cacheErrors++;
      this.logger.debug({ err: (err as Error).message }, 'route cache invalidate failed');
    }
  }

  private static targets(route: TopicRoute, want: 'read' | 'write'): BrokerTarget[] {
    const out: BrokerTarget[] = [];
    for (const q of route.queue_datas) {
      if (want === 'write' ? !isWritable(q.perm) : !isReadable(q.perm)) continue;
      const data = route.broker_datas.find((b) => b.broker_name === q.broker_name);
      const addr =
        want === 'write' ? masterAddrOf(data?.broker_addrs) : anyAddrOf(data?.broker_addrs);
      if (!addr) continue;
      out.push({
        brokerName: q.broker_name,
        addr,
        readQueueNums: q.read_queue_nums,
        writeQueueNums: q.write_queue_nums,
      });
    }
    return out;
  }

  /**
   * Brokers that take writes for a topic. An unknown topic yields [] so a
   * broker with autoCreateTopicEnable can create it: the caller then tries
   * any master of the cluster.
   */
  async writable(topic: string): Promise<BrokerTarget[]> {
    const route = await this.route(topic);
    if (route.status?.code === Code.TOPIC_NOT_FOUND) return [];
    return RouteResolver.targets(route, 'write');
  }

  async readable(topic: string): Promise<BrokerTarget[]> {
    const route = await this.route(topic);
    if (route.status?.code === Code.TOPIC_NOT_FOUND) throw errors.topicNotFound(topic);
    return RouteResolver.targets(route, 'read');
  }

  /** Address of a broker by name (master preferred) for acks and admin calls. */
  async brokerAddr(topic: string, brokerName: string): Promise<string | undefined> {
    const route = await this.route(topic);
    const data = route.broker_datas.find((b) => b.broker_name === brokerName);
    return anyAddrOf(data?.broker_addrs);
  }
}
