/**
 * Where a queue's offsets are: the first one still stored, the next one to
 * be written, or the first stored at or after a time. For pull consumers
 * choosing where to start (the public protocol's QueryOffset). Pulls and
 * group offsets themselves are GatewayService's.
 */
import { errors } from '../../common/errors.js';
import type { GetTopicStatusRequest } from '../../common/generated/sluice/v1/GetTopicStatusRequest.js';
import type { GetTopicStatusResponse__Output } from '../../common/generated/sluice/v1/GetTopicStatusResponse.js';
import type { SearchOffsetByTimeRequest } from '../../common/generated/sluice/v1/SearchOffsetByTimeRequest.js';
import type { SearchOffsetByTimeResponse__Output } from '../../common/generated/sluice/v1/SearchOffsetByTimeResponse.js';
import { callUnary } from '../../common/grpc.js';
import { checkTopicName } from '../../common/names.js';
import type { BrokerPool } from './broker-pool.js';
import type { RouteResolver } from './route-resolver.js';

export type OffsetPolicy = 'BEGINNING' | 'END' | 'TIMESTAMP';

export interface QueueRef {
  topic: string;
  /** Empty = the topic's only broker. */
  brokerName: string;
  queueId: number;
}

export interface OffsetQueryDeps {
  routes: RouteResolver;
  brokers: BrokerPool;
  rpcTimeoutMs: number;
}

export class OffsetQuery {
  constructor(private readonly deps: OffsetQueryDeps) {}

  private async addrOf(q: QueueRef): Promise<string> {
    checkTopicName(q.topic);
    const readable = await this.deps.routes.readable(q.topic);
    const t = q.brokerName
      ? readable.find((b) => b.brokerName === q.brokerName)
      : readable.length === 1
        ? readable[0]
        : undefined;
    if (!t) {
      throw q.brokerName
        ? errors.notFound(`broker '${q.brokerName}' does not serve topic '${q.topic}'`)
        : errors.badRequest(`topic '${q.topic}' is on ${readable.length} brokers: name one`);
    }
    if (!Number.isInteger(q.queueId) || q.queueId < 0 || q.queueId >= t.readQueueNums) {
      throw errors.badRequest(
        `queue ${q.queueId} does not exist on broker ${t.brokerName} for topic '${q.topic}'`,
      );
    }
    return t.addr;
  }

  async query(q: QueueRef, policy: OffsetPolicy, timestampMs = 0): Promise<number> {
    const client = this.deps.brokers.get(await this.addrOf(q));
    if (policy === 'TIMESTAMP') {
      const res = await callUnary<SearchOffsetByTimeRequest, SearchOffsetByTimeResponse__Output>(
        client,
        client.SearchOffsetByTime as never,
        { topic: q.topic, queue_id: q.queueId, timestamp_ms: timestampMs },
        this.deps.rpcTimeoutMs,
      );
      return res.offset;
    }
    const status = await callUnary<GetTopicStatusRequest, GetTopicStatusResponse__Output>(
      client,
      client.GetTopicStatus as never,
      { topic: q.topic },
      this.deps.rpcTimeoutMs,
    );
    const queue = status.queues.find((s) => s.queue_id === q.queueId);
    if (!queue)
      throw errors.badRequest(`topic '${q.topic}' has no queue ${q.queueId} on that broker`);
    return policy === 'BEGINNING' ? queue.min_offset : queue.max_offset;
  }
}
