/**
 * In-flight pop entries by the time they become visible again, in buckets of
 * BUCKET_MS, so the revive pass finds what ran out without scanning every
 * queue, and an ack removes its entry in O(1).
 *
 * Invariant: an entry is in the bucket of its visibleAt for as long as it is
 * the live entry of its offset (the pop service removes it on ack, change of
 * invisible time, revive and reset).
 */
import { type InflightEntry, type QueueState, visibleAtOf } from './consume-state.js';

export const INVISIBLE_BUCKET_MS = 100;

export class InvisibleIndex {
  private readonly buckets = new Map<number, Map<InflightEntry, QueueState>>();
  /** Lowest bucket that may hold entries. */
  private cursor = Number.POSITIVE_INFINITY;
  private count = 0;

  get size(): number {
    return this.count;
  }

  private static bucketOf(e: InflightEntry): number {
    return Math.floor(visibleAtOf(e) / INVISIBLE_BUCKET_MS);
  }

  add(st: QueueState, e: InflightEntry): void {
    const b = InvisibleIndex.bucketOf(e);
    let m = this.buckets.get(b);
    if (!m) {
      m = new Map();
      this.buckets.set(b, m);
    }
    if (!m.has(e)) this.count++;
    m.set(e, st);
    if (b < this.cursor) this.cursor = b;
  }

  remove(e: InflightEntry): void {
    const b = InvisibleIndex.bucketOf(e);
    const m = this.buckets.get(b);
    if (m?.delete(e)) {
      this.count--;
      if (m.size === 0) this.buckets.delete(b);
    }
  }

  /** Removes and returns up to `max` entries visible at `now`, earliest buckets first. */
  takeDue(now: number, max: number): Array<[QueueState, InflightEntry]> {
    const out: Array<[QueueState, InflightEntry]> = [];
    if (this.count === 0) {
      this.cursor = Number.POSITIVE_INFINITY;
      return out;
    }
    const last = Math.floor(now / INVISIBLE_BUCKET_MS);
    if (this.cursor === Number.POSITIVE_INFINITY || this.cursor < last - 1_000_000) {
      // Far behind (first pass after recovery): start from the smallest bucket there is.
      let min = Number.POSITIVE_INFINITY;
      for (const k of this.buckets.keys()) if (k < min) min = k;
      this.cursor = min;
    }
    for (let b = this.cursor; b <= last && out.length < max; b++) {
      const m = this.buckets.get(b);
      if (!m) {
        if (b < last) this.cursor = b + 1;
        continue;
      }
      for (const [e, st] of m) {
        if (out.length >= max) break;
        if (visibleAtOf(e) > now) continue;
        m.delete(e);
        this.count--;
        out.push([st, e]);
      }
      if (m.size === 0) {
        this.buckets.delete(b);
        if (b < last) this.cursor = b + 1;
      } else if (b < last) {
        // Left over only because of `max`: come back to this bucket next time.
        break;
      }
    }
    return out;
  }

  /** Earliest visibleAt among the entries of the given states (for long-poll wake-ups), or undefined. */
  static earliest(states: Iterable<QueueState>, fifoOnly: boolean): number | undefined {
    let next: number | undefined;
    for (const st of states) {
      for (const e of st.inflight.values()) {
        if (fifoOnly && !e.fifo) continue;
        const at = visibleAtOf(e);
        if (next === undefined || at < next) next = at;
      }
    }
    return next;
  }
}
