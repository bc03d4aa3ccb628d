/**
 * Pop / ack / change-invisible: the queue semantics the gateway exposes.
 *
 * Per (group, topic, queue) the service keeps:
 *  - ackOffset: every queue offset below it is settled (committed through the
 *    ConsumerOffsetManager, so it survives a restart);
 *  - popOffset: the next offset never handed out;
 *  - inflight: offsets handed out and not settled, each with its pop time,
 *    invisible duration and attempt;
 *  - acked: settled offsets above ackOffset (acks arrive out of order).
 * Invariant: ackOffset <= every inflight/acked offset < popOffset.
 *
 * A message whose invisible time runs out is handed out again with attempt+1;
 * one that reaches maxReconsumeTimes deliveries goes to %DLQ%{group} instead.
 * After a restart, in-flight entries are forgotten: messages past the
 * committed offset are delivered again (at-least-once, never lost).
 */
import { Code, errors, statusOf } from '../../common/errors.js';
import type { StoredMessage } from '../../common/generated/sluice/v1/StoredMessage.js';
import { checkGroupName, checkTopicName, dlqTopicOf, isReadable } from '../../common/names.js';
import {
  decodeReceiptHandle,
  encodeReceiptHandle,
  type ReceiptHandle,
} from '../../common/receipt-handle.js';
import type { StoredRecord, TagFilter } from '../store/index.js';
import type { BrokerContext } from './broker-context.js';
import { toStoredMessage } from './message-codec.js';
import { SystemProperty } from './properties.js';
import { parseTagFilter } from './tag-filter.js';

export const MIN_INVISIBLE_MS = 1_000;
export const MAX_INVISIBLE_MS = 12 * 3600 * 1000;
export const MAX_POP_BATCH = 1024;
export const MAX_POLL_WAIT_MS = 60_000;

interface InFlight {
  popTime: number;
  invisibleMs: number;
  attempt: number;
}

interface QueueState {
  ackOffset: number;
  popOffset: number;
  inflight: Map<number, InFlight>;
  acked: Set<number>;
}

export interface PopRequest {
  group: string;
  topic: string;
  queueId: number;
  max: number;
  invisibleMs: number;
  waitMs: number;
  filter: string;
  signal?: AbortSignal;
}

export interface SettleResult {
  code: number;
  message: string;
  reason: string;
  receiptHandle?: string;
}

export class PopService {
  private readonly states = new Map<string, QueueState>();
  private readonly rr = new Map<string, number>();

  constructor(private readonly ctx: BrokerContext) {}

  private key(group: string, topic: string, queueId: number): string {
    return `${group}\u0000${topic}\u0000${queueId}`;
  }

  private state(group: string, topic: string, queueId: number): QueueState {
    const k = this.key(group, topic, queueId);
    let s = this.states.get(k);
    if (!s) {
      const min = this.ctx.store.minOffset(topic, queueId);
      const committed = this.ctx.offsets.get(group, topic, queueId);
      // A new group starts at the earliest message still stored.
      const start = Math.max(committed ?? min, min);
      s = { ackOffset: start, popOffset: start, inflight: new Map(), acked: new Set() };
      this.states.set(k, s);
    }
    // Retention may have removed what the group had not consumed: move it forward.
    const min = this.ctx.store.minOffset(topic, queueId);
    if (s.ackOffset < min) {
      for (const o of s.inflight.keys()) if (o < min) s.inflight.delete(o);
      for (const o of s.acked) if (o < min) s.acked.delete(o);
      s.ackOffset = min;
      s.popOffset = Math.max(s.popOffset, min);
    }
    return s;
  }

  /** Drops cached state of a group's topic (after its offsets were reset). */
  forget(group: string, topic: string): void {
    const prefix = `${group}\u0000${topic}\u0000`;
    for (const k of [...this.states.keys()]) if (k.startsWith(prefix)) this.states.delete(k);
  }

  /** Messages popped and not yet settled, for a group (all topics) or everything. */
  inFlightCount(group?: string, topic?: string, queueId?: number): number {
    let n = 0;
    for (const [k, s] of this.states) {
      const [g, t, q] = k.split('\u0000');
      if (group !== undefined && g !== group) continue;
      if (topic !== undefined && t !== topic) continue;
      if (queueId !== undefined && Number(q) !== queueId) continue;
      n += s.inflight.size;
    }
    return n;
  }

  async pop(req: PopRequest): Promise<StoredMessage[]> {
    const topic = checkTopicName(req.topic);
    const group = checkGroupName(req.group);
    if (req.invisibleMs < MIN_INVISIBLE_MS || req.invisibleMs > MAX_INVISIBLE_MS) {
      throw errors.illegalInvisibleTime(
        req.invisibleMs,
        `must be between ${MIN_INVISIBLE_MS} and ${MAX_INVISIBLE_MS} ms`,
      );
    }
    const max = Math.min(Math.max(1, req.max), MAX_POP_BATCH);
    const filter = parseTagFilter(req.filter);
    const config = this.ctx.topics.get(topic);
    if (!config) throw errors.topicNotFound(topic);
    if (!isReadable(config.perm) || !isReadable(this.ctx.perm())) {
      throw errors.noPermission(`topic '${topic}' is not readable here`);
    }
    const groupConfig = await this.ctx.groups.require(group);
    if (!groupConfig.consume_enable) throw errors.forbidden(`group '${group}' may not consume`);
    const deadline = this.ctx.clock() + Math.min(Math.max(0, req.waitMs), MAX_POLL_WAIT_MS);
    for (;;) {
      const out = await this.popOnce(group, topic, config.read_queue_nums, req, max, filter);
      const now = this.ctx.clock();
      if (out.length > 0 || now >= deadline || req.signal?.aborted) return out;
      // Sleep until a message arrives, the next in-flight message becomes visible, or the deadline.
      const nextVisible = this.nextVisibleAt(group, topic);
      const until = Math.min(deadline, nextVisible ?? deadline);
      await this.ctx.notifier.wait([topic], Math.max(1, until - now), req.signal);
    }
  }

  private nextVisibleAt(group: string, topic: string): number | undefined {
    let next: number | undefined;
    const prefix = `${group}\u0000${topic}\u0000`;
    for (const [k, s] of this.states) {
      if (!k.startsWith(prefix)) continue;
      for (const f of s.inflight.values()) {
        const at = f.popTime + f.invisibleMs;
        if (next === undefined || at < next) next = at;
      }
    }
    return next;
  }

  private async popOnce(
    group: string,
    topic: string,
    queueNums: number,
    req: PopRequest,
    max: number,
    filter: TagFilter | null,
  ): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    const queues =
      req.queueId >= 0 ? [req.queueId] : Array.from({ length: queueNums }, (_, i) => i);
    const rrKey = `${group}\u0000${topic}`;
    const start = this.rr.get(rrKey) ?? 0;
    this.rr.set(rrKey, (start + 1) % Math.max(1, queues.length));
    const maxAttempts =
      this.ctx.groups.get(group)?.retry_max_times || this.ctx.options.maxReconsumeTimes;
    for (let i = 0; i < queues.length && out.length < max; i++) {
      const queueId = queues[(start + i) % queues.length]!;
      const s = this.state(group, topic, queueId);
      const now = this.ctx.clock();
      // 1. Redeliveries whose invisible time ran out.
      for (const [offset, f] of s.inflight) {
        if (out.length >= max) break;
        if (f.popTime + f.invisibleMs > now) continue;
        const read = await this.ctx.store.read(topic, queueId, offset, 1);
        const record = read.records[0];
        if (!record || record.queueOffset !== offset) {
          this.settle(group, topic, queueId, s, offset);
          continue;
        }
        if (f.attempt >= maxAttempts) {
          await this.toDeadLetter(group, record, f.attempt);
          this.settle(group, topic, queueId, s, offset);
          continue;
        }
        out.push(this.deliver(group, topic, queueId, s, record, f.attempt + 1, req.invisibleMs));
      }
      // 2. New messages.
      if (out.length >= max) break;
      const read = await this.ctx.store.read(topic, queueId, s.popOffset, max - out.length, filter);
      const from = s.popOffset;
      s.popOffset = Math.max(s.popOffset, read.nextOffset);
      const delivered = new Set<number>();
      for (const record of read.records) {
        delivered.add(record.queueOffset);
        out.push(this.deliver(group, topic, queueId, s, record, 1, req.invisibleMs));
      }
      // Entries skipped by the tag filter are settled for this group.
      for (let o = from; o < s.popOffset; o++) {
        if (!delivered.has(o)) this.settle(group, topic, queueId, s, o);
      }
    }
    return out;
  }

  private deliver(
    group: string,
    topic: string,
    queueId: number,
    s: QueueState,
    record: StoredRecord,
    attempt: number,
    invisibleMs: number,
  ): StoredMessage {
    const popTime = this.ctx.clock();
    s.inflight.set(record.queueOffset, { popTime, invisibleMs, attempt });
    const handle = this.encode({
      brokerName: this.ctx.options.brokerName,
      topic,
      queueId,
      offset: record.queueOffset,
      popTime,
      invisibleMs,
      attempt,
      group,
    });
    return toStoredMessage(record, this.ctx.options.brokerName, {
      deliveryAttempt: attempt,
      receiptHandle: handle,
    });
  }

  private encode(h: ReceiptHandle): string {
    return encodeReceiptHandle(h, this.ctx.options.receiptHandleSecret);
  }

  /** Marks an offset settled and moves the committed offset over settled ones. */
  private settle(group: string, topic: string, queueId: number, s: QueueState, offset: number): void {
    s.inflight.delete(offset);
    if (offset < s.ackOffset) return;
    s.acked.add(offset);
    const before = s.ackOffset;
    while (s.acked.delete(s.ackOffset)) s.ackOffset++;
    if (s.ackOffset !== before) this.ctx.offsets.commit(group, topic, queueId, s.ackOffset);
  }

  /** Finds the in-flight entry a handle names; throws when forged or stale. */
  private resolve(
    group: string,
    topic: string,
    text: string,
  ): { h: ReceiptHandle; s: QueueState; f: InFlight } {
    const h = decodeReceiptHandle(text, this.ctx.options.receiptHandleSecret);
    if (h.brokerName !== this.ctx.options.brokerName) {
      throw errors.invalidReceiptHandle(`handle belongs to broker ${h.brokerName}`);
    }
    if (h.group !== group) throw errors.invalidReceiptHandle(`handle belongs to group ${h.group}`);
    if (h.topic !== topic) throw errors.invalidReceiptHandle(`handle belongs to topic ${h.topic}`);
    const s = this.state(group, topic, h.queueId);
    const f = s.inflight.get(h.offset);
    if (!f || f.popTime !== h.popTime) throw errors.receiptHandleExpired();
    return { h, s, f };
  }

  ack(group: string, topic: string, handles: readonly string[]): SettleResult[] {
    return handles.map((text) => {
      try {
        const { h, s } = this.resolve(group, topic, text);
        this.settle(group, topic, h.queueId, s, h.offset);
        return { code: Code.OK, message: 'OK', reason: '' };
      } catch (err) {
        return statusOf(err);
      }
    });
  }

  changeInvisible(
    group: string,
    topic: string,
    entries: readonly { receipt_handle: string; invisible_ms: number }[],
  ): SettleResult[] {
    return entries.map((entry) => {
      try {
        if (entry.invisible_ms < 0 || entry.invisible_ms > MAX_INVISIBLE_MS) {
          throw errors.illegalInvisibleTime(entry.invisible_ms, `must be 0..${MAX_INVISIBLE_MS} ms`);
        }
        const { h, f } = this.resolve(group, topic, entry.receipt_handle);
        f.popTime = this.ctx.clock();
        f.invisibleMs = entry.invisible_ms;
        if (entry.invisible_ms === 0) this.ctx.notifier.notify(topic);
        return {
          code: Code.OK,
          message: 'OK',
          reason: '',
          receiptHandle: this.encode({ ...h, popTime: f.popTime, invisibleMs: f.invisibleMs }),
        };
      } catch (err) {
        return statusOf(err);
      }
    });
  }

  async forwardToDeadLetter(group: string, topic: string, handle: string): Promise<void> {
    const { h, s, f } = this.resolve(group, topic, handle);
    const read = await this.ctx.store.read(topic, h.queueId, h.offset, 1);
    const record = read.records[0];
    if (record && record.queueOffset === h.offset) await this.toDeadLetter(group, record, f.attempt);
    this.settle(group, topic, h.queueId, s, h.offset);
  }

  private async toDeadLetter(group: string, record: StoredRecord, attempts: number): Promise<void> {
    const dlq = dlqTopicOf(group);
    await this.ctx.topics.getOrCreate(dlq, true, 1);
    await this.ctx.store.appendBatch([
      {
        topic: dlq,
        queueId: 0,
        body: record.body,
        tag: record.tag,
        keys: record.keys,
        properties: {
          ...record.properties,
          [SystemProperty.REAL_TOPIC]: record.properties[SystemProperty.REAL_TOPIC] ?? record.topic,
          [SystemProperty.ORIGIN_MESSAGE_ID]: record.messageId,
        },
        messageId: record.messageId,
        bornTimestamp: record.bornTimestamp,
        bornHost: record.bornHost,
        reconsumeTimes: attempts,
      },
    ]);
    this.ctx.logger.info(
      { group, topic: record.topic, messageId: record.messageId, attempts },
      'message moved to dead-letter queue',
    );
  }
}
