/**
 * Transport-free admin and query operations: cluster overview, topic list /
 * create / delete (through the name servers, which tell the brokers), a
 * topic's route, a consumer group's progress, and message lookups by id and
 * by key. Each result is plain data; the REST layer shapes it into JSON.
 */

import { brokerAddrsJson, masterAddrOf } from '../../common/broker-addrs.js';
import { Code, errors, isSluiceError } from '../../common/errors.js';
import type { ClusterInfo__Output } from '../../common/generated/sluice/v1/ClusterInfo.js';
import type { GetConsumerProgressRequest } from '../../common/generated/sluice/v1/GetConsumerProgressRequest.js';
import type { GetConsumerProgressResponse__Output } from '../../common/generated/sluice/v1/GetConsumerProgressResponse.js';
import type { QueryMessageByIdRequest } from '../../common/generated/sluice/v1/QueryMessageByIdRequest.js';
import type { QueryMessageByKeyRequest } from '../../common/generated/sluice/v1/QueryMessageByKeyRequest.js';
import type { QueryMessageResponse__Output } from '../../common/generated/sluice/v1/QueryMessageResponse.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import type { TopicConfig } from '../../common/generated/sluice/v1/TopicConfig.js';
import { callUnary } from '../../common/grpc.js';
import { checkGroupName, checkTopicName, Perm } from '../../common/names.js';
import type { TopicRoute } from '../route-cache/index.js';
import type { BrokerPool } from './broker-pool.js';
import type { NamesrvClient } from './namesrv-client.js';
import type { RouteResolver } from './route-resolver.js';

export const DEFAULT_QUERY_MAX = 32;
/** RocketMQ's default queue count for a created topic. */
export const DEFAULT_TOPIC_QUEUE_NUMS = 4;

export interface AdminServiceDeps {
  namesrv: NamesrvClient;
  routes: RouteResolver;
  brokers: BrokerPool;
  rpcTimeoutMs: number;
}

export interface BrokerSummary {
  cluster: string;
  brokerName: string;
  /** broker id → address; id 0 is the master. */
  addrs: Record<string, string>;
  live: { addr: string; role: string; lastUpdateTimestamp: number; maxPhysicalOffset: number }[];
}

export interface TopicSpec {
  readQueueNums?: number;
  writeQueueNums?: number;
  perm?: number;
  messageType?: string;
  order?: boolean;
  /** Where: every master of a cluster, or one broker. Neither = the name server's choice (all). */
  cluster?: string;
  broker?: string;
}

export interface QueueProgressRow {
  broker: string;
  topic: string;
  queueId: number;
  brokerOffset: number;
  consumerOffset: number;
  lag: number;
  inFlight: number;
  lastTimestamp: number;
}

export interface GroupProgress {
  group: string;
  queues: QueueProgressRow[];
  totalLag: number;
  /** Brokers that could not be asked. */
  unreachable: string[];
}

interface Master {
  brokerName: string;
  addr: string;
}

export class AdminService {
  constructor(private readonly deps: AdminServiceDeps) {}

  private call<Req, Res>(addr: string, method: string, req: Req): Promise<Res> {
    const client = this.deps.brokers.get(addr) as unknown as Record<string, never>;
    return callUnary<Req, Res>(
      client as never,
      client[method] as never,
      req,
      this.deps.rpcTimeoutMs,
    );
  }

  async cluster(): Promise<{ clusters: Record<string, string[]>; brokers: BrokerSummary[] }> {
    const info = await this.deps.namesrv.clusterInfo();
    return { clusters: clustersOf(info), brokers: brokersOf(info) };
  }

  async topics(): Promise<string[]> {
    return this.deps.namesrv.topicList();
  }

  /** Creates or updates a topic; answers the brokers that hold it now. */
  async putTopic(topic: string, spec: TopicSpec): Promise<string[]> {
    checkTopicName(topic);
    const config: TopicConfig = {
      topic_name: topic,
      read_queue_nums: spec.readQueueNums ?? spec.writeQueueNums ?? DEFAULT_TOPIC_QUEUE_NUMS,
      write_queue_nums: spec.writeQueueNums ?? spec.readQueueNums ?? DEFAULT_TOPIC_QUEUE_NUMS,
      perm: spec.perm ?? Perm.READ_WRITE,
      message_type: spec.messageType ?? 'NORMAL',
      order: spec.order ?? false,
    };
    let cluster = spec.cluster ?? '';
    if (!cluster && !spec.broker) {
      // No target named: every master of every cluster (one cluster is the common case).
      const names = Object.keys((await this.deps.namesrv.clusterInfo()).cluster_addr_table);
      if (names.length === 0) throw errors.unavailable('no broker is registered');
      if (names.length > 1) {
        throw errors.badRequest(`several clusters (${names.join(', ')}): name one in "cluster"`, {
          field: 'cluster',
        });
      }
      cluster = names[0]!;
    }
    const brokers = await this.deps.namesrv.updateTopic({
      config,
      cluster_name: cluster,
      broker_name: spec.broker ?? '',
    });
    await this.deps.routes.invalidate(topic);
    return brokers;
  }

  async deleteTopic(topic: string, cluster = ''): Promise<void> {
    checkTopicName(topic);
    await this.deps.namesrv.deleteTopic({ topic, cluster_name: cluster });
    await this.deps.routes.invalidate(topic);
  }

  /** The topic's route as the name servers see it (fresh, not cached). */
  async route(topic: string): Promise<TopicRoute> {
    checkTopicName(topic);
    const [route] = await this.deps.namesrv.routes([topic]);
    if (!route || route.status?.code === Code.TOPIC_NOT_FOUND) throw errors.topicNotFound(topic);
    return route;
  }

  private async masters(): Promise<Master[]> {
    const info = await this.deps.namesrv.clusterInfo();
    return Object.values(info.broker_addr_table).flatMap((b) => {
      const addr = masterAddrOf(b.broker_addrs);
      return addr ? [{ brokerName: b.broker_name, addr }] : [];
    });
  }

  /** Where a topic lives (its brokers), or every master when no topic is named. */
  private async brokersFor(topic: string | undefined): Promise<Master[]> {
    if (!topic) return this.masters();
    const targets = await this.deps.routes.readable(topic);
    return targets.map((t) => ({ brokerName: t.brokerName, addr: t.addr }));
  }

  /** Progress (offsets, lag, in flight) of a group on every broker; 404 when no broker knows it. */
  async groupProgress(group: string, topic?: string): Promise<GroupProgress> {
    checkGroupName(group);
    if (topic) checkTopicName(topic);
    const masters = await this.masters();
    const unreachable: string[] = [];
    const rows = await Promise.all(
      masters.map(async (m) => {
        try {
          const res = await this.call<
            GetConsumerProgressRequest,
            GetConsumerProgressResponse__Output
          >(m.addr, 'GetConsumerProgress', { consumer_group: group, topic: topic ?? '' });
          return res.queues.map(
            (q): QueueProgressRow => ({
              broker: m.brokerName,
              topic: q.topic,
              queueId: q.queue_id,
              brokerOffset: q.broker_offset,
              consumerOffset: q.consumer_offset,
              lag: Math.max(0, q.broker_offset - q.consumer_offset),
              inFlight: q.in_flight,
              lastTimestamp: q.last_timestamp_ms,
            }),
          );
        } catch (err) {
          if (isSluiceError(err) && !err.retriable) throw err;
          unreachable.push(m.brokerName);
          return [];
        }
      }),
    );
    const queues = rows
      .flat()
      .sort(
        (a, b) =>
          a.topic.localeCompare(b.topic) ||
          a.broker.localeCompare(b.broker) ||
          a.queueId - b.queueId,
      );
    if (queues.length === 0 && unreachable.length === 0) throw errors.groupNotFound(group);
    return { group, queues, totalLag: queues.reduce((n, q) => n + q.lag, 0), unreachable };
  }

  /** A message by its id (client id or offset id); 404 when no broker has it. */
  async messageById(id: string, topic?: string): Promise<StoredMessage__Output> {
    if (!id || id.length > 128) throw errors.illegalMessageId(id);
    const brokers = await this.brokersFor(topic);
    const found = await Promise.all(
      brokers.map((b) =>
        this.call<QueryMessageByIdRequest, QueryMessageResponse__Output>(
          b.addr,
          'QueryMessageById',
          {
            topic: topic ?? '',
            message_id: id,
          },
        ).then(
          (r) => r.messages,
          () => [] as StoredMessage__Output[],
        ),
      ),
    );
    const first = found.flat()[0];
    if (!first)
      throw errors.messageNotFound(
        `no message with id '${id}'${topic ? ` in topic '${topic}'` : ''}`,
      );
    return first;
  }

  /** Messages carrying a key, newest last, from every broker serving the topic. */
  async messagesByKey(
    topic: string,
    key: string,
    opts: { max?: number; begin?: number; end?: number } = {},
  ): Promise<StoredMessage__Output[]> {
    checkTopicName(topic);
    if (!key) throw errors.badRequest('key is required', { field: 'key' });
    const max = opts.max ?? DEFAULT_QUERY_MAX;
    const brokers = await this.brokersFor(topic);
    const found = await Promise.all(
      brokers.map((b) =>
        this.call<QueryMessageByKeyRequest, QueryMessageResponse__Output>(
          b.addr,
          'QueryMessageByKey',
          {
            topic,
            key,
            max,
            begin_timestamp_ms: opts.begin ?? 0,
            end_timestamp_ms: opts.end ?? 0,
          },
        ).then((r) => r.messages),
      ),
    );
    return found
      .flat()
      .sort((a, b) => a.store_timestamp_ms - b.store_timestamp_ms)
      .slice(-max);
  }
}

function clustersOf(info: ClusterInfo__Output): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, list] of Object.entries(info.cluster_addr_table))
    out[name] = [...list.broker_names].sort();
  return out;
}

function brokersOf(info: ClusterInfo__Output): BrokerSummary[] {
  return Object.values(info.broker_addr_table)
    .map((b) => {
      const addrs = brokerAddrsJson(b.broker_addrs);
      const live = Object.values(addrs)
        .map((addr) => info.live[addr])
        .filter((l) => l !== undefined)
        .map((l) => ({
          addr: l.broker_addr,
          role: l.broker_role,
          lastUpdateTimestamp: l.last_update_timestamp_ms,
          maxPhysicalOffset: l.max_physical_offset,
        }));
      return { cluster: b.cluster, brokerName: b.broker_name, addrs, live };
    })
    .sort((a, b) => a.brokerName.localeCompare(b.brokerName));
}
