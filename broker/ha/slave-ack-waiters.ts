/**
 * SYNC_MASTER group commit: sends wait here until a slave acknowledged the
 * commitlog up to their batch's end. One acknowledgement settles every waiter
 * at or below it, so many concurrent sends share one slave round trip, and
 * nothing is woken per message.
 *
 * Invariants: `waiters` is sorted by `offset` (ascending); `acked` only grows.
 * Timeouts are swept by one interval timer that runs only while someone waits
 * (waiters arrive in offset order, so deadlines are in that order too, nearly;
 * a waiter a little out of order times out at most one sweep late).
 */
import { errors } from '../../common/errors.js';

interface Waiter {
  offset: number;
  deadline: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** How often timeouts are checked while waiters exist, at most, ms. */
const MAX_SWEEP_INTERVAL_MS = 50;

export class SlaveAckWaiters {
  private readonly waiters: Waiter[] = [];
  /** Start of `waiters` still pending (the array is compacted lazily). */
  private head = 0;
  private sweeper: NodeJS.Timeout | undefined;
  /** Highest offset a slave confirmed. */
  acked = 0;
  timedOut = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  get size(): number {
    return this.waiters.length - this.head;
  }

  /** Resolves once `acked >= offset`; rejects with FLUSH_SLAVE_TIMEOUT after the timeout. */
  wait(offset: number): Promise<void> {
    if (offset <= this.acked) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { offset, deadline: this.clock() + this.timeoutMs, resolve, reject };
      const last = this.waiters.at(-1);
      if (this.size === 0 || (last && last.offset <= offset)) {
        this.waiters.push(w);
      } else {
        let lo = this.head;
        let hi = this.waiters.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (this.waiters[mid]!.offset <= offset) lo = mid + 1;
          else hi = mid;
        }
        this.waiters.splice(lo, 0, w);
      }
      if (!this.sweeper) {
        this.sweeper = setInterval(
          () => this.sweep(),
          Math.min(MAX_SWEEP_INTERVAL_MS, Math.max(1, this.timeoutMs / 4)),
        );
        this.sweeper.unref();
      }
    });
  }

  /** A slave confirmed everything below `offset`. */
  advance(offset: number): void {
    if (offset <= this.acked) return;
    this.acked = offset;
    while (this.head < this.waiters.length && this.waiters[this.head]!.offset <= offset) {
      this.waiters[this.head]!.resolve();
      this.head++;
    }
    this.compact();
  }

  /** Rejects every waiter (shutdown). */
  failAll(err: Error): void {
    while (this.head < this.waiters.length) this.waiters[this.head++]!.reject(err);
    this.compact();
  }

  private sweep(): void {
    const now = this.clock();
    while (this.head < this.waiters.length && this.waiters[this.head]!.deadline <= now) {
      this.waiters[this.head++]!.reject(errors.flushSlaveTimeout(this.timeoutMs));
      this.timedOut++;
    }
    this.compact();
  }

  private compact(): void {
    if (this.head === this.waiters.length) {
      this.waiters.length = 0;
      this.head = 0;
      if (this.sweeper) clearInterval(this.sweeper);
      this.sweeper = undefined;
    } else if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters.splice(0, this.head);
      this.head = 0;
    }
  }
}
