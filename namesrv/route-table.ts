/**
 * The name server's routing registry: which brokers are alive, which broker
 * groups form which cluster, and which topics each group serves. Pure logic
 * with an injectable clock; the gRPC service and the expiry timer live
 * elsewhere.
 *
 * Invariants:
 * - A broker group is the set of brokers sharing a `brokerName`; id 0 is the
 *   master. A group exists exactly while at least one of its brokers is
 *   registered; its queue data disappears with its last broker (as RocketMQ).
 * - Queue data comes from the master's registrations, which are authoritative
 *   (a topic missing from a master's registration is gone). A slave's topics
 *   are used only while the group has no master registered (after a name
 *   server restart with the master down), read-only.
 * - The perm a route shows is the topic's perm masked by the group's
 *   broker-wide perm, so wipeWritePerm hides write on every topic at once.
 * - Admin changes (topic created/deleted through this name server, perm
 *   wiped/added) show at once, before the broker re-registers. They are kept
 *   as overlays until a registration confirms them (a higher data_version for
 *   topics, the same write bit for perm), so a heartbeat already in flight
 *   with older content cannot undo them. Topic overlays are dropped when the
 *   master registers as new or with a lower data_version than before.
 */

import { Code } from '../common/errors.js';
import type { BrokerData__Output as BrokerData } from '../common/generated/sluice/v1/BrokerData.js';
import type { BrokerLiveInfo__Output as BrokerLiveInfo } from '../common/generated/sluice/v1/BrokerLiveInfo.js';
import type { ClusterInfo__Output as ClusterInfo } from '../common/generated/sluice/v1/ClusterInfo.js';
import type { QueueData__Output as QueueData } from '../common/generated/sluice/v1/QueueData.js';
import type { RegisterBrokerRequest__Output } from '../common/generated/sluice/v1/RegisterBrokerRequest.js';
import type { TopicConfig__Output } from '../common/generated/sluice/v1/TopicConfig.js';
import type { TopicRoute__Output as TopicRoute } from '../common/generated/sluice/v1/TopicRoute.js';
import type { UnregisterBrokerRequest__Output } from '../common/generated/sluice/v1/UnregisterBrokerRequest.js';
import { Perm } from '../common/names.js';

export type TopicConfig = TopicConfig__Output;
export type RegisterRequest = RegisterBrokerRequest__Output;

export const MASTER_ID = 0;

export interface RouteTableOptions {
  /** Silence (ms) after which a broker is dropped when its registration names no timeout. */
  defaultExpireMs: number;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
}

/** A registered broker as the liveness table sees it. */
export interface LiveBroker {
  addr: string;
  cluster: string;
  brokerName: string;
  brokerId: number;
  role: string;
  lastUpdateMs: number;
  /** Dropped when silent for longer than this (ms). */
  timeoutMs: number;
  dataVersion: number;
  maxPhysicalOffset: number;
}

/** A topic change made by an admin call, held until the master confirms it. */
interface PendingTopic {
  /** The new config, or null for a deletion. */
  config: TopicConfig | null;
  /** Confirmed by a master registration whose data_version is above this. */
  dataVersion: number;
}

interface BrokerGroup {
  cluster: string;
  brokerName: string;
  /** broker id → "host:port" */
  addrs: Map<number, string>;
  /** Topics as last registered (by the master, or a slave while masterless). */
  topics: Map<string, TopicConfig>;
  /** Who registered `topics`; slave-sourced topics are read-only. */
  topicsFrom: 'master' | 'slave' | 'none';
  /** data_version of the master's last registration. */
  dataVersion: number;
  pendingTopics: Map<string, PendingTopic>;
  /** Broker-wide perm from the master's last registration. */
  registeredPerm: number;
  /** Perm set by wipe/addWritePerm, until the master reports the same write bit. */
  adminPerm: number | undefined;
}

export interface RegisterResult {
  /** Address of the group's master; empty when none is registered. */
  masterAddr: string;
  /** True when this address was not registered before. */
  isNew: boolean;
}

/**
 * Routing state of one name server.
 *
 * @example
 *   const routes = new RouteTable({ defaultExpireMs: 120_000 });
 *   routes.register(request);
 *   routes.topicRoute('orders').queue_datas; // one entry per broker group
 */
export class RouteTable {
  private readonly groups = new Map<string, BrokerGroup>();
  private readonly live = new Map<string, LiveBroker>();
  private readonly now: () => number;
  private readonly defaultExpireMs: number;

  constructor(options: RouteTableOptions) {
    this.now = options.now ?? Date.now;
    this.defaultExpireMs = options.defaultExpireMs;
  }

  /** Registers a broker or refreshes its heartbeat. */
  register(req: RegisterRequest): RegisterResult {
    const id = Number(req.broker_id);
    const addr = req.broker_addr;
    let group = this.groups.get(req.broker_name);
    if (!group) {
      group = {
        cluster: req.cluster_name,
        brokerName: req.broker_name,
        addrs: new Map(),
        topics: new Map(),
        topicsFrom: 'none',
        dataVersion: 0,
        pendingTopics: new Map(),
        registeredPerm: Perm.READ_WRITE,
        adminPerm: undefined,
      };
      this.groups.set(req.broker_name, group);
    }
    group.cluster = req.cluster_name;

    // One address, one entry: a broker that changed its id leaves no ghost.
    for (const [otherId, otherAddr] of group.addrs) {
      if (otherAddr === addr && otherId !== id) group.addrs.delete(otherId);
    }
    // A broker restarted on another port replaces its old address at once.
    const previous = group.addrs.get(id);
    if (previous !== undefined && previous !== addr) this.live.delete(previous);
    group.addrs.set(id, addr);

    const isNew = !this.live.has(addr);
    this.live.set(addr, {
      addr,
      cluster: req.cluster_name,
      brokerName: req.broker_name,
      brokerId: id,
      role: req.broker_role,
      lastUpdateMs: this.now(),
      timeoutMs:
        Number(req.heartbeat_timeout_ms) > 0
          ? Number(req.heartbeat_timeout_ms)
          : this.defaultExpireMs,
      dataVersion: Number(req.data_version),
      maxPhysicalOffset: Number(req.max_physical_offset),
    });

    if (id === MASTER_ID) {
      this.applyMasterRegistration(group, req, isNew);
    } else if (!group.addrs.has(MASTER_ID) && group.topicsFrom !== 'master') {
      group.topics = new Map(req.topics.map((t) => [t.topic_name, t]));
      group.topicsFrom = 'slave';
    }
    return { masterAddr: group.addrs.get(MASTER_ID) ?? '', isNew };
  }

  private applyMasterRegistration(group: BrokerGroup, req: RegisterRequest, isNew: boolean): void {
    const version = Number(req.data_version);
    // Topic overlays are tagged with the data versions of the master's
    // previous life. A master that registers as new (restarted, or back after
    // expiry) or whose version went down (its store was wiped: it starts
    // again at 0) holds the truth as of now; an overlay kept for it would
    // outlive the topic (a ghost route) or hide one the master serves again.
    if (isNew || version < group.dataVersion) group.pendingTopics.clear();
    group.dataVersion = version;
    group.topics = new Map(req.topics.map((t) => [t.topic_name, t]));
    group.topicsFrom = 'master';
    for (const [topic, pending] of group.pendingTopics) {
      if (version > pending.dataVersion) {
        group.pendingTopics.delete(topic);
      } else if (pending.config) {
        group.topics.set(topic, pending.config);
      } else {
        group.topics.delete(topic);
      }
    }
    // 0 means the registration did not say (proto3 has no presence); brokers
    // always send their perm, and a broker with no permission at all is not
    // something a registration needs to express.
    const perm = req.perm > 0 ? req.perm : Perm.READ_WRITE;
    group.registeredPerm = perm;
    if (group.adminPerm !== undefined && (perm & Perm.WRITE) === (group.adminPerm & Perm.WRITE)) {
      group.adminPerm = undefined;
    }
  }

  /** Removes a broker on its clean shutdown. True when it was registered. */
  unregister(req: UnregisterBrokerRequest__Output): boolean {
    const group = this.groups.get(req.broker_name);
    if (!group || group.addrs.get(Number(req.broker_id)) !== req.broker_addr) return false;
    this.removeBroker(req.broker_addr);
    return true;
  }

  /**
   * Drops every broker silent for longer than its timeout; returns them.
   * Called every scanNotActiveBrokerInterval.
   */
  scanNotActiveBrokers(): LiveBroker[] {
    const now = this.now();
    const expired: LiveBroker[] = [];
    for (const broker of [...this.live.values()]) {
      if (now - broker.lastUpdateMs > broker.timeoutMs) {
        expired.push(broker);
        this.removeBroker(broker.addr);
      }
    }
    return expired;
  }

  private removeBroker(addr: string): void {
    this.live.delete(addr);
    for (const [name, group] of this.groups) {
      for (const [id, a] of group.addrs) if (a === addr) group.addrs.delete(id);
      if (group.addrs.size === 0) this.groups.delete(name);
    }
  }

  /** The route of one topic; status 40402 TOPIC_NOT_FOUND when no group serves it. */
  topicRoute(topic: string): TopicRoute {
    const queueDatas: QueueData[] = [];
    const brokerDatas: BrokerData[] = [];
    for (const group of this.sortedGroups()) {
      const config = group.topics.get(topic);
      if (!config) continue;
      queueDatas.push({
        broker_name: group.brokerName,
        read_queue_nums: config.read_queue_nums,
        write_queue_nums: config.write_queue_nums,
        perm: this.effectivePerm(group, config),
        message_type: config.message_type,
      });
      brokerDatas.push(brokerDataOf(group));
    }
    if (queueDatas.length === 0) {
      return {
        topic,
        queue_datas: [],
        broker_datas: [],
        status: {
          code: Code.TOPIC_NOT_FOUND,
          message: `no route for topic '${topic}'`,
          reason: '',
        },
      };
    }
    return {
      topic,
      queue_datas: queueDatas,
      broker_datas: brokerDatas,
      status: { code: Code.OK, message: 'OK', reason: '' },
    };
  }

  /** Broker groups, cluster membership and liveness, as `mqadmin clusterList` shows them. */
  clusterInfo(): ClusterInfo {
    const brokerAddrTable: Record<string, BrokerData> = {};
    const clusterAddrTable: Record<string, { broker_names: string[] }> = {};
    for (const group of this.sortedGroups()) {
      brokerAddrTable[group.brokerName] = brokerDataOf(group);
      const names = clusterAddrTable[group.cluster] ?? { broker_names: [] };
      names.broker_names.push(group.brokerName);
      clusterAddrTable[group.cluster] = names;
    }
    const live: Record<string, BrokerLiveInfo> = {};
    for (const b of this.live.values()) {
      live[b.addr] = {
        broker_addr: b.addr,
        broker_role: b.role,
        last_update_timestamp_ms: b.lastUpdateMs,
        max_physical_offset: b.maxPhysicalOffset,
      };
    }
    return { broker_addr_table: brokerAddrTable, cluster_addr_table: clusterAddrTable, live };
  }

  /** Every topic some group serves, sorted. */
  topicList(): string[] {
    const topics = new Set<string>();
    for (const group of this.groups.values()) for (const t of group.topics.keys()) topics.add(t);
    return [...topics].sort();
  }

  /** Registered brokers (for logs and tests). */
  liveBrokers(): LiveBroker[] {
    return [...this.live.values()];
  }

  hasBrokerGroup(brokerName: string): boolean {
    return this.groups.has(brokerName);
  }

  /** Master address of a group; undefined when the group or its master is not registered. */
  masterAddrOf(brokerName: string): string | undefined {
    return this.groups.get(brokerName)?.addrs.get(MASTER_ID);
  }

  /** Broker names of a cluster, sorted; empty when the cluster is unknown. */
  brokerNamesOfCluster(cluster: string): string[] {
    return this.sortedGroups()
      .filter((g) => g.cluster === cluster)
      .map((g) => g.brokerName);
  }

  /** Every broker name, sorted. */
  brokerNames(): string[] {
    return this.sortedGroups().map((g) => g.brokerName);
  }

  /**
   * Shows a topic created or updated on a group's master through this name
   * server, before the master re-registers. No-op for an unknown group.
   */
  upsertTopic(brokerName: string, config: TopicConfig): void {
    const group = this.groups.get(brokerName);
    if (!group) return;
    group.topics.set(config.topic_name, config);
    group.pendingTopics.set(config.topic_name, { config, dataVersion: group.dataVersion });
  }

  /** Hides a topic deleted on a group's master through this name server. */
  deleteTopic(brokerName: string, topic: string): void {
    const group = this.groups.get(brokerName);
    if (!group) return;
    group.topics.delete(topic);
    group.pendingTopics.set(topic, { config: null, dataVersion: group.dataVersion });
  }

  /** The group's broker-wide perm as routes apply it; undefined for an unknown group. */
  brokerPerm(brokerName: string): number | undefined {
    const group = this.groups.get(brokerName);
    return group ? (group.adminPerm ?? group.registeredPerm) : undefined;
  }

  /**
   * Clears the write bit of a group's broker-wide perm: no route offers its
   * queues for writing. Returns how many topics the group serves (RocketMQ
   * counts every one, changed or not), or undefined when the group is unknown.
   */
  wipeWritePerm(brokerName: string): number | undefined {
    return this.changeBrokerPerm(brokerName, (perm) => perm & ~Perm.WRITE);
  }

  /** Undoes wipeWritePerm; returns the same count. */
  addWritePerm(brokerName: string): number | undefined {
    return this.changeBrokerPerm(brokerName, (perm) => perm | Perm.WRITE);
  }

  private changeBrokerPerm(
    brokerName: string,
    change: (perm: number) => number,
  ): number | undefined {
    const group = this.groups.get(brokerName);
    if (!group) return undefined;
    group.adminPerm = change(group.adminPerm ?? group.registeredPerm);
    return group.topics.size;
  }

  private effectivePerm(group: BrokerGroup, topic: TopicConfig): number {
    let mask = (group.adminPerm ?? group.registeredPerm) | Perm.INHERIT;
    if (group.topicsFrom === 'slave') mask &= Perm.READ | Perm.INHERIT;
    return topic.perm & mask;
  }

  private sortedGroups(): BrokerGroup[] {
    return [...this.groups.values()].sort((a, b) => a.brokerName.localeCompare(b.brokerName));
  }
}

function brokerDataOf(group: BrokerGroup): BrokerData {
  return {
    cluster: group.cluster,
    broker_name: group.brokerName,
    broker_addrs: Object.fromEntries(group.addrs),
  };
}
