/**
 * A set of queue offsets stored as sorted, disjoint, non-adjacent half-open
 * runs [start, end). Settled offsets of a consume queue are mostly contiguous
 * (a run is broken only where a message is still in flight or pending), so the
 * number of runs stays near the number of gaps, not the number of offsets.
 *
 * Invariant: starts[i] < ends[i] < starts[i + 1].
 *
 * @example
 *   const r = new OffsetRuns();
 *   r.add(5); r.add(6); r.addRange(8, 10);
 *   r.has(6);        // true
 *   r.toArray();     // [[5, 7], [8, 10]]
 */
export class OffsetRuns {
  private starts: number[] = [];
  private ends: number[] = [];

  get runCount(): number {
    return this.starts.length;
  }

  /** Number of offsets in the set. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.starts.length; i++) n += this.ends[i]! - this.starts[i]!;
    return n;
  }

  /** Index of the last run whose start is <= offset, or -1. */
  private floor(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! <= offset) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  has(offset: number): boolean {
    const i = this.floor(offset);
    return i >= 0 && offset < this.ends[i]!;
  }

  add(offset: number): void {
    this.addRange(offset, offset + 1);
  }

  /** Adds [start, end). */
  addRange(start: number, end: number): void {
    if (end <= start) return;
    // Runs touching or overlapping [start, end) merge into one.
    let first = this.floor(start);
    if (first < 0 || this.ends[first]! < start) first++;
    const last = this.floor(end);
    if (first > last) {
      this.starts.splice(first, 0, start);
      this.ends.splice(first, 0, end);
      return;
    }
    const s = Math.min(start, this.starts[first]!);
    const e = Math.max(end, this.ends[last]!);
    this.starts.splice(first, last - first + 1, s);
    this.ends.splice(first, last - first + 1, e);
  }

  /** Removes every offset below `offset`. */
  dropBelow(offset: number): void {
    let i = 0;
    while (i < this.starts.length && this.ends[i]! <= offset) i++;
    if (i > 0) {
      this.starts.splice(0, i);
      this.ends.splice(0, i);
    }
    if (this.starts.length > 0 && this.starts[0]! < offset) this.starts[0] = offset;
  }

  /** If a run starts exactly at `offset`, removes it and answers its end; else `offset`. */
  takeRunAt(offset: number): number {
    if (this.starts.length > 0 && this.starts[0] === offset) {
      const end = this.ends[0]!;
      this.starts.shift();
      this.ends.shift();
      return end;
    }
    return offset;
  }

  /** The first offset >= from that is not in the set. */
  nextAbsent(from: number): number {
    const i = this.floor(from);
    return i >= 0 && from < this.ends[i]! ? this.ends[i]! : from;
  }

  /** End of the run containing `offset`, or undefined. */
  runEnd(offset: number): number | undefined {
    const i = this.floor(offset);
    return i >= 0 && offset < this.ends[i]! ? this.ends[i] : undefined;
  }

  /** Start of the first run at or above `from`, or undefined. */
  nextPresent(from: number): number | undefined {
    if (this.has(from)) return from;
    const i = this.floor(from) + 1;
    return i < this.starts.length ? this.starts[i] : undefined;
  }

  clear(): void {
    this.starts = [];
    this.ends = [];
  }

  toArray(): Array<[number, number]> {
    return this.starts.map((s, i) => [s, this.ends[i]!]);
  }

  static fromArray(runs: ReadonlyArray<readonly [number, number]>): OffsetRuns {
    const r = new OffsetRuns();
    for (const [s, e] of runs) r.addRange(s, e);
    return r;
  }
}
