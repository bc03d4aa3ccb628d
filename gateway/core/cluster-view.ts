/**
 * The cluster as the name servers see it, beyond one topic's route: every
 * master, whether it creates topics on first send, and whether a consumer
 * group consumes in order. Cached briefly so per-request callers (QueryRoute
 * of a new topic, the orphaned transaction poller, client settings) do not
 * hammer the name servers and brokers.
 */

import { masterAddrOf } from '../../common/broker-addrs.js';
import type { BrokerConfig__Output } from '../../common/generated/sluice/v1/BrokerConfig.js';
import type { Empty } from '../../common/generated/sluice/v1/Empty.js';
import type { SubscriptionGroupList__Output } from '../../common/generated/sluice/v1/SubscriptionGroupList.js';
import { callUnary } from '../../common/grpc.js';
import type { Logger } from '../../common/logger.js';
import type { BrokerPool } from './broker-pool.js';
import type { NamesrvClient } from './namesrv-client.js';

/** How long the list of masters, their settings and group configs are reused. */
export const DEFAULT_CLUSTER_VIEW_TTL_MS = 5_000;
/** Groups whose orderly flag is remembered at most (the oldest lookups go first). */
export const DEFAULT_ORDERLY_CACHE_GROUPS = 1_000;
/** Deadline of a group lookup: a client waits for its settings meanwhile. */
export const GROUP_LOOKUP_TIMEOUT_MS = 1_000;

export interface MasterBroker {
  brokerName: string;
  addr: string;
  /** The broker's autoCreateTopicEnable (false when its config could not be read). */
  autoCreateTopics: boolean;
}

export interface ClusterViewDeps {
  namesrv: NamesrvClient;
  brokers: BrokerPool;
  logger: Logger;
  rpcTimeoutMs: number;
  ttlMs?: number;
  /** Most groups whose orderly flag is cached. */
  maxGroups?: number;
  clock?: () => number;
}

export class ClusterView {
  private cached: { at: number; masters: Promise<MasterBroker[]> } | undefined;
  /** Per group: whether it is orderly, as last looked up; insertion order = age. */
  private readonly orderly = new Map<string, { at: number; orderly: Promise<boolean> }>();

  constructor(private readonly deps: ClusterViewDeps) {}

  /** Every registered master (broker id 0), sorted by broker name. */
  masters(): Promise<MasterBroker[]> {
    const now = (this.deps.clock ?? Date.now)();
    if (!this.cached || now - this.cached.at > (this.deps.ttlMs ?? DEFAULT_CLUSTER_VIEW_TTL_MS)) {
      const masters = this.load();
      // A failed load is not cached: the next caller tries again.
      masters.catch(() => {
        if (this.cached?.masters === masters) this.cached = undefined;
      });
      this.cached = { at: now, masters };
    }
    return this.cached.masters;
  }

  private async load(): Promise<MasterBroker[]> {
    const info = await this.deps.namesrv.clusterInfo();
    const masters = Object.values(info.broker_addr_table).flatMap((b) => {
      const addr = masterAddrOf(b.broker_addrs);
      return addr ? [{ brokerName: b.broker_name, addr }] : [];
    });
    masters.sort((a, b) => a.brokerName.localeCompare(b.brokerName));
    return Promise.all(
      masters.map(async (m) => {
        const client = this.deps.brokers.get(m.addr);
        try {
          const cfg = await callUnary<Empty, BrokerConfig__Output>(
            client,
            client.GetBrokerConfig as never,
            {},
            this.deps.rpcTimeoutMs,
          );
          return { ...m, autoCreateTopics: cfg.config.autoCreateTopicEnable === 'true' };
        } catch (err) {
          this.deps.logger.warn(
            { broker: m.brokerName, err: (err as Error).message },
            'broker config unreadable',
          );
          return { ...m, autoCreateTopics: false };
        }
      }),
    );
  }

  /**
   * True when a master configures the group for ordered (FIFO) consumption.
   * False when nobody knows the group or no broker answers in time: the
   * broker enforces the order anyway; this only informs the client.
   */
  async isOrderlyGroup(group: string): Promise<boolean> {
    const now = (this.deps.clock ?? Date.now)();
    const hit = this.orderly.get(group);
    if (hit && now - hit.at <= (this.deps.ttlMs ?? DEFAULT_CLUSTER_VIEW_TTL_MS)) return hit.orderly;
    const orderly = this.loadOrderly().then((groups) => groups.has(group));
    this.orderly.delete(group);
    this.orderly.set(group, { at: now, orderly });
    // Bounded: the oldest lookups go first (they are also the first to expire).
    const max = this.deps.maxGroups ?? DEFAULT_ORDERLY_CACHE_GROUPS;
    while (this.orderly.size > max) this.orderly.delete(this.orderly.keys().next().value!);
    return orderly;
  }

  /** Groups whose orderly flag is cached now (bounded by maxGroups). */
  get cachedGroups(): number {
    return this.orderly.size;
  }

  private async loadOrderly(): Promise<ReadonlySet<string>> {
    const out = new Set<string>();
    const masters = await this.masters().catch(() => [] as MasterBroker[]);
    await Promise.all(
      masters.map(async (m) => {
        const client = this.deps.brokers.get(m.addr);
        try {
          const list = await callUnary<Empty, SubscriptionGroupList__Output>(
            client,
            client.GetAllSubscriptionGroups as never,
            {},
            Math.min(GROUP_LOOKUP_TIMEOUT_MS, this.deps.rpcTimeoutMs),
          );
          for (const g of list.groups) if (g.consume_message_orderly) out.add(g.group_name);
        } catch (err) {
          this.deps.logger.warn(
            { broker: m.brokerName, err: (err as Error).message },
            'subscription groups unreadable',
          );
        }
      }),
    );
    return out;
  }
}
