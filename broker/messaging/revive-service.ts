/**
 * The revive pass (RocketMQ's PopReviveService): concurrent deliveries whose
 * invisible time ran out un-acked are re-put into `%RETRY%{group}` with
 * reconsumeTimes = the attempt that ran out (so the next delivery is attempt
 * + 1), or into `%DLQ%{group}` once the group's delivery limit is reached; then
 * the original offsets are settled.
 *
 * Order of effects, for crash safety: (1) the entries are marked `reviving`
 * but stay in the in-flight table, so a pop cannot hand the offset out again
 * (after a restart a pop re-reads the queue from its base and skips what is
 * in flight) and a late ack is refused as stale rather than racing the retry;
 * (2) the retry/DLQ records are appended (durable per flushDiskType); (3) the
 * settlement is journalled, for the entries that are still the live delivery
 * of their offset (an offset reset or a dropped group replaces or forgets
 * them meanwhile). A crash between (2) and (3) delivers the message once more
 * (at least once); nothing is lost.
 */
import type { MessageInput, StoredRecord } from '../store/index.js';
import type { BrokerContext } from './broker-context.js';
import type { InflightEntry, QueueState } from './consume-state.js';
import type { PopService } from './pop-service.js';
import {
  deadLetterInput,
  ensureGroupTopics,
  maxDeliveriesOf,
  realTopicOf,
  retryInput,
} from './redelivery.js';

export const DEFAULT_REVIVE_INTERVAL_MS = 100;
/** Entries revived per pass at most (one appendBatch). */
export const MAX_REVIVE_BATCH = 4096;
/** After a failed revive, try again this much later. */
const REVIVE_RETRY_DELAY_MS = 1_000;

export class ReviveService {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  revived = 0;

  constructor(
    private readonly ctx: BrokerContext,
    private readonly pop: PopService,
    private readonly intervalMs = DEFAULT_REVIVE_INTERVAL_MS,
  ) {
    pop.onVisibleNow = () => this.trigger();
  }

  start(): void {
    this.timer = setInterval(() => this.trigger(), this.intervalMs);
    this.timer.unref();
    this.trigger();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    while (this.running) await this.running;
  }

  /** Runs a pass now (or right after the running one). */
  trigger(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      let n: number;
      do n = await this.pass();
      while (n >= MAX_REVIVE_BATCH);
    } while (this.again && this.timer);
  }

  /** One batch of due entries; answers how many it took. */
  async pass(): Promise<number> {
    const taken = this.pop.invisible.takeDue(this.ctx.clock(), MAX_REVIVE_BATCH);
    if (taken.length === 0) return 0;
    // An index entry whose delivery was settled or replaced meanwhile is stale: skip it.
    const due = taken.filter(([st, e]) => this.pop.isLive(st, e) && !e.reviving);
    for (const [, e] of due) e.reviving = true;
    if (due.length === 0) return taken.length;
    let records: Array<StoredRecord | undefined>;
    try {
      records = await Promise.all(due.map(([, e]) => this.ctx.store.readAt(e.physicalOffset)));
    } catch (err) {
      this.restore(due, err);
      return due.length;
    }
    const inputs: MessageInput[] = [];
    const dead: Array<[string, StoredRecord, number]> = [];
    const settle = new Map<QueueState, number[]>();
    due.forEach(([st, e], i) => {
      const r = records[i];
      if (!this.pop.isLive(st, e)) return; // reset or dropped while we read it
      let list = settle.get(st);
      if (!list) {
        list = [];
        settle.set(st, list);
      }
      list.push(e.offset);
      if (!r) return; // gone with retention: nothing to deliver again
      if (e.attempt >= maxDeliveriesOf(this.ctx, st.group)) {
        inputs.push(deadLetterInput(st.group, r, e.attempt));
        dead.push([st.group, r, e.attempt]);
      } else {
        inputs.push(retryInput(st.group, r, e.attempt));
      }
    });
    try {
      if (inputs.length > 0) {
        await ensureGroupTopics(this.ctx, inputs);
        await this.ctx.store.appendBatch(inputs);
      }
    } catch (err) {
      this.restore(due, err);
      return due.length;
    }
    this.revived += inputs.length - dead.length;
    this.pop.deadLettered += dead.length;
    for (const [group, r, attempts] of dead) {
      this.ctx.logger.info(
        { group, topic: realTopicOf(r), messageId: r.messageId, attempts },
        'message moved to dead-letter queue after its last delivery attempt',
      );
    }
    // Settle only the deliveries that are still live (a reset during the append
    // replaced them; the record written for them is then an extra delivery).
    const writes: Promise<void>[] = [];
    for (const [st, offsets] of settle) {
      const live = offsets.filter((o) => st.inflight.get(o)?.reviving === true);
      writes.push(this.pop.states.settleOffsets(st, live));
    }
    await Promise.all(writes);
    return taken.length;
  }

  /** Puts entries back in flight for a later try (memory only; the journal still has them). */
  private restore(due: Array<[QueueState, InflightEntry]>, err: unknown): void {
    this.ctx.logger.error({ err, entries: due.length }, 'revive failed; will try again');
    const retryAt = this.ctx.clock() + REVIVE_RETRY_DELAY_MS;
    for (const [st, e] of due) {
      if (!this.pop.isLive(st, e)) continue;
      const again: InflightEntry = { ...e, popTime: retryAt - e.invisibleMs, reviving: false };
      st.inflight.set(e.offset, again);
      this.pop.invisible.add(st, again);
    }
  }
}
