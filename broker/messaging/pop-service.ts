/**
 * Pop / ack / change-invisible: the queue semantics the gateway exposes.
 *
 * State per (group, topic, queue) is a QueueState kept durable by the
 * ConsumeStateStore: `base` (everything below settled), settled offsets above
 * it, and the in-flight entries (pop time, invisible time, attempt). A pop
 * journals its entries before it answers; an ack journals the settlement
 * before it answers. So after a SIGKILL an un-acked message comes back only
 * when its invisible time runs out, and an acked one never comes back.
 *
 * Concurrent groups (RocketMQ's revive model): a message whose invisible time
 * runs out un-acked is re-put by the ReviveService into `%RETRY%{group}` with
 * reconsumeTimes = attempt, and the original offset is settled. A pop reads a
 * topic's queues and the group's retry topic (alternating which comes first);
 * retry records of the group's other topics wait in memory for their topic.
 * A receipt handle names the topic it was read from (the %RETRY% topic for
 * redeliveries), so an ack settles exactly one slot.
 *
 * Orderly (FIFO) groups (subscription group consume_message_orderly): a
 * message group has at most one message in flight; its next message is
 * handed out only after that one is acked or dead-lettered, and it is
 * redelivered in place (same offset, attempt + 1) when its time runs out.
 * Other message groups on the same queue keep flowing.
 *
 * Tag filters are applied by hash in the consume queue and re-checked on the
 * string (the store does both); offsets a filter skips are settled for the group.
 *
 * On a SLAVE (read-only store, no revive / timer / DLQ writers), pop, ack and
 * change-invisible work on the slave's own pop state, so consumers keep going
 * while the master is down (DESIGN.md §7):
 *  - the state of a queue starts at the group's offset as last replicated from
 *    the master (metadata sync), so what the master had in flight or acked
 *    out of order is delivered again: at least once, duplicates allowed;
 *  - a concurrent delivery whose invisible time runs out is delivered again in
 *    place (same offset and topic, attempt + 1), not re-put into %RETRY%;
 *  - a delivery that used its last attempt is not dead-lettered (that needs a
 *    write): it stays in flight, undelivered, until a master takes writes; the
 *    master still has the message in its own state and delivers or
 *    dead-letters it itself;
 *  - acks and invisible-time changes are local: they are not sent back to the
 *    master, which may deliver those messages again when it returns (handles
 *    issued by the master are stale on the slave and vice versa: 40013).
 * forwardToDeadLetter stays master-only. The metadata sync moves an idle
 * slave state forward to the master's offsets, never dropping what is in
 * flight here (broker/ha/metadata-applier.ts).
 */
import { Code, errors, statusOf } from '../../common/errors.js';
import type { StoredMessage } from '../../common/generated/sluice/v1/StoredMessage.js';
import {
  checkGroupName,
  checkTopicName,
  isReadable,
  RETRY_TOPIC_PREFIX,
  retryTopicOf,
} from '../../common/names.js';
import {
  decodeReceiptHandle,
  encodeReceiptHandle,
  type ReceiptHandle,
} from '../../common/receipt-handle.js';
import { BROKER_SCHEMA } from '../options.js';
import type { StoredRecord, TagFilter } from '../store/index.js';
import type { BrokerContext } from './broker-context.js';
import {
  type DeferredList,
  type InflightEntry,
  type PendingFifo,
  type QueueState,
  visibleAtOf,
} from './consume-state.js';
import type { ConsumeStateStore } from './consume-state-store.js';
import { InvisibleIndex } from './invisible-index.js';
import { toStoredMessage } from './message-codec.js';
import { SystemProperty } from './properties.js';
import { deadLetterInput, ensureGroupTopics, maxDeliveriesOf, realTopicOf } from './redelivery.js';
import { isInternalReader } from './system-topics.js';
import { matchesTag, parseTagFilter } from './tag-filter.js';

export const MIN_INVISIBLE_MS = 1_000;
export const MAX_INVISIBLE_MS = 12 * 3600 * 1000;
export const MAX_POP_BATCH = 1024;
export const MAX_POLL_WAIT_MS = 60_000;
/**
 * FIFO: records of busy message groups remembered (offset, position, group —
 * no body) per queue, at most. Past it, a busy group's records are skipped and
 * found again by a rescan, so other groups keep flowing.
 */
export const DEFAULT_FIFO_READ_AHEAD_RECORDS = 2048;
/** FIFO: message groups skipped past the read-ahead limit, per queue, at most (then reading pauses). */
export const MAX_FIFO_BLOCKED_GROUPS = 4096;
/** FIFO: records read per store call. */
const FIFO_READ_CHUNK = 256;
/** Store reads per queue and pop at most (bounds work when filters skip a lot). */
const MAX_READS_PER_QUEUE = 4;
/**
 * Retry records of a topic the group has not popped for this long are
 * dead-lettered: the group no longer consumes it, and keeping them would pin
 * the retry queue forever. A day, so that consumers of one topic being down
 * for a while (a deploy, an outage) does not send their retries to the DLQ.
 */
export const DEFAULT_DEFERRED_RETRY_TTL_MS = 24 * 60 * 60_000;
/**
 * Retry records of other topics held per group, at most (an entry is two
 * numbers). Past it, topics not popped for
 * DEFAULT_DEFERRED_RETRY_IDLE_UNDER_PRESSURE_MS are dead-lettered at once to
 * make room; if none is that idle, the retry queue is not read further until
 * some are taken.
 */
export const DEFAULT_MAX_DEFERRED_RETRIES = 16_384;
export const DEFAULT_DEFERRED_RETRY_IDLE_UNDER_PRESSURE_MS = 5 * 60_000;

/** Tunables of the pop service (tests shorten them). */
export interface PopLimits {
  deferredRetryTtlMs: number;
  maxDeferredRetries: number;
  deferredRetryIdleUnderPressureMs: number;
}

export interface PopRequest {
  group: string;
  topic: string;
  /** -1 = every readable queue. */
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

interface Target {
  st: QueueState;
  retry: boolean;
}

/** Output of one queue's turn: messages plus the durability of their journal records. */
interface Taken {
  messages: StoredMessage[];
  durable: Promise<unknown>[];
  /** The turn stopped at its read budget with more to read: go again before waiting. */
  more?: boolean;
}

/** Output of one round over a pop's queues. */
interface Round {
  messages: StoredMessage[];
  more: boolean;
}

const OK: SettleResult = { code: Code.OK, message: 'OK', reason: '' };
const NOTHING: Taken = { messages: [], durable: [] };

export class PopService {
  private readonly rr = new Map<string, number>();
  /** Entries of concurrent (non-FIFO) deliveries, by when they become visible. */
  readonly invisible = new InvisibleIndex();
  /** Called when an entry was made visible early (change-invisible to 0): revive now. */
  onVisibleNow: (() => void) | undefined;
  deadLettered = 0;
  private readonly limits: PopLimits;

  constructor(
    private readonly ctx: BrokerContext,
    readonly states: ConsumeStateStore,
    limits: Partial<PopLimits> = {},
  ) {
    this.limits = {
      deferredRetryTtlMs: limits.deferredRetryTtlMs ?? DEFAULT_DEFERRED_RETRY_TTL_MS,
      maxDeferredRetries: limits.maxDeferredRetries ?? DEFAULT_MAX_DEFERRED_RETRIES,
      deferredRetryIdleUnderPressureMs:
        limits.deferredRetryIdleUnderPressureMs ?? DEFAULT_DEFERRED_RETRY_IDLE_UNDER_PRESSURE_MS,
    };
    // In-flight concurrent entries recovered from the journal wait for the revive pass.
    for (const st of states.all()) {
      if (isInternalReader(st.group)) continue;
      for (const e of st.inflight.values()) if (!e.fifo) this.invisible.add(st, e);
    }
    if (ctx.options.receiptHandleSecret === BROKER_SCHEMA.receiptHandleSecret.default) {
      ctx.logger.warn(
        'receiptHandleSecret is the built-in default: anyone can forge receipt handles; set the same secret on every broker and gateway',
      );
    }
  }

  /** True while `e` is the live delivery of its offset in a state that was not dropped. */
  isLive(st: QueueState, e: InflightEntry): boolean {
    return (
      !st.dropped &&
      this.states.get(st.group, st.topic, st.queueId) === st &&
      st.inflight.get(e.offset) === e
    );
  }

  private state(group: string, topic: string, queueId: number): QueueState {
    return this.states.obtain(group, topic, queueId, () => {
      const min = this.ctx.store.minOffset(topic, queueId);
      const committed = this.ctx.offsets.get(group, topic, queueId);
      // A new group starts at the earliest message still stored.
      return Math.max(committed ?? min, min);
    });
  }

  /** Moves a group's position on one queue (offset reset); forgets its in-flight messages there. */
  async resetOffset(group: string, topic: string, queueId: number, offset: number): Promise<void> {
    const st = this.states.get(group, topic, queueId);
    if (!st) return;
    // Under the queue's lock: a pop reading this queue finishes first, so its
    // read cannot move the position past the reset point afterwards.
    await st.withLock(async () => {
      for (const e of st.inflight.values()) this.invisible.remove(e);
      await this.states.reset(st, offset);
    });
  }

  /** Forgets every state of a group (deleted), or of a topic when `topic` is given. */
  async forget(group: string | undefined, topic?: string): Promise<void> {
    const drops: Promise<void>[] = [];
    for (const st of [...this.states.all()]) {
      if (isInternalReader(st.group)) continue;
      if (group !== undefined && st.group !== group) continue;
      if (topic !== undefined && st.topic !== topic) continue;
      drops.push(
        st.withLock(() => {
          for (const e of st.inflight.values()) this.invisible.remove(e);
          return this.states.drop(st);
        }),
      );
    }
    await Promise.all(drops);
  }

  /** Messages popped and not yet settled, for a group (all topics) or everything. */
  inFlightCount(group?: string, topic?: string, queueId?: number): number {
    let n = 0;
    for (const st of this.states.all()) {
      if (isInternalReader(st.group)) continue;
      if (group !== undefined && st.group !== group) continue;
      if (topic !== undefined && st.topic !== topic) continue;
      if (queueId !== undefined && st.queueId !== queueId) continue;
      n += st.inflight.size;
    }
    return n;
  }

  /** Queue states of a group (for consumer progress). */
  statesOf(group: string): QueueState[] {
    return [...this.states.all()].filter((s) => s.group === group);
  }

  /** A slave pops from its own state but cannot write its (replicated) commitlog. */
  private get onSlave(): boolean {
    return this.ctx.options.brokerRole === 'SLAVE';
  }

  /** Dead-lettering writes the commitlog: master only. */
  private checkMaster(): void {
    if (this.onSlave) throw errors.notMaster(this.ctx.options.brokerName);
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
    if (topic.startsWith(RETRY_TOPIC_PREFIX)) {
      throw errors.badRequest(
        `pop '${topic.slice(RETRY_TOPIC_PREFIX.length)}' instead: retries come with it`,
      );
    }
    const max = Math.min(Math.max(1, req.max), MAX_POP_BATCH);
    const filter = parseTagFilter(req.filter);
    const config = this.ctx.topics.get(topic);
    if (!config) throw errors.topicNotFound(topic);
    if (!isReadable(config.perm) || !isReadable(this.ctx.perm())) {
      throw errors.noPermission(`topic '${topic}' is not readable here`);
    }
    if (req.queueId >= config.read_queue_nums) {
      throw errors.badRequest(`queue ${req.queueId} does not exist for topic '${topic}'`);
    }
    const groupConfig = await this.ctx.groups.require(group);
    if (!groupConfig.consume_enable) throw errors.forbidden(`group '${group}' may not consume`);
    const fifo = groupConfig.consume_message_orderly;
    const queueIds =
      req.queueId >= 0
        ? [req.queueId]
        : Array.from({ length: config.read_queue_nums }, (_, i) => i);
    const retryTopic = retryTopicOf(group);
    const waitTopics = fifo ? [topic] : [topic, retryTopic];
    const deadline = this.ctx.clock() + Math.min(Math.max(0, req.waitMs), MAX_POLL_WAIT_MS);
    for (;;) {
      // Taken before reading: an arrival (or a freed FIFO group) during the read
      // makes the wait below return at once instead of sleeping to the deadline.
      const mark = this.ctx.notifier.mark(waitTopics);
      const round = fifo
        ? await this.popFifo(group, topic, queueIds, max, filter, req.invisibleMs)
        : await this.popConcurrently(group, topic, queueIds, max, filter, req.invisibleMs);
      const out = round.messages;
      const now = this.ctx.clock();
      if (out.length > 0 || now >= deadline || req.signal?.aborted) return out;
      // Filters or busy FIFO groups used up the read budget: read on, don't sleep.
      if (round.more) continue;
      // Sleep until a message arrives (or, FIFO, an ack frees a message group or a
      // message becomes visible again), or the deadline.
      let until = deadline;
      if (this.onSlave) {
        // No revive pass here: wake when an in-flight message becomes visible again.
        const states = queueIds.map((q) => this.state(group, topic, q));
        if (!fifo) states.push(this.state(group, retryTopic, 0));
        const next = nextVisibleAfter(states, now);
        if (next !== undefined) until = Math.min(until, next);
      } else if (fifo) {
        const states = queueIds.map((q) => this.state(group, topic, q));
        const next = InvisibleIndex.earliest(states, true);
        if (next !== undefined) until = Math.min(until, Math.max(next, now + 1));
      }
      await this.ctx.notifier.wait(waitTopics, until - now, req.signal, mark);
    }
  }

  private nextRound(group: string, topic: string): number {
    const k = `${group}\u0000${topic}`;
    const n = this.rr.get(k) ?? 0;
    this.rr.set(k, n + 1 >= Number.MAX_SAFE_INTEGER ? 0 : n + 1);
    return n;
  }

  private async popConcurrently(
    group: string,
    topic: string,
    queueIds: number[],
    max: number,
    filter: TagFilter | null,
    invisibleMs: number,
  ): Promise<Round> {
    const round = this.nextRound(group, topic);
    const targets: Target[] = [];
    for (let i = 0; i < queueIds.length; i++) {
      const q = queueIds[(round + i) % queueIds.length]!;
      targets.push({ st: this.state(group, topic, q), retry: false });
    }
    const retrySt = this.state(group, retryTopicOf(group), 0);
    // Retries first on every other pop, so neither new messages nor retries starve.
    if (round % 2 === 0) targets.unshift({ st: retrySt, retry: true });
    else targets.push({ st: retrySt, retry: true });

    const out: StoredMessage[] = [];
    const durable: Promise<unknown>[] = [];
    let more = false;
    for (const t of targets) {
      if (out.length >= max) break;
      if (this.onSlave && t.st.inflight.size > 0) {
        const again = await t.st.withLock(() =>
          this.redeliverInPlace(t.st, topic, t.retry, max - out.length, filter, invisibleMs),
        );
        out.push(...again.messages);
        durable.push(...again.durable);
        if (out.length >= max) break;
      }
      if (!this.hasWork(t, topic)) continue;
      const taken = await t.st.withLock(() =>
        t.retry
          ? this.takeRetries(t.st, topic, max - out.length, filter, invisibleMs)
          : this.takeNew(t.st, max - out.length, filter, invisibleMs),
      );
      out.push(...taken.messages);
      durable.push(...taken.durable);
      more ||= taken.more === true;
    }
    // Answer only once the deliveries are journalled: a crash after this point
    // brings them back when their invisible time runs out, not before.
    await Promise.all(durable);
    return { messages: out, more };
  }

  /**
   * Slave only (no revive pass, no commitlog writes): concurrent deliveries of
   * `st` whose invisible time ran out go out again in place — same offset,
   * attempt + 1. One that used its last attempt stays in flight (dead-lettering
   * waits for a master). Retry-queue entries of other topics wait for their
   * topic. Caller holds the queue's lock.
   */
  private async redeliverInPlace(
    st: QueueState,
    topic: string,
    retry: boolean,
    max: number,
    filter: TagFilter | null,
    invisibleMs: number,
  ): Promise<Taken> {
    const messages: StoredMessage[] = [];
    const durable: Promise<unknown>[] = [];
    const settled: number[] = [];
    const now = this.ctx.clock();
    const maxDeliveries = maxDeliveriesOf(this.ctx, st.group);
    const due = [...st.inflight.values()]
      .filter((e) => !e.fifo && e.attempt < maxDeliveries && visibleAtOf(e) <= now)
      .sort((a, b) => visibleAtOf(a) - visibleAtOf(b));
    const epoch = st.epoch;
    for (const e of due) {
      if (messages.length >= max) break;
      const r = await this.ctx.store.readAt(e.physicalOffset);
      if (st.epoch !== epoch) return { messages: [], durable };
      if (st.inflight.get(e.offset) !== e) continue; // acked or changed meanwhile
      if (r && retry && realTopicOf(r) !== topic) continue;
      if (!r || !matchesTag(filter, r.tag)) {
        // Gone with retention, or no longer wanted by the group's filter.
        this.invisible.remove(e);
        settled.push(e.offset);
        continue;
      }
      const next: InflightEntry = {
        ...e,
        popTime: Math.max(this.ctx.clock(), e.popTime + 1),
        invisibleMs,
        attempt: e.attempt + 1,
      };
      // Replace the entry now: from here on the previous handle is stale.
      this.invisible.remove(e);
      this.invisible.add(st, next);
      durable.push(this.states.put(st, [next]));
      messages.push(this.message(st, r, next));
    }
    if (settled.length > 0) durable.push(this.states.settleOffsets(st, settled));
    return { messages, durable };
  }

  /** Cheap check (no I/O) whether a queue may have something to hand out (or expire). */
  private hasWork(t: Target, topic: string): boolean {
    if (t.retry) {
      if ((t.st.deferred.get(topic)?.entries.length ?? 0) > 0) return true;
      const now = this.ctx.clock();
      const ttl = this.deferredTtl(t.st);
      for (const [other, list] of t.st.deferred) {
        if (other !== topic && now - list.touchedAt >= ttl) return true;
      }
    }
    return t.st.readAhead < this.ctx.store.maxOffset(t.st.topic, t.st.queueId);
  }

  private entryFor(
    r: StoredRecord,
    popTime: number,
    invisibleMs: number,
    fifo: boolean,
  ): InflightEntry {
    return {
      offset: r.queueOffset,
      physicalOffset: r.physicalOffset,
      popTime,
      invisibleMs,
      attempt: r.reconsumeTimes + 1,
      messageGroup: fifo ? (r.properties[SystemProperty.MESSAGE_GROUP] ?? '') : '',
      fifo,
    };
  }

  private handleOf(st: QueueState, e: InflightEntry): string {
    const h: ReceiptHandle = {
      brokerName: this.ctx.options.brokerName,
      topic: st.topic,
      queueId: st.queueId,
      offset: e.offset,
      popTime: e.popTime,
      invisibleMs: e.invisibleMs,
      attempt: e.attempt,
      group: st.group,
    };
    const text = encodeReceiptHandle(h, this.ctx.options.receiptHandleSecret);
    e.handle = text;
    return text;
  }

  private message(st: QueueState, r: StoredRecord, e: InflightEntry): StoredMessage {
    return toStoredMessage(r, this.ctx.options.brokerName, {
      deliveryAttempt: e.attempt,
      receiptHandle: this.handleOf(st, e),
    });
  }

  /**
   * Offsets in [from, to) that the read passed over without returning (filtered
   * out, or below the store's min offset) are settled for the group.
   */
  private skippedRuns(
    st: QueueState,
    from: number,
    to: number,
    returned: readonly StoredRecord[],
  ): Array<[number, number]> {
    const runs: Array<[number, number]> = [];
    let cursor = Math.max(from, st.base);
    const close = (end: number) => {
      // Split around offsets that are in flight (a restart re-reads from base).
      let s = cursor;
      for (let o = cursor; o < end; o++) {
        if (st.inflight.has(o)) {
          if (o > s) runs.push([s, o]);
          s = o + 1;
        }
      }
      if (end > s) runs.push([s, end]);
    };
    for (const r of returned) {
      if (r.queueOffset > cursor) close(r.queueOffset);
      cursor = Math.max(cursor, r.queueOffset + 1);
    }
    if (to > cursor) close(to);
    return runs;
  }

  /** New messages of one queue (caller holds the queue's lock). */
  private async takeNew(
    st: QueueState,
    max: number,
    filter: TagFilter | null,
    invisibleMs: number,
  ): Promise<Taken> {
    const messages: StoredMessage[] = [];
    const entries: InflightEntry[] = [];
    const skipped: Array<[number, number]> = [];
    const epoch = st.epoch;
    let reads = 0;
    for (; reads < MAX_READS_PER_QUEUE && messages.length < max; reads++) {
      const from = st.readAhead;
      if (from >= this.ctx.store.maxOffset(st.topic, st.queueId)) break;
      const read = await this.ctx.store.read(
        st.topic,
        st.queueId,
        from,
        max - messages.length,
        filter,
      );
      // Reset (or dropped) while we read: what we read belongs to the old position.
      if (st.epoch !== epoch) return NOTHING;
      const popTime = this.ctx.clock();
      for (const r of read.records) {
        if (!st.isOpen(r.queueOffset)) continue; // settled or in flight (re-read after a restart)
        const e = this.entryFor(r, popTime, invisibleMs, false);
        entries.push(e);
        messages.push(this.message(st, r, e));
      }
      skipped.push(...this.skippedRuns(st, from, read.nextOffset, read.records));
      st.readAhead = Math.max(st.readAhead, read.nextOffset);
      if (read.nextOffset <= from) break;
    }
    const durable: Promise<unknown>[] = [];
    if (entries.length > 0) {
      durable.push(this.states.put(st, entries));
      for (const e of entries) this.invisible.add(st, e);
    }
    if (skipped.length > 0) durable.push(this.states.settle(st, skipped));
    const more =
      reads >= MAX_READS_PER_QUEUE && st.readAhead < this.ctx.store.maxOffset(st.topic, st.queueId);
    return { messages, durable, more };
  }

  /**
   * Retry records for `topic` from the group's retry queue (caller holds its
   * lock). Records of the group's other topics are kept aside for them (their
   * position only, at most maxDeferredRetries); those of a topic the group has
   * not popped for deferredRetryTtlMs are dead-lettered. The group's filter
   * applies to retries as to new messages.
   */
  private async takeRetries(
    st: QueueState,
    topic: string,
    max: number,
    filter: TagFilter | null,
    invisibleMs: number,
  ): Promise<Taken> {
    const messages: StoredMessage[] = [];
    const entries: InflightEntry[] = [];
    const settled: number[] = [];
    const durable: Promise<unknown>[] = [];
    const epoch = st.epoch;
    const deliver = (r: StoredRecord, popTime: number) => {
      if (!matchesTag(filter, r.tag)) {
        settled.push(r.queueOffset);
        return;
      }
      const e = this.entryFor(r, popTime, invisibleMs, false);
      entries.push(e);
      messages.push(this.message(st, r, e));
    };
    const waiting = st.deferred.get(topic);
    if (waiting) waiting.touchedAt = this.ctx.clock();
    if (waiting && waiting.entries.length > 0) {
      const take = waiting.entries.splice(0, max);
      if (waiting.entries.length === 0) st.deferred.delete(topic);
      const records = await Promise.all(take.map((d) => this.ctx.store.readAt(d.physicalOffset)));
      if (st.epoch !== epoch) return NOTHING;
      const popTime = this.ctx.clock();
      records.forEach((r, i) => {
        const offset = take[i]!.offset;
        if (!st.isOpen(offset)) return;
        if (!r) settled.push(offset);
        else deliver(r, popTime);
      });
    }
    let held = 0;
    for (const list of st.deferred.values()) held += list.entries.length;
    for (let reads = 0; reads < MAX_READS_PER_QUEUE && messages.length < max; reads++) {
      if (held >= this.limits.maxDeferredRetries) break; // back-pressure: wait for them to go
      const from = st.readAhead;
      if (from >= this.ctx.store.maxOffset(st.topic, st.queueId)) break;
      const read = await this.ctx.store.read(st.topic, st.queueId, from, max - messages.length);
      if (st.epoch !== epoch) return NOTHING;
      const popTime = this.ctx.clock();
      let end = read.nextOffset;
      for (const r of read.records) {
        if (!st.isOpen(r.queueOffset)) continue;
        const real = realTopicOf(r);
        if (real !== topic) {
          if (held >= this.limits.maxDeferredRetries) {
            end = r.queueOffset; // read on from here once some are taken or expired
            break;
          }
          let list = st.deferred.get(real);
          if (!list) {
            list = { entries: [], touchedAt: popTime };
            st.deferred.set(real, list);
          }
          list.entries.push({ offset: r.queueOffset, physicalOffset: r.physicalOffset });
          held++;
          continue;
        }
        deliver(r, popTime);
      }
      const returned =
        end < read.nextOffset ? read.records.filter((r) => r.queueOffset < end) : read.records;
      const runs = this.skippedRuns(st, from, end, returned);
      for (const [a, b] of runs) for (let o = a; o < b; o++) settled.push(o);
      st.readAhead = Math.max(st.readAhead, end);
      if (end <= from) break;
    }
    if (entries.length > 0) {
      durable.push(this.states.put(st, entries));
      for (const e of entries) this.invisible.add(st, e);
    }
    if (settled.length > 0) durable.push(this.states.settleOffsets(st, settled));
    durable.push(...(await this.expireDeferred(st, topic)));
    return { messages, durable };
  }

  /**
   * Dead-letters the retry records kept aside for topics the group has not
   * popped for deferredRetryTtlMs (caller holds the retry queue's lock). On a
   * slave (no writes) they are only forgotten here: the master has them too.
   */
  private async expireDeferred(st: QueueState, current: string): Promise<Promise<unknown>[]> {
    const now = this.ctx.clock();
    const ttl = this.deferredTtl(st);
    const expired: Array<[string, DeferredList]> = [];
    for (const [topic, list] of st.deferred) {
      if (topic !== current && now - list.touchedAt >= ttl) {
        expired.push([topic, list]);
      }
    }
    if (expired.length === 0) return [];
    for (const [topic] of expired) st.deferred.delete(topic);
    if (this.onSlave) return [];
    const take = expired.flatMap(([, list]) => list.entries);
    const epoch = st.epoch;
    const records = await Promise.all(take.map((d) => this.ctx.store.readAt(d.physicalOffset)));
    if (st.epoch !== epoch) return [];
    const dead: Array<[StoredRecord, number]> = [];
    const offsets: number[] = [];
    records.forEach((r, i) => {
      const offset = take[i]!.offset;
      if (!st.isOpen(offset)) return;
      offsets.push(offset);
      if (r) dead.push([r, r.reconsumeTimes]);
    });
    for (const [topic, list] of expired) {
      this.ctx.logger.warn(
        { group: st.group, topic, retries: list.entries.length, idleMs: now - list.touchedAt },
        'retries of a topic the group no longer pops: moved to the dead-letter queue',
      );
    }
    try {
      await this.toDeadLetter(st.group, dead);
    } catch (err) {
      // Not moved: read them again (from the retry queue's base) on a later pop.
      this.ctx.logger.error({ err, group: st.group }, 'dead-lettering expired retries failed');
      st.readAhead = st.base;
      return [];
    }
    return [this.states.settleOffsets(st, offsets)];
  }

  /** How long a topic's kept-aside retries may go unpopped: shorter once the cap is reached. */
  private deferredTtl(st: QueueState): number {
    let held = 0;
    for (const list of st.deferred.values()) held += list.entries.length;
    return held >= this.limits.maxDeferredRetries
      ? Math.min(this.limits.deferredRetryIdleUnderPressureMs, this.limits.deferredRetryTtlMs)
      : this.limits.deferredRetryTtlMs;
  }

  // ---------------------------------------------------------------- FIFO

  private async popFifo(
    group: string,
    topic: string,
    queueIds: number[],
    max: number,
    filter: TagFilter | null,
    invisibleMs: number,
  ): Promise<Round> {
    const round = this.nextRound(group, topic);
    const out: StoredMessage[] = [];
    const durable: Promise<unknown>[] = [];
    let more = false;
    for (let i = 0; i < queueIds.length && out.length < max; i++) {
      const st = this.state(group, topic, queueIds[(round + i) % queueIds.length]!);
      const taken = await st.withLock(() =>
        this.takeFifo(st, max - out.length, filter, invisibleMs),
      );
      out.push(...taken.messages);
      durable.push(...taken.durable);
      more ||= taken.more === true;
    }
    await Promise.all(durable);
    return { messages: out, more };
  }

  /**
   * One FIFO queue's turn (caller holds its lock).
   *
   * A message group is busy while it has a message in flight, or an earlier
   * record not yet handed out. Records of busy groups read ahead are kept as
   * PendingFifo (no body) up to DEFAULT_FIFO_READ_AHEAD_RECORDS; past that a
   * busy group's record is skipped, the group is "blocked" (none of its later
   * records go out) and `rescanFrom` remembers where to read again once the
   * pending records have drained. So the records of busy groups never stop
   * the queue: other groups keep flowing, and memory stays bounded.
   */
  private async takeFifo(
    st: QueueState,
    max: number,
    filter: TagFilter | null,
    invisibleMs: number,
  ): Promise<Taken> {
    const messages: StoredMessage[] = [];
    const entries: InflightEntry[] = [];
    const settled: number[] = [];
    const skipped: Array<[number, number]> = [];
    const durable: Promise<unknown>[] = [];
    const busy = new Set<string>();
    const now = this.ctx.clock();
    const maxDeliveries = maxDeliveriesOf(this.ctx, st.group);
    const epoch = st.epoch;

    // 1. In flight: each blocks its message group; those whose time ran out go again.
    const due: InflightEntry[] = [];
    for (const e of [...st.inflight.values()].sort((a, b) => a.offset - b.offset)) {
      if (!e.fifo) continue; // delivered before the group turned orderly: the revive pass has it
      if (visibleAtOf(e) <= now && !busy.has(e.messageGroup)) due.push(e);
      busy.add(e.messageGroup);
    }
    const dead: Array<[StoredRecord, number]> = [];
    for (const e of due) {
      if (messages.length >= max) break;
      const r = await this.ctx.store.readAt(e.physicalOffset);
      if (st.epoch !== epoch) return { messages: [], durable };
      if (st.inflight.get(e.offset) !== e) continue; // acked late, while we read it
      if (!r) {
        settled.push(e.offset);
        busy.delete(e.messageGroup);
        continue;
      }
      if (e.attempt >= maxDeliveries) {
        // A slave cannot dead-letter: the message stays in flight (its group
        // blocked) until a master takes writes.
        if (this.onSlave) continue;
        dead.push([r, e.attempt]);
        settled.push(e.offset);
        busy.delete(e.messageGroup);
        continue;
      }
      const next: InflightEntry = {
        ...e,
        popTime: Math.max(this.ctx.clock(), e.popTime + 1),
        invisibleMs,
        attempt: e.attempt + 1,
      };
      // Replace the entry now: from here on the previous handle is stale.
      durable.push(this.states.put(st, [next]));
      messages.push(this.message(st, r, next));
    }
    if (dead.length > 0) {
      // Dead-letter first: the group's next message may go out only after this is durable.
      await this.toDeadLetter(st.group, dead);
      if (st.epoch !== epoch) return { messages: [], durable };
      durable.push(this.states.settleOffsets(st, settled.splice(0)));
    }

    // 2. Pending records: the first one of each free message group goes out.
    const send: PendingFifo[] = [];
    st.filterPending((p) => {
      if (!st.isOpen(p.offset)) return false; // settled meanwhile
      const free = !busy.has(p.messageGroup) && messages.length + send.length < max;
      busy.add(p.messageGroup);
      if (free) send.push(p);
      return !free;
    });
    if (send.length > 0) {
      const records = await Promise.all(send.map((p) => this.ctx.store.readAt(p.physicalOffset)));
      if (st.epoch !== epoch) return { messages: [], durable };
      const popTime = this.ctx.clock();
      records.forEach((r, i) => {
        if (!r) {
          settled.push(send[i]!.offset); // removed by retention
          return;
        }
        const e = this.entryFor(r, popTime, invisibleMs, true);
        entries.push(e);
        messages.push(this.message(st, r, e));
      });
    }

    // 3. Read on: a free group's record goes out now, a busy group's is remembered.
    // `busy` now holds every group in flight or pending. A blocked group outside
    // it is free again: read its skipped records once more (this happens once
    // per freed group, not on every pop).
    if (st.rescanFrom !== undefined && [...st.blockedGroups].some((g) => !busy.has(g))) {
      st.readAhead = Math.max(st.base, st.rescanFrom);
      st.rescanFrom = undefined;
      st.blockedGroups.clear();
    }
    let reads = 0;
    let paused = false;
    for (; reads < MAX_READS_PER_QUEUE && messages.length < max; reads++) {
      const from = st.readAhead;
      if (from >= this.ctx.store.maxOffset(st.topic, st.queueId)) break;
      const read = await this.ctx.store.read(st.topic, st.queueId, from, FIFO_READ_CHUNK, filter);
      if (st.epoch !== epoch) return { messages: [], durable };
      const popTime = this.ctx.clock();
      let end = read.nextOffset;
      for (const r of read.records) {
        const offset = r.queueOffset;
        if (!st.isOpen(offset) || st.pendingOffsets.has(offset)) continue;
        const g = r.properties[SystemProperty.MESSAGE_GROUP] ?? '';
        const free = !busy.has(g) && !st.blockedGroups.has(g);
        if (free && messages.length >= max) {
          end = offset; // full: read on from here next time
          break;
        }
        if (free) {
          busy.add(g);
          const e = this.entryFor(r, popTime, invisibleMs, true);
          entries.push(e);
          messages.push(this.message(st, r, e));
          continue;
        }
        if (!st.blockedGroups.has(g) && st.pending.length < DEFAULT_FIFO_READ_AHEAD_RECORDS) {
          st.pending.push({ offset, physicalOffset: r.physicalOffset, messageGroup: g });
          st.pendingOffsets.add(offset);
        } else if (st.blockedGroups.has(g) || st.blockedGroups.size < MAX_FIFO_BLOCKED_GROUPS) {
          st.blockedGroups.add(g);
          if (st.rescanFrom === undefined || offset < st.rescanFrom) st.rescanFrom = offset;
        } else {
          end = offset; // too many blocked groups to remember: pause reading here
          paused = true;
          break;
        }
      }
      const returned =
        end < read.nextOffset ? read.records.filter((r) => r.queueOffset < end) : read.records;
      skipped.push(...this.skippedRuns(st, from, end, returned));
      st.readAhead = Math.max(st.readAhead, end);
      if (end <= from || paused) break;
    }
    if (entries.length > 0) durable.push(this.states.put(st, entries));
    if (settled.length > 0) durable.push(this.states.settleOffsets(st, settled));
    if (skipped.length > 0) durable.push(this.states.settle(st, skipped));
    const more =
      !paused &&
      reads >= MAX_READS_PER_QUEUE &&
      st.readAhead < this.ctx.store.maxOffset(st.topic, st.queueId);
    return { messages, durable, more };
  }

  // ---------------------------------------------------------------- settle

  /** Finds the live in-flight entry a handle names; throws when forged or stale. */
  private resolve(
    group: string,
    topic: string,
    text: string,
  ): { st: QueueState; e: InflightEntry; h: ReceiptHandle } {
    // Fast path: the very handle issued for the live delivery (kept in memory) is
    // authentic without computing its HMAC again.
    const h = decodeReceiptHandle(text);
    const st = this.states.get(h.group, h.topic, h.queueId);
    const e = st?.inflight.get(h.offset);
    // Any other text is checked (the same text decodes to the same fields).
    if (e?.handle !== text || e.popTime !== h.popTime) {
      decodeReceiptHandle(text, this.ctx.options.receiptHandleSecret);
    }
    if (h.brokerName !== this.ctx.options.brokerName) {
      throw errors.invalidReceiptHandle(`handle belongs to broker ${h.brokerName}`);
    }
    if (h.group !== group) throw errors.invalidReceiptHandle(`handle belongs to group ${h.group}`);
    if (h.topic !== topic && h.topic !== retryTopicOf(group)) {
      throw errors.invalidReceiptHandle(`handle belongs to topic ${h.topic}`);
    }
    // A delivery being revived is over: its retry is being written.
    if (!st || !e || e.popTime !== h.popTime || e.reviving) throw errors.receiptHandleExpired();
    return { st, e, h };
  }

  /** Acks a batch; answers per handle, once the settlements are journalled. */
  async ack(group: string, topic: string, handles: readonly string[]): Promise<SettleResult[]> {
    const results: SettleResult[] = new Array(handles.length);
    const byState = new Map<QueueState, number[]>();
    let fifo = false;
    handles.forEach((text, i) => {
      try {
        const { st, e } = this.resolve(group, topic, text);
        this.invisible.remove(e);
        st.inflight.delete(e.offset);
        fifo ||= e.fifo;
        let list = byState.get(st);
        if (!list) {
          list = [];
          byState.set(st, list);
        }
        list.push(e.offset);
        results[i] = OK;
      } catch (err) {
        results[i] = statusOf(err);
      }
    });
    const writes = [...byState].map(([st, offsets]) => this.states.settleOffsets(st, offsets));
    try {
      await Promise.all(writes);
    } catch (err) {
      const failed = statusOf(errors.internal('ack could not be persisted', err));
      return results.map((r) => (r === OK ? failed : r));
    }
    if (fifo) this.ctx.notifier.notify(topic); // a message group is free again
    return results;
  }

  /**
   * New invisible times; answers per entry with the new handle. An entry with
   * `release` hands back a delivery no consumer saw (a gateway popped more
   * than it could hand out): visible now, and that delivery is not counted,
   * so the next one has the same attempt number.
   */
  async changeInvisible(
    group: string,
    topic: string,
    entries: readonly { receipt_handle: string; invisible_ms: number; release?: boolean }[],
  ): Promise<SettleResult[]> {
    const results: SettleResult[] = new Array(entries.length);
    const writes: Promise<void>[] = [];
    let visibleNow = false;
    let fifoNow = false;
    entries.forEach((entry, i) => {
      try {
        if (entry.invisible_ms < 0 || entry.invisible_ms > MAX_INVISIBLE_MS) {
          throw errors.illegalInvisibleTime(
            entry.invisible_ms,
            `must be 0..${MAX_INVISIBLE_MS} ms`,
          );
        }
        const { st, e } = this.resolve(group, topic, entry.receipt_handle);
        const invisibleMs = entry.release ? 0 : entry.invisible_ms;
        const next: InflightEntry = {
          ...e,
          popTime: Math.max(this.ctx.clock(), e.popTime + 1),
          invisibleMs,
          // Revive and in-place redelivery deliver attempt + 1 next: undo this one.
          attempt: entry.release ? Math.max(0, e.attempt - 1) : e.attempt,
        };
        if (!e.fifo) {
          this.invisible.remove(e);
          this.invisible.add(st, next);
        }
        writes.push(this.states.put(st, [next]));
        if (invisibleMs === 0) {
          if (e.fifo) fifoNow = true;
          else visibleNow = true;
        }
        results[i] = { ...OK, receiptHandle: this.handleOf(st, next) };
      } catch (err) {
        results[i] = statusOf(err);
      }
    });
    await Promise.all(writes);
    // A slave has no revive pass: a waiting pop delivers it again in place.
    if (visibleNow && this.onSlave) this.ctx.notifier.notify(topic);
    else if (visibleNow) this.onVisibleNow?.();
    if (fifoNow) this.ctx.notifier.notify(topic);
    return results;
  }

  /**
   * Moves the message a handle names to %DLQ%{group} now. Runs under the
   * queue's lock so a FIFO group's next message cannot go out before this
   * one is durably dead-lettered.
   */
  async forwardToDeadLetter(group: string, topic: string, handle: string): Promise<void> {
    this.checkMaster();
    const { st, e } = this.resolve(group, topic, handle);
    await st.withLock(async () => {
      if (st.inflight.get(e.offset) !== e) throw errors.receiptHandleExpired();
      this.invisible.remove(e);
      st.inflight.delete(e.offset);
      try {
        const r = await this.ctx.store.readAt(e.physicalOffset);
        if (r) await this.toDeadLetter(group, [[r, e.attempt]]);
      } catch (err) {
        // Not moved: keep it in flight so it is retried normally.
        st.inflight.set(e.offset, e);
        if (!e.fifo) this.invisible.add(st, e);
        throw err;
      }
      await this.states.settleOffsets(st, [e.offset]);
    });
    if (e.fifo) this.ctx.notifier.notify(topic);
  }

  /** Appends records to %DLQ%{group} (one batch). */
  async toDeadLetter(
    group: string,
    dead: ReadonlyArray<readonly [StoredRecord, number]>,
  ): Promise<void> {
    if (dead.length === 0) return;
    const inputs = dead.map(([r, attempts]) => deadLetterInput(group, r, attempts));
    await ensureGroupTopics(this.ctx, inputs);
    await this.ctx.store.appendBatch(inputs);
    this.deadLettered += dead.length;
    for (const [r, attempts] of dead) {
      this.ctx.logger.info(
        { group, topic: realTopicOf(r), messageId: r.messageId, attempts },
        'message moved to dead-letter queue',
      );
    }
  }
}

/** Earliest time after `now` at which an in-flight entry of `states` becomes visible. */
function nextVisibleAfter(states: Iterable<QueueState>, now: number): number | undefined {
  let next: number | undefined;
  for (const st of states) {
    for (const e of st.inflight.values()) {
      const at = visibleAtOf(e);
      if (at > now && (next === undefined || at < next)) next = at;
    }
  }
  return next;
}
