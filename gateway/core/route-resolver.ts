/**
 * Resolves topic routes through the cache, asking the name servers on a miss
 * or once a cached route is past its TTL, and answers which brokers can take
 * writes or serve reads.
 */
import { errors } from '../../common/errors.js';
import { Code } from '../../common/errors.js';
import { isReadable, isWritable } from '../../common/names.js';
import type { Logger } from '../../common/logger.js';
import type { RouteCache, TopicRoute } from '../route-cache/index.js';
import type { NamesrvClient } from './namesrv-client.js';

export interface BrokerTarget {
  brokerName: string;
  /** Address of the master (id 0), or of a slave when reading and the master is gone. */
  addr: string;
  readQueueNums: number;
  writeQueueNums: number;
}

export class RouteResolver {
  private readonly loading = new Map<string, Promise<TopicRoute>>();

  constructor(
    private readonly namesrv: NamesrvClient,
    private readonly cache: RouteCache,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The topic's route; TOPIC_NOT_FOUND when no broker serves it. */
  async route(topic: string): Promise<TopicRoute> {
    let cached;
    try {
      cached = await this.cache.get(topic);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'route cache read failed');
    }
    if (cached && cached.expiresAt > this.clock()) return cached.route;
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
          try {
            await this.cache.set(topic, route, this.ttlMs);
          } catch (err) {
            this.logger.warn({ err: (err as Error).message }, 'route cache write failed');
          }
          return route;
        })
        .finally(() => this.loading.delete(topic));
      this.loading.set(topic, p);
    }
    return p;
  }

  async invalidate(topic: string): Promise<void> {
    try {
      await this.cache.invalidate(topic);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'route cache invalidate failed');
    }
  }

  private static targets(route: TopicRoute, want: 'read' | 'write'): BrokerTarget[] {
    const out: BrokerTarget[] = [];
    for (const q of route.queue_datas) {
      if (want === 'write' ? !isWritable(q.perm) : !isReadable(q.perm)) continue;
      const data = route.broker_datas.find((b) => b.broker_name === q.broker_name);
      const addrs = data?.broker_addrs ?? {};
      let addr: string | undefined = addrs[0];
      if (!addr && want === 'read') {
        const slaves = Object.keys(addrs).sort((a, b) => Number(a) - Number(b));
        addr = slaves.length > 0 ? addrs[Number(slaves[0])] : undefined;
      }
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
    return data?.broker_addrs[0] ?? Object.values(data?.broker_addrs ?? {})[0];
  }
}
