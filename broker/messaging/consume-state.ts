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
  /**
   * Memory only: the revive pass is re-putting this delivery into %RETRY% /
   * %DLQ%. It stays in flight (so a pop cannot hand the offset out again) but
   * its handle is stale (an ack or change of invisible time is refused).
   */
  reviving?: boolean;
  /**
   * Transactions only (reader `#transaction`): the producer's commit was
   * journalled and the committed message may be in its topic already; a
   * restart finishes the commit instead of offering a check-back.
   */
  committing?: boolean;
}

/** A retry-topic record that belongs to another topic of the group (memory only). */
export interface DeferredRetry {
  offset: number;
  physicalOffset: number;
}

/** Retry records waiting for their topic to be popped (memory only). */
export interface DeferredList {
  entries: DeferredRetry[];
  /** Epoch ms the group last popped the topic, or when the list was started. */
  touchedAt: number;
}

/**
 * FIFO: a record read ahead whose message group was busy. Only where it is
 * and its group are kept; the body is read again when it is delivered.
 */
export interface PendingFifo {
  offset: number;
  physicalOffset: number;
  messageGroup: string;
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
  /**
   * Memory only: bumped by every reset and by a drop. A read that started
   * under an older epoch discards what it read (the queue moved meanwhile).
   */
  epoch = 0;
  /** Memory only: the state was dropped (group or topic deleted); writes to it are ignored. */
  dropped = false;
  /**
   * Memory only, FIFO: records read ahead whose message group was busy, offset
   * order within each message group (bounded by the pop service).
   */
  pending: PendingFifo[] = [];
  /** Memory only, FIFO: offsets held in `pending` (a rescan skips them). */
  readonly pendingOffsets = new Set<number>();
  /**
   * Memory only, FIFO: message groups with a record that was read but not
   * kept (pending was full). Their later records are not delivered until a
   * rescan from `rescanFrom` finds the skipped one again.
   */
  readonly blockedGroups = new Set<string>();
  /** Memory only, FIFO: lowest offset read but not kept, or undefined. */
  rescanFrom: number | undefined;
  /** Memory only: retry records of other topics, by real topic. */
  readonly deferred = new Map<string, DeferredList>();
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
    this.epoch++;
    this.inflight.clear();
    this.settled.clear();
    this.clearReadAhead();
    this.deferred.clear();
    this.base = base;
    this.readAhead = base;
    this.onAdvance?.(this);
  }

  /** Forgets the FIFO read-ahead (memory only). */
  clearReadAhead(): void {
    this.pending = [];
    this.pendingOffsets.clear();
    this.blockedGroups.clear();
    this.rescanFrom = undefined;
  }

  /** Keeps only the pending FIFO records `keep` answers true for. */
  filterPending(keep: (p: PendingFifo) => boolean): void {
    const next: PendingFifo[] = [];
    for (const p of this.pending) {
      if (keep(p)) next.push(p);
      else this.pendingOffsets.delete(p.offset);
    }
    this.pending = next;
  }

  private advance(to: number): void {
    this.base = to;
    if (this.readAhead < to) this.readAhead = to;
    if (this.rescanFrom !== undefined && this.rescanFrom < to) this.rescanFrom = to;
    // Pending FIFO records below the new base are dropped by the next FIFO turn
    // (it skips every offset that is no longer open).
    this.onAdvance?.(this);
  }
}
