/**
 * Pending timer messages by due time, in buckets of TIMER_BUCKET_MS: adding is
 * O(1) and the scanner takes what is due without looking at later timers.
 * Memory only, and only the near window of timers: the TimerService loads it
 * from the timer topic's consume queue and evicts the latest buckets when it
 * holds too many (evictLatest).
 *
 * @example
 *   const ix = new TimerIndex();
 *   ix.add({ offset: 0, physicalOffset: 4096, dueAt: 1_700_000_000_500 });
 *   ix.takeDue(1_700_000_000_499, 100); // []   — never early
 *   ix.takeDue(1_700_000_000_500, 100); // [the entry]
 */
export const TIMER_BUCKET_MS = 100;

export interface TimerEntry {
  /** Queue offset in the timer topic. */
  offset: number;
  physicalOffset: number;
  /** Epoch ms the message is due. */
  dueAt: number;
}

export class TimerIndex {
  private readonly buckets = new Map<number, TimerEntry[]>();
  /** Lowest bucket that may hold entries. */
  private cursor = Number.POSITIVE_INFINITY;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(e: TimerEntry): void {
    const b = Math.floor(e.dueAt / TIMER_BUCKET_MS);
    const list = this.buckets.get(b);
    if (list) list.push(e);
    else this.buckets.set(b, [e]);
    this.count++;
    if (b < this.cursor) this.cursor = b;
  }

  /** Due time of the earliest bucket (a lower bound of the next due entry), or undefined. */
  nextDueAt(): number | undefined {
    return this.count === 0 ? undefined : this.cursor * TIMER_BUCKET_MS;
  }

  /**
   * Removes the latest bucket while more than `max` entries are held and more
   * than one bucket is left; answers the start (epoch ms) of the earliest
   * bucket removed, or undefined when none was. Every entry due at or after
   * that time is gone from the index afterwards.
   */
  evictLatest(max: number): number | undefined {
    if (this.count <= max || this.buckets.size <= 1) return undefined;
    const keys = [...this.buckets.keys()].sort((a, b) => b - a);
    let from: number | undefined;
    for (const k of keys) {
      if (this.count <= max || this.buckets.size <= 1) break;
      this.count -= this.buckets.get(k)!.length;
      this.buckets.delete(k);
      from = k;
    }
    return from === undefined ? undefined : from * TIMER_BUCKET_MS;
  }

  /** Removes and returns up to `max` entries with dueAt <= now, earliest buckets first. */
  takeDue(now: number, max: number): TimerEntry[] {
    const out: TimerEntry[] = [];
    if (this.count === 0) {
      this.cursor = Number.POSITIVE_INFINITY;
      return out;
    }
    const last = Math.floor(now / TIMER_BUCKET_MS);
    if (this.cursor < last - 10_000_000) {
      // Very far behind (first pass after a long downtime): jump to the smallest bucket.
      let min = Number.POSITIVE_INFINITY;
      for (const k of this.buckets.keys()) if (k < min) min = k;
      this.cursor = min;
    }
    for (let b = this.cursor; b <= last && out.length < max; b++) {
      const list = this.buckets.get(b);
      if (!list) {
        if (b < last) this.cursor = b + 1;
        continue;
      }
      if (b < last) {
        // Every entry of an earlier bucket is due.
        const n = Math.min(list.length, max - out.length);
        for (let i = 0; i < n; i++) out.push(list[i]!);
        if (n === list.length) {
          this.buckets.delete(b);
          this.cursor = b + 1;
        } else {
          list.splice(0, n);
        }
      } else {
        const keep: TimerEntry[] = [];
        for (const e of list) {
          if (e.dueAt <= now && out.length < max) out.push(e);
          else keep.push(e);
        }
        if (keep.length === 0) this.buckets.delete(b);
        else this.buckets.set(b, keep);
      }
    }
    this.count -= out.length;
    return out;
  }
}
