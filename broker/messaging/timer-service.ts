/**
 * Delay and timer messages (RocketMQ 5's timer, simplified).
 *
 * A message with a future delivery time (Message.delivery_timestamp_ms, or a
 * delay level) is stored in the internal topic `rmq_sys_wheel_timer` (queue 0)
 * with its due time in the consume queue tag code and in TIMER_DELIVER_MS, and
 * its real topic/queue in REAL_TOPIC/REAL_QID. The broker keeps a time-bucketed
 * index of pending timers in memory; a scanner takes what is due every
 * DEFAULT_TIMER_TICK_MS and re-appends it to the real topic in one appendBatch,
 * then settles those timer offsets in the consume-state journal (reader
 * `#timer`).
 *
 * After a restart the index is rebuilt by reading the timer topic from the
 * reader's base, skipping settled runs, so only undelivered timers are read.
 *
 * Guarantees: never early (a timer is re-appended only when now >= due time);
 * at least once (a crash between the re-append and the journal write delivers
 * it once more); nothing lost (the timer record is durable before the send is
 * answered).
 */
import { errors } from '../../common/errors.js';
import type { AppendResult, MessageInput, StoredRecord } from '../store/index.js';
import type { BrokerContext } from './broker-context.js';
import type { QueueState } from './consume-state.js';
import type { ConsumeStateStore } from './consume-state-store.js';
import { toRuns } from './consume-state-store.js';
import { SystemProperty } from './properties.js';
import { scanOpenRecords } from './queue-scan.js';
import { TIMER_READER, TIMER_TOPIC } from './system-topics.js';
import { type TimerEntry, TimerIndex } from './timer-index.js';

export const DEFAULT_TIMER_TICK_MS = 20;
/** Timers re-appended per batch at most. */
export const MAX_TIMER_BATCH = 2048;
/** Consecutive timer records read per store call while delivering. */
const READ_CHUNK = 512;
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
  pending: number;
  delivered: number;
  /** Largest (delivery time - due time) seen, ms. */
  maxLatenessMs: number;
}

export class TimerService {
  private readonly index = new TimerIndex();
  private state: QueueState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly delayLevels: number[];
  delivered = 0;
  maxLatenessMs = 0;

  constructor(
    private readonly ctx: BrokerContext,
    private readonly states: ConsumeStateStore,
    private readonly tickMs = DEFAULT_TIMER_TICK_MS,
  ) {
    this.delayLevels = parseDelayLevels(ctx.options.messageDelayLevel);
  }

  /**
   * The due time (epoch ms) of a message, or 0 when it is to be delivered now.
   * Throws ILLEGAL_DELIVERY_TIME past timerMaxDelaySec.
   */
  dueTime(deliveryTimestampMs: number, delayLevel: number, now: number): number {
    let due = 0;
    if (deliveryTimestampMs > 0) {
      due = deliveryTimestampMs;
    } else if (delayLevel > 0) {
      // As RocketMQ: a level above the highest means the highest.
      due = now + this.delayLevels[Math.min(delayLevel, this.delayLevels.length) - 1]!;
    } else if (delayLevel < 0) {
      throw errors.illegalDeliveryTime(`delay level ${delayLevel} is negative`);
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

  /** Registers timer records just appended (the send path calls this before answering). */
  track(results: readonly AppendResult[], dueTimes: readonly number[]): void {
    results.forEach((r, i) => {
      this.index.add({
        offset: r.queueOffset,
        physicalOffset: r.physicalOffset,
        dueAt: dueTimes[i]!,
      });
    });
    this.kick();
  }

  /** Rebuilds the index from the timer topic, then starts the scanner. */
  async start(): Promise<void> {
    const store = this.ctx.store;
    this.state = this.states.obtain(TIMER_READER, TIMER_TOPIC, 0, () =>
      store.minOffset(TIMER_TOPIC, 0),
    );
    const st = this.state;
    const lost = await scanOpenRecords(store, st, (r) => {
      this.index.add({
        offset: r.queueOffset,
        physicalOffset: r.physicalOffset,
        dueAt: dueAtOf(r),
      });
    });
    if (lost.length > 0) {
      this.ctx.logger.warn(
        { timers: lost.length },
        'timer records removed by retention before they were due',
      );
      await this.states.settleOffsets(st, lost);
    }
    this.ctx.logger.info({ pending: this.index.size }, 'timer index rebuilt');
    this.timer = setInterval(() => this.kick(), this.tickMs);
    this.timer.unref();
    this.kick();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    while (this.running) await this.running;
  }

  stats(): TimerStats {
    return {
      pending: this.index.size,
      delivered: this.delivered,
      maxLatenessMs: this.maxLatenessMs,
    };
  }

  private kick(): void {
    if (this.running || !this.state) return;
    const next = this.index.nextDueAt();
    if (next === undefined || next > this.ctx.clock()) return;
    this.running = this.deliverDue().finally(() => {
      this.running = undefined;
    });
  }

  private async deliverDue(): Promise<void> {
    for (;;) {
      const now = this.ctx.clock();
      const due = this.index.takeDue(now, MAX_TIMER_BATCH);
      if (due.length === 0) return;
      try {
        await this.deliver(due);
      } catch (err) {
        this.ctx.logger.error({ err, timers: due.length }, 'timer delivery failed; will try again');
        for (const e of due)
          this.index.add({ ...e, dueAt: Math.max(e.dueAt, now + RETRY_DELAY_MS) });
        return;
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

/** Due time of a timer record (written by wrap(); 0 = due now if it is somehow missing). */
function dueAtOf(r: StoredRecord): number {
  return Number(r.properties[SystemProperty.DELIVERY_TIME_MS] ?? 0);
}
