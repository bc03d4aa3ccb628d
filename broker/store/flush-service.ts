/**
 * Makes commitlog bytes durable (fdatasync) per the flush mode.
 *
 * ASYNC_FLUSH: a timer syncs whatever was written every flushIntervalCommitLog
 * ms; appends are answered once written.
 *
 * SYNC_FLUSH, group commit: an append waits until an fdatasync started after
 * its bytes were written has finished. One sync runs at a time; appends written
 * while it runs queue up and are covered together by the next one, so N
 * concurrent appends cost far fewer than N syncs. A waiter not covered within
 * syncFlushTimeout fails with FLUSH_DISK_TIMEOUT (its bytes stay in the log and
 * are flushed later, as in RocketMQ).
 *
 * A failed fdatasync is final (PostgreSQL's "fsyncgate": the kernel may have
 * dropped the dirty pages and report the next fdatasync as a success): every
 * waiter fails, no fdatasync is tried again, flushedOffset stays where it was,
 * and `failure` tells the store to refuse writes until restart (recovery then
 * re-validates everything past the checkpoint).
 *
 * Invariant: flushedOffset <= commitlog.writtenOffset, and it is a record
 * boundary (writes are whole batches).
 */
import { performance } from 'node:perf_hooks';
import { errors } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { CommitLog } from './commitlog.js';
import type { FlushDiskType } from './store-api.js';

/**
 * How long flush() (everything written so far, e.g. at close) waits for its
 * fdatasync before failing with FLUSH_DISK_TIMEOUT, ms. Longer than
 * syncFlushTimeout: it may cover a whole ASYNC_FLUSH backlog.
 */
export const DEFAULT_FLUSH_ALL_TIMEOUT_MS = 30_000;

interface Waiter {
  end: number;
  deadline: number;
  /** The wait allowed, ms (for the error). */
  timeoutMs: number;
  done: (err: Error | undefined) => void;
  settled: boolean;
}

export class FlushService {
  flushedOffset = 0;
  flushedStoreTimestamp = 0;
  /** fdatasync calls on segments. */
  syncCount = 0;
  private syncing = false;
  private readonly waiters: Waiter[] = [];
  private waitersHead = 0;
  private interval: NodeJS.Timeout | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private timeoutAt = 0;
  /** Called after each successful fdatasync round with its duration (s) and bytes (metrics). */
  onSynced: ((seconds: number, bytes: number) => void) | undefined;
  /** Lowest offset the log was cut back to while the current sync ran (Infinity: none). */
  private cutDuringSync = Number.POSITIVE_INFINITY;
  /** Set by the first failed fdatasync (STORE_NOT_WRITABLE); never cleared: only a restart does. */
  failure: Error | undefined;

  constructor(
    private readonly commitlog: CommitLog,
    readonly mode: FlushDiskType,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
    private readonly flushAllTimeoutMs = DEFAULT_FLUSH_ALL_TIMEOUT_MS,
  ) {}

  /** Starts the ASYNC_FLUSH timer (SYNC_FLUSH needs none). */
  start(flushedOffset: number): void {
    this.flushedOffset = flushedOffset;
    if (this.mode === 'ASYNC_FLUSH') {
      this.interval = setInterval(() => {
        if (this.commitlog.writtenOffset > this.flushedOffset && !this.failure) this.kick();
      }, this.intervalMs);
      this.interval.unref();
    }
  }

  stop(): void {
    if (this.interval) clearInterval(this.interval);
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    this.interval = undefined;
    this.timeoutTimer = undefined;
  }

  /**
   * Calls `done` once bytes up to `end` (already written) are durable, or with
   * FLUSH_DISK_TIMEOUT after `timeoutMs` (default syncFlushTimeout), or with
   * the error of a failed fdatasync. Every waiter has a deadline: none can hang.
   */
  waitFor(
    end: number,
    done: (err: Error | undefined) => void,
    timeoutMs: number = this.timeoutMs,
  ): void {
    if (end <= this.flushedOffset) {
      done(undefined);
      return;
    }
    if (this.failure) {
      done(this.failure);
      return;
    }
    const deadline = performance.now() + timeoutMs;
    this.waiters.push({ end, deadline, timeoutMs, done, settled: false });
    this.armTimeout(deadline);
    this.kick();
  }

  /**
   * Resolves once everything written so far is durable; fails when an
   * fdatasync fails or does not finish within the flush-all timeout (so a
   * hung disk cannot hang close()).
   */
  flush(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waitFor(
        this.commitlog.writtenOffset,
        (err) => (err ? reject(err) : resolve()),
        this.flushAllTimeoutMs,
      );
    });
  }

  /**
   * The commitlog was cut back to `offset` (a failed write rolled back): what
   * lies past it is not durable any more, whatever was synced there before.
   */
  rolledBack(offset: number): void {
    if (this.flushedOffset > offset) this.flushedOffset = offset;
    if (this.cutDuringSync > offset) this.cutDuringSync = offset;
  }

  private kick(): void {
    if (!this.syncing) void this.syncLoop();
  }

  private async syncLoop(): Promise<void> {
    this.syncing = true;
    try {
      for (;;) {
        // Group commit: first let appenders just answered queue their next write and let a
        // write in flight land, so one sync covers as many appends as possible (waiting a
        // write's round trip is cheap next to an fdatasync).
        if (this.mode === 'SYNC_FLUSH') {
          await new Promise<void>((resolve) => setImmediate(resolve));
          await this.commitlog.currentWrite();
        }
        const target = this.commitlog.writtenOffset;
        const timestamp = this.commitlog.lastWrittenStoreTimestamp;
        if (target > this.flushedOffset) {
          this.cutDuringSync = Number.POSITIVE_INFINITY;
          const from = this.flushedOffset;
          const started = performance.now();
          try {
            await this.syncRange(from, target);
            this.onSynced?.((performance.now() - started) / 1000, target - from);
          } catch (err) {
            const errno = (err as NodeJS.ErrnoException).code ?? 'unknown';
            this.failure = errors.storeNotWritable(`commitlog fdatasync failed (${errno})`, err);
            this.logger.error(
              { errno, from: this.flushedOffset, to: target },
              `commitlog fdatasync failed (${errno}); the store refuses writes until restart`,
            );
            // Every waiter fails, also those written after `target` was taken: after a
            // failed fdatasync nothing says their bytes will ever be durable, and a
            // waiter left here would hang until the next append kicks a sync.
            this.failAll(this.failure);
            break;
          }
          // Bytes past a cut made meanwhile are not the bytes that were synced.
          this.flushedOffset = Math.min(target, this.cutDuringSync);
          this.flushedStoreTimestamp = timestamp;
        }
        this.settleUpTo(this.flushedOffset, undefined);
        // Waiters written after `target` was taken need another round.
        if (
          this.waitersHead >= this.waiters.length ||
          this.commitlog.writtenOffset <= this.flushedOffset
        )
          break;
      }
    } finally {
      this.syncing = false;
    }
  }

  private async syncRange(from: number, to: number): Promise<void> {
    // Pick the segments first: the array changes while a sync is awaited (retention
    // shifts the oldest segment out, a rollback drops the newest), and walking it
    // live could skip a segment whose bytes the answer then claims durable.
    const segments = this.commitlog.segments.filter((seg) => seg.start < to && seg.end > from);
    for (const seg of segments) {
      await seg.sync();
      this.syncCount++;
    }
  }

  private settleUpTo(offset: number, err: Error | undefined): void {
    const w = this.waiters;
    while (this.waitersHead < w.length) {
      const waiter = w[this.waitersHead]!;
      if (!waiter.settled) {
        if (waiter.end > offset) break;
        waiter.settled = true;
        waiter.done(err);
      }
      w[this.waitersHead] = undefined as unknown as Waiter;
      this.waitersHead++;
    }
    if (this.waitersHead === w.length) {
      w.length = 0;
      this.waitersHead = 0;
    } else if (this.waitersHead > 4096) {
      w.splice(0, this.waitersHead);
      this.waitersHead = 0;
    }
  }

  private failAll(err: Error): void {
    const w = this.waiters;
    for (let i = this.waitersHead; i < w.length; i++) {
      const waiter = w[i]!;
      if (waiter.settled) continue;
      waiter.settled = true;
      waiter.done(err);
    }
    w.length = 0;
    this.waitersHead = 0;
  }

  private armTimeout(deadline: number): void {
    if (this.timeoutTimer && this.timeoutAt <= deadline) return;
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    this.timeoutAt = deadline;
    this.timeoutTimer = setTimeout(
      () => this.expire(),
      Math.max(0, deadline - performance.now()) + 1,
    );
    this.timeoutTimer.unref();
  }

  /** Fails waiters past their deadline (not necessarily a prefix: flush() waiters wait longer). */
  private expire(): void {
    this.timeoutTimer = undefined;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (let i = this.waitersHead; i < this.waiters.length; i++) {
      const waiter = this.waiters[i]!;
      if (waiter.settled) continue;
      if (waiter.deadline <= now) {
        waiter.settled = true;
        waiter.done(errors.flushDiskTimeout(waiter.timeoutMs));
      } else if (waiter.deadline < next) {
        next = waiter.deadline;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.armTimeout(next);
  }

  /** Waiters still waiting (for tests and stats). */
  get pendingWaiters(): number {
    let n = 0;
    for (let i = this.waitersHead; i < this.waiters.length; i++) if (!this.waiters[i]!.settled) n++;
    return n;
  }
}
