/**
 * Long-polling pops by attempt id, so that WakePops can end their wait early.
 *
 * Why not just let the caller cancel the call: a pop that took messages an
 * instant before the cancel arrived answers into a closed stream, and those
 * messages stay invisible for their whole invisible time. A woken pop instead
 * answers normally (with whatever it has), so nothing it took is lost.
 *
 * A wake can overtake the pop it names (two RPCs on different streams): ids
 * woken before their pop registered are remembered for MAX_POLL_WAIT_MS
 * (bounded), and such a pop does not wait at all.
 */

/** Early wakes remembered at most (the oldest go first). */
export const MAX_EARLY_WAKES = 10_000;

export class PopWaits {
  private readonly waiting = new Map<string, AbortController>();
  /** Attempt id → epoch ms it was woken before its pop arrived. */
  private readonly early = new Map<string, number>();

  constructor(
    private readonly earlyTtlMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Registers a pop; its signal fires on `cancelled` or when woken. Call
   * `end` once the pop answered. An empty id registers nothing.
   */
  begin(attemptId: string, cancelled: AbortSignal): { signal: AbortSignal; end: () => void } {
    if (!attemptId) return { signal: cancelled, end: () => undefined };
    const ac = new AbortController();
    const onCancel = () => ac.abort();
    if (cancelled.aborted) ac.abort();
    else cancelled.addEventListener('abort', onCancel, { once: true });
    const wokenAt = this.early.get(attemptId);
    if (wokenAt !== undefined) {
      this.early.delete(attemptId);
      if (this.clock() - wokenAt <= this.earlyTtlMs) ac.abort();
    }
    this.waiting.set(attemptId, ac);
    return {
      signal: ac.signal,
      end: () => {
        cancelled.removeEventListener('abort', onCancel);
        if (this.waiting.get(attemptId) === ac) this.waiting.delete(attemptId);
      },
    };
  }

  /** Ends the waits of these pops; answers how many were waiting. */
  wake(attemptIds: readonly string[]): number {
    let n = 0;
    const now = this.clock();
    for (const id of attemptIds) {
      if (!id) continue;
      const ac = this.waiting.get(id);
      if (ac) {
        ac.abort();
        n++;
        continue;
      }
      this.early.delete(id);
      this.early.set(id, now);
      while (this.early.size > MAX_EARLY_WAKES) this.early.delete(this.early.keys().next().value!);
    }
    return n;
  }

  /** Pops registered now. */
  get size(): number {
    return this.waiting.size;
  }
}
