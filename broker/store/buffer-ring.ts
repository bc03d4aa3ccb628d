/**
 * A preallocated ring of bytes for encoding append batches, so the hot path
 * does not allocate (and the GC does not churn) per batch. Batches are written
 * and released in the order they were taken, which is what a ring needs;
 * releases out of order are tolerated (space is reclaimed once every earlier
 * region is released too).
 *
 * Ownership: a region belongs to the caller from take() until release(); the
 * ring never touches it meanwhile. When the ring is full, or a region is large,
 * take() falls back to a fresh allocation (release() is then a no-op).
 */

export interface RingRegion {
  buf: Buffer;
  /** Internal: ring bookkeeping (end position), or -1 for a fallback allocation. */
  end: number;
  released: boolean;
}

export class BufferRing {
  private readonly ring: Buffer;
  /** Next byte to hand out. */
  private head = 0;
  /** Start of the oldest live region. */
  private tail = 0;
  private readonly live: RingRegion[] = [];
  private liveStart = 0;

  constructor(readonly capacityBytes: number) {
    this.ring = Buffer.allocUnsafe(capacityBytes);
  }

  take(size: number): RingRegion {
    const at = this.place(size);
    if (at < 0) return { buf: Buffer.allocUnsafe(size), end: -1, released: false };
    this.head = at + size;
    const region: RingRegion = {
      buf: this.ring.subarray(at, at + size),
      end: at + size,
      released: false,
    };
    this.live.push(region);
    return region;
  }

  release(region: RingRegion): void {
    if (region.released) return;
    region.released = true;
    if (region.end < 0) return;
    while (this.liveStart < this.live.length && this.live[this.liveStart]!.released) {
      this.tail = this.live[this.liveStart]!.end;
      this.liveStart++;
    }
    if (this.liveStart === this.live.length) {
      this.live.length = 0;
      this.liveStart = 0;
      this.head = 0;
      this.tail = 0;
    } else if (this.liveStart > 1024) {
      this.live.splice(0, this.liveStart);
      this.liveStart = 0;
    }
  }

  /** Where a region of `size` bytes fits, or -1. */
  private place(size: number): number {
    if (size > this.capacityBytes / 4) return -1;
    if (this.liveStart === this.live.length) return 0;
    if (this.head > this.tail) {
      // Live data in [tail, head): room at the end, else wrap to the start.
      if (this.head + size <= this.capacityBytes) return this.head;
      return size < this.tail ? 0 : -1;
    }
    // Wrapped: live data in [tail, capacity) and [0, head).
    return this.head + size < this.tail ? this.head : -1;
  }
}
