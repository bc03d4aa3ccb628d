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
 *   one per request. That per-process copy is an LRU of at most
 *   `localMaxEntries` topics, so memory stays flat however many topics pass.
 * - Read failover (DESIGN.md §7): reads go to a broker's master, or to its
 *   lowest-id slave when the route has no master. Between a master's death
 *   and the name servers dropping it (brokerNotActiveTimeoutMillis) the route
 *   still names it: a call that could not reach it marks it
 *   (`masterUnreachable`), and reads for that broker name (pop, pull,
 *   offsets, settling handles that name it) go to its lowest-id slave until
 *   a route shows that master again after one that did not (it re-registered),
 *   or the gateway is connected to it again (`connected`). Marks are per
 *   process; writes always go to masters.
 */

import { brokerAddrMap, masterAddrOf } from '../../common/broker-addrs.js';
import { Code, errors } from '../../common/errors.js';
import type { BrokerData__Output } from '../../common/generated/sluice/v1/BrokerData.js';
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
/** Topics whose route a replica keeps in process besides the shared cache (LRU). */
export const DEFAULT_LOCAL_ROUTE_ENTRIES = 10_000;

export interface RouteResolverTuning {
  /** Refresh in the background once a route is this close to expiry. 0 = off. */
  refreshAheadMs?: number;
  /** Per-process reuse of a route read from a shared cache. 0 = always ask the cache. */
  localTtlMs?: number;
  /** How long "topic not found" is cached. */
  negativeTtlMs?: number;
  /** Most topics kept in the per-process copy (least recently used go first). */
  localMaxEntries?: number;
}

export type RouteSource = Pick<NamesrvClient, 'routes'>;

/** A master a call could not reach. */
interface UnreachableMaster {
  addr: string;
  /** A route without this master was seen since (the name servers dropped it). */
  seenGone: boolean;
}

export class RouteResolver {
  private readonly loading = new Map<string, Promise<TopicRoute>>();
  private readonly local = new Map<string, { cached: CachedRoute; until: number }>();
  private readonly refreshAheadMs: number;
  private readonly localTtlMs: number;
  private readonly negativeTtlMs: number;
  private readonly localMaxEntries: number;
  /** Masters reads avoid for now, by broker name (see the header). */
  private readonly unreachable = new Map<string, UnreachableMaster>();
  /** Whether the gateway has a working connection to an address now (clears a mark early). */
  connected: ((addr: string) => boolean) | undefined;
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
    this.localMaxEntries = Math.max(1, tuning.localMaxEntries ?? DEFAULT_LOCAL_ROUTE_ENTRIES);
  }

  /** Topics in the per-process copy (bounded by localMaxEntries). */
  get localSize(): number {
    return this.local.size;
  }

  /** Keeps a per-process copy; the Map's insertion order is its recency order. */
  private remember(topic: string, cached: CachedRoute, until: number): void {
    this.local.delete(topic);
    this.local.set(topic, { cached, until });
    while (this.local.size > this.localMaxEntries) {
      this.local.delete(this.local.keys().next().value!);
    }
  }

  private async cached(topic: string): Promise<CachedRoute | undefined> {
    const now = this.clock();
    const memo = this.local.get(topic);
    if (memo && memo.until > now) {
      // Most recently used last.
      this.local.delete(topic);
      this.local.set(topic, memo);
      return memo.cached;
    }
    let cached: CachedRoute | undefined;
    try {
      cached = await this.cache.get(topic);
    } catch (err) {
      this.stats.cacheErrors++;
      this.logger.debug({ err: (err as Error).message }, 'route cache read failed');
    }
    if (cached && this.localTtlMs > 0) {
      this.remember(topic, cached, Math.min(now + this.localTtlMs, cached.expiresAt));
    } else if (memo) {
      this.local.delete(topic);
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
            this.remember(
              topic,
              { route, expiresAt: now + ttl },
              now + Math.min(this.localTtlMs, ttl),
            );
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

  /**
   * A call to `addr` of broker `brokerName` failed to connect (UNAVAILABLE).
   * When `addr` is that broker's master, reads for the broker go to its
   * lowest-id slave for now (see the header).
   */
  masterUnreachable(brokerName: string, addr: string): void {
    const known = this.unreachable.get(brokerName);
    if (known?.addr === addr && !known.seenGone) return;
    this.unreachable.set(brokerName, { addr, seenGone: false });
    this.logger.info({ broker: brokerName, addr }, 'broker unreachable: reads go to a slave');
  }

  /** Where reads for a broker go: its master, else (no master, or master unreachable) its lowest-id slave. */
  private readAddrOf(data: BrokerData__Output | undefined): string | undefined {
    const addrs = brokerAddrMap(data?.broker_addrs);
    const master = addrs.get(0);
    const mark = data ? this.unreachable.get(data.broker_name) : undefined;
    if (data && mark) {
      if (master !== mark.addr) {
        mark.seenGone = true;
      } else if (mark.seenGone || this.connected?.(master)) {
        // Registered again, or reachable again: back to the master.
        this.unreachable.delete(data.broker_name);
        this.logger.info({ broker: data.broker_name, addr: master }, 'master back: reads go to it');
      } else {
        for (const [id, addr] of addrs) if (id !== 0) return addr;
      }
    }
    return addrs.values().next().value;
  }

  private targets(route: TopicRoute, want: 'read' | 'write'): BrokerTarget[] {
    const out: BrokerTarget[] = [];
    for (const q of route.queue_datas) {
      if (want === 'write' ? !isWritable(q.perm) : !isReadable(q.perm)) continue;
      const data = route.broker_datas.find((b) => b.broker_name === q.broker_name);
      const addr = want === 'write' ? masterAddrOf(data?.broker_addrs) : this.readAddrOf(data);
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
    return this.targets(route, 'write');
  }

  async readable(topic: string): Promise<BrokerTarget[]> {
    const route = await this.route(topic);
    if (route.status?.code === Code.TOPIC_NOT_FOUND) throw errors.topicNotFound(topic);
    return this.targets(route, 'read');
  }

  /** Address of one node (broker id; 0 = master) of a broker group serving a topic, if listed. */
  async nodeAddr(topic: string, brokerName: string, brokerId: number): Promise<string | undefined> {
    const route = await this.route(topic);
    const data = route.broker_datas.find((b) => b.broker_name === brokerName);
    return brokerAddrMap(data?.broker_addrs).get(brokerId);
  }

  /** The broker id of the node at `addr` in a broker group serving a topic, if listed. */
  async nodeIdOf(topic: string, brokerName: string, addr: string): Promise<number | undefined> {
    const route = await this.route(topic);
    const data = route.broker_datas.find((b) => b.broker_name === brokerName);
    for (const [id, a] of brokerAddrMap(data?.broker_addrs)) if (a === addr) return id;
    return undefined;
  }

  /** Address of a broker by name for acks and admin calls: where its reads go (see readable). */
  async brokerAddr(topic: string, brokerName: string): Promise<string | undefined> {
    const route = await this.route(topic);
    const data = route.broker_datas.find((b) => b.broker_name === brokerName);
    return this.readAddrOf(data);
  }
}
