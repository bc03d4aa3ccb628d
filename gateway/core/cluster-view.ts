/**
 * The cluster as the name servers see it, beyond one topic's route: every
 * master, whether it creates topics on first send, whether a consumer group
 * consumes in order and how many deliveries it allows. Cached briefly so
 * per-request callers (QueryRoute of a new topic, the orphaned transaction
 * poller, client settings) do not hammer the name servers and brokers.
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
/** Groups whose settings are remembered at most (the oldest lookups go first). */
export const DEFAULT_ORDERLY_CACHE_GROUPS = 1_000;
/** Deadline of a group lookup: a client waits for its settings meanwhile. */
export const GROUP_LOOKUP_TIMEOUT_MS = 1_000;

export interface MasterBroker {
  brokerName: string;
  addr: string;
  /** The broker's autoCreateTopicEnable (false when its config could not be read). */
  autoCreateTopics: boolean;
  /** The broker's maxReconsumeTimes, its default delivery limit (undefined when unreadable). */
  maxReconsumeTimes: number | undefined;
}

/** What the masters say about a consumer group, for its clients' settings. */
export interface GroupSettings {
  /** A master configures the group for ordered (FIFO) consumption. */
  orderly: boolean;
  /**
   * Deliveries before a message goes to %DLQ%: the group's retry_max_times,
   * else the broker's maxReconsumeTimes; the largest over the masters (each
   * enforces its own). Undefined when no master answered.
   */
  maxDeliveryAttempts: number | undefined;
}

export interface ClusterViewDeps {
  namesrv: NamesrvClient;
  brokers: BrokerPool;
  logger: Logger;
  rpcTimeoutMs: number;
  ttlMs?: number;
  /** Most groups whose settings are cached. */
  maxGroups?: number;
  clock?: () => number;
}

export class ClusterView {
  private cached: { at: number; masters: Promise<MasterBroker[]> } | undefined;
  /** Per group: its settings, as last looked up; insertion order = age. */
  private readonly groups = new Map<string, { at: number; settings: Promise<GroupSettings> }>();

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
          const maxReconsumeTimes = Number(cfg.config.maxReconsumeTimes);
          return {
            ...m,
            autoCreateTopics: cfg.config.autoCreateTopicEnable === 'true',
            maxReconsumeTimes: maxReconsumeTimes > 0 ? maxReconsumeTimes : undefined,
          };
        } catch (err) {
          this.deps.logger.warn(
            { broker: m.brokerName, err: (err as Error).message },
            'broker config unreadable',
          );
          return { ...m, autoCreateTopics: false, maxReconsumeTimes: undefined };
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
    return (await this.groupSettings(group)).orderly;
  }

  /** The group's settings as the masters configure them (see GroupSettings). */
  groupSettings(group: string): Promise<GroupSettings> {
    const now = (this.deps.clock ?? Date.now)();
    const hit = this.groups.get(group);
    if (hit && now - hit.at <= (this.deps.ttlMs ?? DEFAULT_CLUSTER_VIEW_TTL_MS))
      return hit.settings;
    const settings = this.loadGroup(group);
    this.groups.delete(group);
    this.groups.set(group, { at: now, settings });
    // Bounded: the oldest lookups go first (they are also the first to expire).
    const max = this.deps.maxGroups ?? DEFAULT_ORDERLY_CACHE_GROUPS;
    while (this.groups.size > max) this.groups.delete(this.groups.keys().next().value!);
    return settings;
  }

  /** Groups whose settings are cached now (bounded by maxGroups). */
  get cachedGroups(): number {
    return this.groups.size;
  }

  private async loadGroup(group: string): Promise<GroupSettings> {
    const out: GroupSettings = { orderly: false, maxDeliveryAttempts: undefined };
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
          const config = list.groups.find((g) => g.group_name === group);
          if (config?.consume_message_orderly) out.orderly = true;
          // A group a broker does not know yet gets its defaults when first used.
          const limit = config?.retry_max_times || m.maxReconsumeTimes;
          if (limit && limit > (out.maxDeliveryAttempts ?? 0)) out.maxDeliveryAttempts = limit;
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
