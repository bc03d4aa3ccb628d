/**
 * Send: validates a batch, picks each message's queue, appends every valid
 * message with ONE appendBatch and answers per entry.
 *
 *  - queue: the hash of its message group when it has one (FIFO: a group
 *    always lands on one queue, whatever queue_id says), else the entry's
 *    queue_id when given, else round robin over the topic's writable queues
 *    in runs: a batch's other entries of a topic are split into one run of
 *    consecutive entries per queue, so each queue's messages lie together in
 *    the commitlog and a consumer reads them with one short read instead of
 *    one read spanning every queue's (a batch no larger than the queue count
 *    goes one entry per queue, as single sends do);
 *  - a future delivery time or a delay level → the timer topic (TimerService);
 *  - transactional → the half topic (TransactionService), answered with a
 *    transaction_id;
 *  - a failing entry (too large, reserved property, bad delay …) fails alone.
 */
import { Code, errors, statusOf } from '../../common/errors.js';
import type { Message__Output } from '../../common/generated/sluice/v1/Message.js';
import type { SendEntry__Output } from '../../common/generated/sluice/v1/SendEntry.js';
import type { SendResult } from '../../common/generated/sluice/v1/SendResult.js';
import { checkTopicName, isWritable } from '../../common/names.js';
import type { TopicConfig } from '../metadata/topic-config-manager.js';
import type { MessageInput } from '../store/index.js';
import { newUniqueMessageId } from '../store/message-id.js';
import type { BrokerContext } from './broker-context.js';
import { isReservedProperty, SystemProperty } from './properties.js';
import { isSystemTopic } from './system-topics.js';
import type { TimerService } from './timer-service.js';
import type { TransactionService } from './transaction-service.js';

/** Java's String.hashCode, so a message group maps to the queue RocketMQ would pick. */
function javaHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/** True when text holds a character that would break the stored `k\u0001v\u0002` property framing. */
function hasSeparator(text: string): boolean {
  return text.includes('\u0001') || text.includes('\u0002');
}

const OK_STATUS = { code: Code.OK, message: 'OK', reason: '' };

type Kind = 'normal' | 'timer' | 'half';

/**
 * Moments of one send, for its trace (broker/store-tracing.ts): the batch
 * written to the commitlog, stored (flushed too under SYNC_FLUSH), and
 * answered by the replication wait with its status code.
 */
export interface SendPhases {
  written(): void;
  stored(): void;
  replicated(code: number): void;
}

/** How a batch's auto-placed entries of one topic go to queues (see pickQueue). */
interface Spread {
  /** Queue of the first run. */
  start: number;
  /** Entries per run (the last run may be shorter). */
  run: number;
  /** Auto-placed entries of the topic given a queue so far in this batch. */
  taken: number;
}

interface Prepared {
  input: MessageInput;
  kind: Kind;
  /** Queue chosen in the real topic (timer and half records are stored in queue 0 of their topic). */
  queueId: number;
  dueAt: number;
}

export class SendService {
  private readonly roundRobin = new Map<string, number>();

  constructor(
    private readonly ctx: BrokerContext,
    private readonly timer: TimerService,
    private readonly transactions: TransactionService,
  ) {}

  /** Throws when this broker takes no writes at all (slave, or write permission wiped). */
  checkWritable(): void {
    const { options } = this.ctx;
    if (options.brokerRole === 'SLAVE') throw errors.notMaster(options.brokerName);
    if (!isWritable(this.ctx.perm())) {
      throw errors.noPermission(`broker ${options.brokerName} has no write permission`);
    }
  }

  async send(entries: readonly SendEntry__Output[], phases?: SendPhases): Promise<SendResult[]> {
    this.checkWritable();
    const configs = await this.topicConfigs(entries);
    const now = this.ctx.clock();
    const spreads = this.spreadsOf(entries, configs);
    const results: SendResult[] = new Array(entries.length);
    const prepared: Prepared[] = [];
    const slots: number[] = [];
    for (let i = 0; i < entries.length; i++) {
      try {
        prepared.push(this.prepare(entries[i]!, configs, spreads, now));
        slots.push(i);
      } catch (err) {
        results[i] = { status: statusOf(err) };
      }
    }
    if (prepared.length === 0) return results;
    let appended: Awaited<ReturnType<typeof this.ctx.store.appendBatch>>;
    try {
      appended = await this.ctx.store.appendBatch(
        prepared.map((p) => p.input),
        phases?.written,
      );
    } catch (err) {
      const status = statusOf(err);
      for (const slot of slots) results[slot] = { status };
      return results;
    }
    // SYNC_MASTER (broker/ha): OK only once a slave has the bytes; else each entry carries the HA error.
    phases?.stored();
    const replicated = (await this.ctx.replication?.waitForSlaves(appended)) ?? OK_STATUS;
    phases?.replicated(replicated.code ?? Code.OK);
    const timerResults = [];
    const timerDue = [];
    const halfResults = [];
    const halfInputs = [];
    for (let j = 0; j < prepared.length; j++) {
      const p = prepared[j]!;
      const r = appended[j]!;
      if (p.kind === 'timer') {
        timerResults.push(r);
        timerDue.push(p.dueAt);
      } else if (p.kind === 'half') {
        halfResults.push(r);
        halfInputs.push(p.input);
      }
      results[slots[j]!] = {
        status: replicated,
        message_id: r.messageId,
        offset_message_id: r.offsetMessageId,
        queue_id: p.queueId,
        queue_offset: r.queueOffset,
        physical_offset: r.physicalOffset,
        transaction_id: p.kind === 'half' ? r.offsetMessageId : '',
      };
    }
    if (timerResults.length > 0) this.timer.track(timerResults, timerDue);
    if (halfResults.length > 0) this.transactions.track(halfResults, halfInputs);
    return results;
  }

  /** Each distinct topic's config, created when auto-creation is on; null when unknown. */
  private async topicConfigs(
    entries: readonly SendEntry__Output[],
  ): Promise<Map<string, TopicConfig | null>> {
    const out = new Map<string, TopicConfig | null>();
    for (const e of entries) {
      const topic = e.message?.topic;
      if (topic === undefined || out.has(topic)) continue;
      const known = this.ctx.topics.get(topic);
      if (known) {
        out.set(topic, known);
        continue;
      }
      try {
        checkTopicName(topic);
        if (isSystemTopic(topic)) throw errors.illegalTopic(topic, 'reserved for the broker');
        out.set(topic, (await this.ctx.topics.getOrCreate(topic)) ?? null);
      } catch {
        out.set(topic, null); // prepare() reports the reason per entry
      }
    }
    return out;
  }

  /**
   * Plans the runs of each topic's auto-placed entries in this batch and
   * moves the topic's round robin past the queues they take.
   */
  private spreadsOf(
    entries: readonly SendEntry__Output[],
    configs: Map<string, TopicConfig | null>,
  ): Map<string, Spread> {
    const counts = new Map<string, number>();
    for (const e of entries) {
      const m = e.message;
      const writeQueues = m ? configs.get(m.topic)?.write_queue_nums : undefined;
      if (!m || !writeQueues || !isAutoPlaced(e, writeQueues)) continue;
      counts.set(m.topic, (counts.get(m.topic) ?? 0) + 1);
    }
    const spreads = new Map<string, Spread>();
    for (const [topic, n] of counts) {
      const writeQueues = configs.get(topic)!.write_queue_nums;
      const start = ((this.roundRobin.get(topic) ?? -1) + 1) % writeQueues;
      const run = Math.ceil(n / writeQueues);
      this.roundRobin.set(topic, (start + Math.ceil(n / run) - 1) % writeQueues);
      spreads.set(topic, { start, run, taken: 0 });
    }
    return spreads;
  }

  private prepare(
    entry: SendEntry__Output,
    configs: Map<string, TopicConfig | null>,
    spreads: Map<string, Spread>,
    now: number,
  ): Prepared {
    const m = entry.message;
    if (!m) throw errors.badRequest('send entry has no message');
    const topic = checkTopicName(m.topic);
    if (isSystemTopic(topic)) throw errors.illegalTopic(topic, 'reserved for the broker');
    const max = this.ctx.options.maxMessageSize;
    if (m.body.length > max) throw errors.bodyTooLarge(m.body.length, max);
    const config = configs.get(topic);
    if (!config) throw errors.topicNotFound(topic);
    if (!isWritable(config.perm)) throw errors.noPermission(`topic '${topic}' is not writable`);
    checkTag(m.tag);
    for (const k of m.keys) checkKey(k);
    const properties = userPropertiesOf(m);
    if (m.message_group) {
      if (hasSeparator(m.message_group)) {
        throw errors.illegalMessageGroup('contains a control character');
      }
      properties[SystemProperty.MESSAGE_GROUP] = m.message_group;
    }
    if (m.traceparent) properties[SystemProperty.TRACEPARENT] = m.traceparent;
    if (m.tracestate) properties[SystemProperty.TRACESTATE] = m.tracestate;
    if (m.producer_group) properties[SystemProperty.PRODUCER_GROUP] = m.producer_group;
    const dueAt = this.timer.dueTime(m.delivery_timestamp_ms, m.delay_level, now);
    if (dueAt > 0 && m.transactional) {
      throw errors.conflictWithType(
        'a transactional message cannot have a delivery time or delay level',
      );
    }
    if (m.delay_level > 0) properties[SystemProperty.DELAY_LEVEL] = String(m.delay_level);
    const queueId = pickQueue(entry, config.write_queue_nums, spreads.get(topic));
    const input: MessageInput = {
      topic,
      queueId,
      body: m.body,
      tag: m.tag,
      keys: m.keys,
      properties,
      messageId: m.message_id || newUniqueMessageId(),
      bornTimestamp: m.born_timestamp_ms || now,
      bornHost: m.born_host || '127.0.0.1:0',
    };
    if (dueAt > 0) return { input: this.timer.wrap(input, dueAt), kind: 'timer', queueId, dueAt };
    if (m.transactional)
      return { input: this.transactions.wrap(input), kind: 'half', queueId, dueAt };
    return { input, kind: 'normal', queueId, dueAt };
  }
}

/** True when the broker chooses the entry's queue: no message group, no queue of the topic asked for. */
function isAutoPlaced(entry: SendEntry__Output, writeQueues: number): boolean {
  return !entry.message?.message_group && !(entry.queue_id >= 0 && entry.queue_id < writeQueues);
}

function pickQueue(entry: SendEntry__Output, writeQueues: number, spread?: Spread): number {
  const group = entry.message?.message_group ?? '';
  // The group wins: its messages must share one queue to keep their order.
  if (group) return Math.abs(javaHash(group)) % writeQueues;
  if (!isAutoPlaced(entry, writeQueues)) return entry.queue_id;
  // spreadsOf counted every auto-placed entry of the topic, so spread is set.
  const k = spread!.taken++;
  return (spread!.start + Math.floor(k / spread!.run)) % writeQueues;
}

function checkTag(tag: string): void {
  if (tag.length === 0) return;
  if (tag.includes('||') || hasSeparator(tag) || tag.trim().length === 0) {
    throw errors.illegalTag(tag, "must not be blank or contain '||' or control characters");
  }
}

function checkKey(key: string): void {
  if (key.length === 0 || /\s/.test(key) || hasSeparator(key)) {
    throw errors.illegalMessageKey(key, 'must be non-empty without whitespace');
  }
}

function userPropertiesOf(m: Message__Output): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in m.properties) {
    const v = m.properties[k]!;
    if (isReservedProperty(k)) throw errors.illegalPropertyKey(k);
    if (k.length === 0 || hasSeparator(k) || hasSeparator(v)) {
      throw errors.illegalPropertyKey(k, 'has an empty name or a control character');
    }
    out[k] = v;
  }
  return out;
}
