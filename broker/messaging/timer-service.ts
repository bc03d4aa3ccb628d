/**
 * Delay and timer messages (RocketMQ 5's timer, simplified).
 *
 * A message with a future delivery time (Message.delivery_timestamp_ms, or a
 * delay level) is stored in the internal topic `rmq_sys_wheel_timer` (queue 0)
 * with its due time in the consume queue tag code and in TIMER_DELIVER_MS, and
 * its real topic/queue in REAL_TOPIC/REAL_QID. A scanner takes what is due
 * every DEFAULT_TIMER_TICK_MS and re-appends it to the real topic in one
 * appendBatch, then settles those timer offsets in the consume-state journal
 * (reader `#timer`).
 *
 * Memory holds only the near window: a time-bucketed index of the pending
 * timers due before `windowEnd` (about timerWindowMs ahead), at most
 * timerMaxInMemory of them (the latest buckets are evicted past that, and
 * windowEnd moves back). Later timers stay on disk. A load scans the timer
 * topic's consume queue — entries only, the due time is the tag code, no
 * bodies — from the reader's base, skipping settled runs, and adds the open
 * timers due in [windowEnd, new windowEnd); it runs at start and whenever the
 * window is half used. So memory stays bounded with a 3-day horizon, and a
 * restart reads 20 bytes per undelivered timer.
 *
 * Invariant: every undelivered timer due before windowEnd is in the index or
 * being delivered; track() adds a new timer only when it falls in that range
 * (or in the range a running load covers, past the offsets it reads).
 *
 * Guarantees: never early (a timer is re-appended only when now >= due time);
 * at least once (a crash between the re-append and the journal write delivers
 * it once more); nothing lost (the timer record is durable before the send is
 * answered).
 */
import { errors } from '../../common/errors.js';
import type { AppendResult, MessageInput, QueueEntry, StoredRecord } from '../store/index.js';
import type { BrokerContext } from './broker-context.js';
import type { QueueState } from './consume-state.js';
import type { ConsumeStateStore } from './consume-state-store.js';
import { toRuns } from './consume-state-store.js';
import { SystemProperty } from './properties.js';
import { TIMER_READER, TIMER_TOPIC } from './system-topics.js';
import { type TimerEntry, TimerIndex } from './timer-index.js';

export const DEFAULT_TIMER_TICK_MS = 20;
/** Timers re-appended per batch at most. */
export const MAX_TIMER_BATCH = 2048;
/** Consecutive timer records read per store call while delivering. */
const READ_CHUNK = 512;
/** Consume queue entries read per store call while loading the window. */
const SCAN_CHUNK = 8_192;
const RETRY_DELAY_MS = 1_000;

/** Parses RocketMQ's messageDelayLevel ("1s 5s 10s 30s 1m … 2h") into ms per level (index 0 = level 1). */
export function parseDelayLevels(text: string): number[] {
  const units: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  return text
    .trim()
    .split(/\s+/)
    .map((item) => {
      const m = /^(\d+)([smhd])$/.exec(item);
      if (!m) throw errors.badRequest(`messageDelayLevel item '${item}' is not like 5s, 1m, 2h`);
      return Number(m[1]) * units[m[2]!]!;
    });
}

export interface TimerStats {
  /** Undelivered timers (on disk; the near ones in memory too). */
  pending: number;
  /** Timers held in memory (the near window). */
  inMemory: number;
  delivered: number;
  /** Largest (delivery time - due time) seen, ms. */
  maxLatenessMs: number;
}

/** A load of the window in progress. */
interface Load {
  /** Timers due before this are wanted in memory when the load ends (lowered by eviction). */
  target: number;
  /** The load reads the consume queue below this offset; track() covers the rest. */
  limit: number;
}

export class TimerService {
  private readonly index = new TimerIndex();
  private state: QueueState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly delayLevels: number[];
  /** Epoch ms: every undelivered timer due before it is in memory (see the invariant above). */
  private windowEnd = 0;
  private load: Load | undefined;
  private loading: Promise<void> | undefined;
  /** Offsets taken from the index and not settled yet (a load must not add them again). */
  private readonly delivering = new Set<number>();
  /** After a failed delivery: no new attempt before this (epoch ms). */
  private pausedUntil = 0;
  private readonly windowMs: number;
  private readonly maxInMemory: number;
  delivered = 0;
  maxLatenessMs = 0;

  constructor(
    private readonly ctx: BrokerContext,
    private readonly states: ConsumeStateStore,
    private readonly tickMs = DEFAULT_TIMER_TICK_MS,
  ) {
    this.delayLevels = parseDelayLevels(ctx.options.messageDelayLevel);
    this.windowMs = ctx.options.timerWindowMs;
    this.maxInMemory = ctx.options.timerMaxInMemory;
  }

  /**
   * The due time (epoch ms) of a message, or 0 when it is to be delivered now.
   * Throws ILLEGAL_DELIVERY_TIME past timerMaxDelaySec.
   */
  dueTime(deliveryTimestampMs: number, delayLevel: number, now: number): number {
    let due = 0;
    if (deliveryTimestampMs > 0) {
      due = deliveryTimestampMs;
    } else if (delayLevel > this.delayLevels.length || delayLevel < 0) {
      // Refused rather than clamped (RocketMQ clamps): a level that does not
      // exist is a client bug, and a silent 2 h delay would hide it.
      throw errors.illegalDeliveryTime(
        `delay level ${delayLevel} is out of range 1..${this.delayLevels.length} (messageDelayLevel)`,
      );
    } else if (delayLevel > 0) {
      due = now + this.delayLevels[delayLevel - 1]!;
    }
    if (due <= now) return 0;
    const maxMs = this.ctx.options.timerMaxDelaySec * 1000;
    if (due - now > maxMs) {
      throw errors.illegalDeliveryTime(
        `delivery time is ${Math.ceil((due - now) / 1000)} s away; timerMaxDelaySec is ${this.ctx.options.timerMaxDelaySec}`,
      );
    }
    return due;
  }

  /** Turns a message for `input.topic` into its timer record, due at `dueAt`. */
  wrap(input: MessageInput, dueAt: number): MessageInput {
    return {
      ...input,
      topic: TIMER_TOPIC,
      queueId: 0,
      properties: {
        ...input.properties,
        [SystemProperty.REAL_TOPIC]: input.topic,
        [SystemProperty.REAL_QUEUE_ID]: String(input.queueId),
        [SystemProperty.DELIVERY_TIME_MS]: String(dueAt),
      },
      tagsCode: BigInt(dueAt),
    };
  }

  /**
   * Registers timer records just appended (the send path calls this before
   * answering). Those due beyond the window stay on disk only.
   */
  track(results: readonly AppendResult[], dueTimes: readonly number[]): void {
    let added = false;
    results.forEach((r, i) => {
      const dueAt = dueTimes[i]!;
      const load = this.load;
      const wanted =
        dueAt < this.windowEnd ||
        (load !== undefined && r.queueOffset >= load.limit && dueAt < load.target);
      if (!wanted) return;
      this.index.add({ offset: r.queueOffset, physicalOffset: r.physicalOffset, dueAt });
      added = true;
    });
    if (added) this.evict();
    this.kick();
  }

  /** Loads the near window from the timer topic, then starts the scanner. */
  async start(): Promise<void> {
    const store = this.ctx.store;
    this.state = this.states.obtain(TIMER_READER, TIMER_TOPIC, 0, () =>
      store.minOffset(TIMER_TOPIC, 0),
    );
    await this.loadWindow();
    this.ctx.logger.info(
      { pending: this.pendingCount(), inMemory: this.index.size, windowEnd: this.windowEnd },
      'timer window loaded',
    );
    this.timer = setInterval(() => this.kick(), this.tickMs);
    this.timer.unref();
    this.kick();
  }

  /** Undelivered timers: the timer queue past the reader's base, less what is settled there. */
  private pendingCount(): number {
    const st = this.state;
    if (!st) return 0;
    const max = this.ctx.store.maxOffset(TIMER_TOPIC, 0);
    return Math.max(0, max - st.base - st.settled.size);
  }

  /** Keeps at most timerMaxInMemory timers in memory: the latest go back to disk only. */
  private evict(): void {
    const from = this.index.evictLatest(this.maxInMemory);
    if (from === undefined) return;
    if (from < this.windowEnd) this.windowEnd = from;
    if (this.load && from < this.load.target) this.load.target = from;
  }

  /** Starts a load of the window when it is half used and memory has room. */
  private maybeLoad(now: number): void {
    if (this.loading || !this.state) return;
    if (this.windowEnd - now >= this.windowMs / 2) return;
    const room =
      this.index.size < this.maxInMemory / 2 ||
      (this.windowEnd <= now && this.index.size < this.maxInMemory);
    if (!room) return;
    this.loading = this.loadWindow()
      .catch((err) => this.ctx.logger.error({ err }, 'loading the timer window failed'))
      .finally(() => {
        this.loading = undefined;
      });
  }

  /**
   * Adds the open timers due in [windowEnd, now + timerWindowMs) to the index,
   * reading consume queue entries only; then moves windowEnd there (or to
   * where eviction stopped it). Timers removed by retention are settled.
   */
  private async loadWindow(): Promise<void> {
    const st = this.state!; // after start()
    const store = this.ctx.store;
    const from = this.windowEnd;
    const load: Load = {
      target: this.ctx.clock() + this.windowMs,
      limit: store.maxOffset(TIMER_TOPIC, 0),
    };
    this.load = load;
    const lost: number[] = [];
    try {
      let offset = st.base;
      while (offset < load.limit) {
        offset = st.settled.nextAbsent(Math.max(offset, st.base));
        if (offset >= load.limit) break;
        const gapEnd = Math.min(st.settled.nextPresent(offset) ?? load.limit, load.limit);
        const read = await store.readQueueEntries(
          TIMER_TOPIC,
          0,
          offset,
          Math.min(SCAN_CHUNK, gapEnd - offset),
        );
        for (let o = offset; o < Math.min(read.minOffset, gapEnd); o++) lost.push(o);
        this.addLoaded(st, read.entries, from, load);
        if (read.nextOffset <= offset) break;
        offset = read.nextOffset;
      }
      this.windowEnd = Math.max(this.windowEnd, load.target);
    } finally {
      this.load = undefined;
    }
    if (lost.length > 0) {
      this.ctx.logger.warn(
        { timers: lost.length },
        'timer records removed by retention before they were due',
      );
      await this.states.settleOffsets(
        st,
        lost.filter((o) => !st.isSettled(o)),
      );
    }
  }

  private addLoaded(
    st: QueueState,
    entries: readonly QueueEntry[],
    from: number,
    load: Load,
  ): void {
    for (const e of entries) {
      if (st.isSettled(e.queueOffset) || this.delivering.has(e.queueOffset)) continue;
      const dueAt = Number(e.tagsCode);
      if (dueAt < from || dueAt >= load.target) continue;
      this.index.add({ offset: e.queueOffset, physicalOffset: e.physicalOffset, dueAt });
      if (this.index.size > this.maxInMemory) this.evict();
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    while (this.running) await this.running;
  }

  stats(): TimerStats {
    return {
      pending: this.pendingCount(),
      inMemory: this.index.size,
      delivered: this.delivered,
      maxLatenessMs: this.maxLatenessMs,
    };
  }

  private kick(): void {
    if (!this.state) return;
    const now = this.ctx.clock();
    this.maybeLoad(now);
    if (this.running || now < this.pausedUntil) return;
    const next = this.index.nextDueAt();
    if (next === undefined || next > now) return;
    this.running = this.deliverDue().finally(() => {
      this.running = undefined;
    });
  }

  private async deliverDue(): Promise<void> {
    for (;;) {
      const now = this.ctx.clock();
      const due = this.index.takeDue(now, MAX_TIMER_BATCH);
      if (due.length === 0) return;
      for (const e of due) this.delivering.add(e.offset);
      try {
        await this.deliver(due);
      } catch (err) {
        this.ctx.logger.error({ err, timers: due.length }, 'timer delivery failed; will try again');
        // Back in the index as they were (due now); the scanner pauses a little.
        for (const e of due) this.index.add(e);
        this.pausedUntil = now + RETRY_DELAY_MS;
        return;
      } finally {
        for (const e of due) this.delivering.delete(e.offset);
      }
      if (due.length < MAX_TIMER_BATCH) return;
    }
  }

  private async deliver(due: TimerEntry[]): Promise<void> {
    const st = this.state!; // deliverDue runs only after start()
    due.sort((a, b) => a.offset - b.offset);
    const records = await this.readAll(due);
    const inputs: MessageInput[] = [];
    const gone: number[] = [];
    for (let i = 0; i < due.length; i++) {
      const r = records[i];
      if (r) inputs.push(this.unwrap(r));
      else gone.push(due[i]!.offset);
    }
    if (inputs.length > 0) await this.ctx.store.appendBatch(inputs);
    const now = this.ctx.clock();
    for (const e of due) this.maxLatenessMs = Math.max(this.maxLatenessMs, now - e.dueAt);
    this.delivered += inputs.length;
    if (gone.length > 0) {
      this.ctx.logger.warn({ timers: gone.length }, 'timer records no longer stored; dropped');
    }
    await this.states.settle(st, toRuns(due.map((e) => e.offset)));
  }

  /** Reads the timer records of `due` (sorted by offset), consecutive ones in one store call. */
  private async readAll(due: TimerEntry[]): Promise<Array<StoredRecord | undefined>> {
    const out: Array<StoredRecord | undefined> = new Array(due.length);
    const reads: Promise<void>[] = [];
    let i = 0;
    while (i < due.length) {
      let j = i + 1;
      while (j < due.length && due[j]!.offset === due[j - 1]!.offset + 1 && j - i < READ_CHUNK) j++;
      const from = i;
      const count = j - i;
      reads.push(
        (async () => {
          if (count === 1) {
            out[from] = await this.ctx.store.readAt(due[from]!.physicalOffset);
            return;
          }
          const read = await this.ctx.store.read(TIMER_TOPIC, 0, due[from]!.offset, count);
          const byOffset = new Map(read.records.map((r) => [r.queueOffset, r]));
          for (let k = from; k < from + count; k++) out[k] = byOffset.get(due[k]!.offset);
        })(),
      );
      i = j;
    }
    await Promise.all(reads);
    return out;
  }

  /** The real message of a timer record. */
  private unwrap(r: StoredRecord): MessageInput {
    const p = { ...r.properties };
    const topic = p[SystemProperty.REAL_TOPIC] ?? r.topic;
    let queueId = Number(p[SystemProperty.REAL_QUEUE_ID] ?? 0);
    const config = this.ctx.topics.get(topic);
    if (config && queueId >= config.write_queue_nums)
      queueId %= Math.max(1, config.write_queue_nums);
    delete p[SystemProperty.REAL_TOPIC];
    delete p[SystemProperty.REAL_QUEUE_ID];
    return {
      topic,
      queueId,
      body: r.body,
      tag: r.tag,
      keys: r.keys,
      properties: p,
      messageId: r.messageId,
      flag: r.flag,
      bornTimestamp: r.bornTimestamp,
      bornHost: r.bornHost,
      reconsumeTimes: r.reconsumeTimes,
    };
  }
}
