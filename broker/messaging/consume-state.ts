/**
 * What the broker remembers about one consumer of one consume queue:
 * pop groups (group, topic, queue), and the broker's own internal readers (the
 * timer scanner, the transaction checker), which use the same bookkeeping.
 *
 *   base      every queue offset below it is settled (acked, revived, dead-
 *             lettered, filtered out, delivered by the timer …)
 *   settled   settled offsets at or above base (settlements arrive out of order)
 *   inflight  offsets handed out and not settled: pop time, invisible time,
 *             attempt. For the timer it is unused; for transactions it holds
 *             check times.
 *
 * Invariant: base <= every settled/inflight offset; no offset is both settled
 * and in flight. The durable copy is kept by ConsumeStateStore (snapshot +
 * journal); everything marked "memory only" below is rebuilt after a restart
 * by re-reading the queue from `base` and skipping settled/in-flight offsets.
 */
import type { StoredRecord } from '../store/index.js';
import { OffsetRuns } from './offset-runs.js';

/** A message handed out and not yet settled. */
export interface InflightEntry {
  /** Queue offset in the state's topic/queue. */
  offset: number;
  /** Commitlog offset of the record (read it back without the consume queue). */
  physicalOffset: number;
  /** Epoch ms of the delivery (or of the last change of its invisible time). */
  popTime: number;
  /** The message is invisible until popTime + invisibleMs. */
  invisibleMs: number;
  /** Delivery attempt, 1-based (transactions: check-backs so far). */
  attempt: number;
  /** FIFO: the message group ('' = none); '' otherwise. */
  messageGroup: string;
  /** Delivered to an orderly (FIFO) group: redelivered in place, not via %RETRY%. */
  fifo: boolean;
  /** Memory only: the receipt handle issued for this delivery (an ack presenting it needs no HMAC check). */
  handle?: string;
}

/** A retry-topic record that belongs to another topic of the group (memory only). */
export interface DeferredRetry {
  offset: number;
  physicalOffset: number;
}

export function visibleAtOf(e: InflightEntry): number {
  return e.popTime + e.invisibleMs;
}

export class QueueState {
  base: number;
  readonly settled = new OffsetRuns();
  readonly inflight = new Map<number, InflightEntry>();

  /** Memory only: next offset to read from the store (>= base). */
  readAhead: number;
  /** Memory only: FIFO records read but not yet deliverable (their group is busy), offset order. */
  pending: StoredRecord[] = [];
  /** Memory only: retry records of other topics, by real topic. */
  readonly deferred = new Map<string, DeferredRetry[]>();
  /** Memory only: serialises pops of this queue (see withLock). */
  private lock: Promise<void> = Promise.resolve();
  /** Called when base moves forward. */
  onAdvance: ((s: QueueState) => void) | undefined;

  constructor(
    readonly group: string,
    readonly topic: string,
    readonly queueId: number,
    base: number,
  ) {
    this.base = base;
    this.readAhead = base;
  }

  get key(): string {
    return stateKey(this.group, this.topic, this.queueId);
  }

  isSettled(offset: number): boolean {
    return offset < this.base || this.settled.has(offset);
  }

  /** True when the offset is neither settled nor in flight. */
  isOpen(offset: number): boolean {
    return !this.isSettled(offset) && !this.inflight.has(offset);
  }

  /** Runs `fn` after every earlier call on this queue has finished. */
  withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  applyPut(e: InflightEntry): void {
    if (this.isSettled(e.offset)) return;
    this.inflight.set(e.offset, e);
  }

  /** Settles [start, end). */
  applySettle(start: number, end: number): void {
    if (end <= this.base) return;
    start = Math.max(start, this.base);
    if (end - start <= 64) {
      for (let o = start; o < end; o++) this.inflight.delete(o);
    } else {
      for (const o of this.inflight.keys()) if (o >= start && o < end) this.inflight.delete(o);
    }
    this.settled.addRange(start, end);
    const next = this.settled.takeRunAt(this.base);
    if (next !== this.base) this.advance(next);
  }

  /** Moves base to `base` (forward or back) and forgets everything recorded. */
  applyReset(base: number): void {
    this.inflight.clear();
    this.settled.clear();
    this.pending = [];
    this.deferred.clear();
    this.base = base;
    this.readAhead = base;
    this.onAdvance?.(this);
  }

  private advance(to: number): void {
    this.base = to;
    if (this.readAhead < to) this.readAhead = to;
    if (this.pending.length > 0 && this.pending[0]!.queueOffset < to) {
      this.pending = this.pending.filter((r) => r.queueOffset >= to);
    }
    this.onAdvance?.(this);
  }
}

export function stateKey(group: string, topic: string, queueId: number): string {
  return `${group}\u0000${topic}\u0000${queueId}`;
}
