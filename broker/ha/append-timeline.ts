/**
 * When the master's commitlog reached which end, for the per-slave lag in
 * milliseconds: a slave that acked offset A lags by "now − the time the
 * master first held a byte at or past A". Samples are taken as appends are
 * dispatched, at most one per `resolutionMs` (a later append in the same
 * slot only raises the slot's end), in a ring of `capacity` samples, so
 * memory is fixed and the answer is exact to `resolutionMs` for lags up to
 * capacity × resolutionMs (older lags are reported as at least that old:
 * the oldest sample's age).
 */
export const DEFAULT_TIMELINE_RESOLUTION_MS = 5;
const DEFAULT_TIMELINE_CAPACITY = 16_384;

export class AppendTimeline {
  /** Sample i: at time at[i] the commitlog ended at end[i]; oldest first from `first`. */
  private readonly at: Float64Array;
  private readonly end: Float64Array;
  private first = 0;
  private count = 0;

  constructor(
    private readonly resolutionMs = DEFAULT_TIMELINE_RESOLUTION_MS,
    capacity = DEFAULT_TIMELINE_CAPACITY,
  ) {
    this.at = new Float64Array(capacity);
    this.end = new Float64Array(capacity);
  }

  /** The commitlog ends at `end` at time `now` (epoch ms). */
  note(end: number, now: number): void {
    const cap = this.at.length;
    if (this.count > 0) {
      const last = (this.first + this.count - 1) % cap;
      if (end <= this.end[last]!) return;
      if (now - this.at[last]! < this.resolutionMs) {
        this.end[last] = end;
        return;
      }
    }
    const slot = (this.first + this.count) % cap;
    this.at[slot] = now;
    this.end[slot] = end;
    if (this.count < cap) this.count++;
    else this.first = (this.first + 1) % cap;
  }

  /**
   * Milliseconds a slave that acked `acked` is behind at `now`, given the
   * commitlog ends at `max`: 0 when it has everything.
   */
  lagMs(acked: number, max: number, now: number): number {
    if (acked >= max || this.count === 0) return 0;
    const cap = this.at.length;
    // First sample whose end is past `acked`: the master held the missing byte since then.
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.end[(this.first + mid) % cap]! > acked) hi = mid;
      else lo = mid + 1;
    }
    // None: the missing bytes came after the newest sample (not noted yet), a moment ago.
    if (lo === this.count) return 0;
    return Math.max(0, now - this.at[(this.first + lo) % cap]!);
  }
}
