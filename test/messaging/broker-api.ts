/**
 * A typed, promise-based client of the broker's internal gRPC API for the
 * messaging tests (real broker processes, no gateway).
 */
import { messagesOf } from '../../common/compact-messages.js';
import type { BrokerClient } from '../../common/generated/sluice/v1/Broker.js';
import type { EndTransactionEntry } from '../../common/generated/sluice/v1/EndTransactionEntry.js';
import type { Message } from '../../common/generated/sluice/v1/Message.js';
import type { OrphanedTransaction__Output } from '../../common/generated/sluice/v1/OrphanedTransaction.js';
import type { PopMessagesResponse__Output } from '../../common/generated/sluice/v1/PopMessagesResponse.js';
import type { PullMessagesRequest } from '../../common/generated/sluice/v1/PullMessagesRequest.js';
import type { PullMessagesResponse__Output } from '../../common/generated/sluice/v1/PullMessagesResponse.js';
import type { QueueProgress__Output } from '../../common/generated/sluice/v1/QueueProgress.js';
import type { SendResult__Output } from '../../common/generated/sluice/v1/SendResult.js';
import type { Status__Output } from '../../common/generated/sluice/v1/Status.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import type { SubscriptionGroupConfig } from '../../common/generated/sluice/v1/SubscriptionGroupConfig.js';
import type { TopicConfig } from '../../common/generated/sluice/v1/TopicConfig.js';
import { callUnary } from '../../common/grpc.js';
import { brokerClient } from '../harness/clients.js';

export const OK = 20000;

export interface PopOptions {
  max?: number;
  invisibleMs?: number;
  waitMs?: number;
  filter?: string;
  queueId?: number;
  /** Ask for the compact answer (as the gateway does); the result is expanded either way. */
  compact?: boolean;
  /** Called with the raw answer, before expansion. */
  onAnswer?: (res: PopMessagesResponse__Output) => void;
}

export class BrokerApi {
  readonly client: BrokerClient;

  constructor(readonly addr: string) {
    this.client = brokerClient(addr);
  }

  close(): void {
    this.client.close();
  }

  private call<Req, Res>(method: keyof BrokerClient, req: Req, timeoutMs = 10_000): Promise<Res> {
    const c = this.client;
    return callUnary<Req, Res>(c, (c as any)[method], req, timeoutMs);
  }

  async send(
    topic: string,
    messages: Array<Partial<Message>>,
    queueId = -1,
  ): Promise<SendResult__Output[]> {
    const res = await this.call<unknown, { results: SendResult__Output[] }>('SendMessages', {
      entries: messages.map((m) => ({
        message: { topic, body: Buffer.from(''), ...m },
        queue_id: queueId,
      })),
    });
    return res.results;
  }

  /** Sends bodies and throws unless every entry is OK. */
  async sendOk(
    topic: string,
    messages: Array<Partial<Message>>,
    queueId = -1,
  ): Promise<SendResult__Output[]> {
    const results = await this.send(topic, messages, queueId);
    const bad = results.find((r) => r.status?.code !== OK);
    if (bad) throw new Error(`send failed: ${JSON.stringify(bad.status)}`);
    return results;
  }

  async pop(group: string, topic: string, o: PopOptions = {}): Promise<StoredMessage__Output[]> {
    const waitMs = o.waitMs ?? 0;
    const res = await this.call<unknown, PopMessagesResponse__Output>(
      'PopMessages',
      {
        consumer_group: group,
        topic,
        queue_id: o.queueId ?? -1,
        max_messages: o.max ?? 32,
        invisible_ms: o.invisibleMs ?? 30_000,
        max_wait_ms: waitMs,
        filter: { type: 'TAG', expression: o.filter ?? '*' },
        compact_messages: o.compact ?? false,
      },
      waitMs + 10_000,
    );
    o.onAnswer?.(res);
    return messagesOf(res);
  }

  async ack(group: string, topic: string, handles: string[]): Promise<Status__Output[]> {
    const res = await this.call<unknown, { results: Status__Output[] }>('AckMessages', {
      consumer_group: group,
      topic,
      receipt_handles: handles,
    });
    return res.results;
  }

  async changeInvisible(
    group: string,
    topic: string,
    handle: string,
    invisibleMs: number,
  ): Promise<{ status: Status__Output | null; receipt_handle: string }> {
    const res = await this.call<
      unknown,
      { results: Array<{ status: Status__Output | null; receipt_handle: string }> }
    >('ChangeInvisibleTime', {
      consumer_group: group,
      topic,
      entries: [{ receipt_handle: handle, invisible_ms: invisibleMs }],
    });
    return res.results[0]!;
  }

  forwardToDlq(group: string, topic: string, handle: string): Promise<Status__Output> {
    return this.call('ForwardToDeadLetterQueue', {
      consumer_group: group,
      topic,
      receipt_handle: handle,
    });
  }

  pull(req: PullMessagesRequest): Promise<PullMessagesResponse__Output> {
    return this.call(
      'PullMessages',
      { commit_offset: -1, ...req },
      Number(req.max_wait_ms ?? 0) + 10_000,
    );
  }

  async endTransactions(entries: EndTransactionEntry[]): Promise<Status__Output[]> {
    const res = await this.call<unknown, { results: Status__Output[] }>('EndTransaction', {
      entries,
    });
    return res.results;
  }

  async orphans(max = 100): Promise<OrphanedTransaction__Output[]> {
    const res = await this.call<unknown, { transactions: OrphanedTransaction__Output[] }>(
      'GetOrphanedTransactions',
      { max },
    );
    return res.transactions;
  }

  updateGroup(config: SubscriptionGroupConfig): Promise<unknown> {
    return this.call('UpdateSubscriptionGroup', config);
  }

  updateTopic(config: TopicConfig): Promise<unknown> {
    return this.call('UpdateTopic', config);
  }

  async progress(group: string, topic = ''): Promise<QueueProgress__Output[]> {
    const res = await this.call<unknown, { queues: QueueProgress__Output[] }>(
      'GetConsumerProgress',
      {
        consumer_group: group,
        topic,
      },
    );
    return res.queues;
  }

  async offsets(
    group: string,
    topic = '',
    clientId = '',
  ): Promise<Array<{ topic: string; queue_id: number; offset: number }>> {
    const res = await this.call<
      unknown,
      { offsets: Array<{ topic: string; queue_id: number; offset: number }> }
    >('GetConsumerOffsets', { consumer_group: group, topic, client_id: clientId });
    return res.offsets;
  }

  async updateOffsets(
    group: string,
    offsets: Array<{ topic: string; queue_id: number; offset: number }>,
    clientId = '',
  ): Promise<Status__Output[]> {
    const res = await this.call<unknown, { results: Status__Output[] }>('UpdateConsumerOffsets', {
      consumer_group: group,
      offsets,
      client_id: clientId,
    });
    return res.results;
  }

  async resetOffsetByTime(group: string, topic: string, timestampMs: number) {
    const res = await this.call<unknown, { offsets: Array<{ queue_id: number; offset: number }> }>(
      'ResetOffsetByTime',
      { consumer_group: group, topic, timestamp_ms: timestampMs },
    );
    return res.offsets;
  }

  async queryById(topic: string, id: string): Promise<StoredMessage__Output[]> {
    const res = await this.call<unknown, { messages: StoredMessage__Output[] }>(
      'QueryMessageById',
      {
        topic,
        message_id: id,
      },
    );
    return res.messages;
  }

  async queryByKey(topic: string, key: string): Promise<StoredMessage__Output[]> {
    const res = await this.call<unknown, { messages: StoredMessage__Output[] }>(
      'QueryMessageByKey',
      {
        topic,
        key,
        max: 32,
      },
    );
    return res.messages;
  }

  async queryByOffset(
    topic: string,
    queueId: number,
    offset: number,
    max = 1,
  ): Promise<StoredMessage__Output[]> {
    const res = await this.call<unknown, { messages: StoredMessage__Output[] }>(
      'QueryMessageByQueueOffset',
      {
        topic,
        queue_id: queueId,
        offset,
        max,
      },
    );
    return res.messages;
  }

  async status(): Promise<Record<string, string>> {
    const res = await this.call<unknown, { stats: Record<string, string> }>('GetBrokerStatus', {});
    return res.stats;
  }

  /** Every message of a topic's queue from offset 0 (no group involved). */
  async readAll(topic: string, queueId: number): Promise<StoredMessage__Output[]> {
    const out: StoredMessage__Output[] = [];
    let offset = 0;
    for (;;) {
      const r = await this.pull({ topic, queue_id: queueId, offset, max_messages: 512 });
      out.push(...r.messages);
      if (r.messages.length === 0 || r.next_offset <= offset) return out;
      offset = r.next_offset;
    }
  }
}

export function body(m: StoredMessage__Output): string {
  return Buffer.from(m.message!.body).toString('utf8');
}

/** Pops until `count` messages arrived (or timeout); answers them in arrival order. */
export async function popAtLeast(
  api: BrokerApi,
  group: string,
  topic: string,
  count: number,
  o: PopOptions = {},
  timeoutMs = 20_000,
): Promise<StoredMessage__Output[]> {
  const out: StoredMessage__Output[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) {
    out.push(
      ...(await api.pop(group, topic, { waitMs: 1_000, ...o, max: Math.min(32, o.max ?? 32) })),
    );
  }
  return out;
}
