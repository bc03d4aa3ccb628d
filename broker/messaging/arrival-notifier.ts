/**
 * Wakes long polls when a message lands: waiters register per topic and are
 * resolved by the store's dispatch events, so a long poll answers as soon as
 * something arrives instead of re-polling on a timer.
 */
export class ArrivalNotifier {
  private readonly waiters = new Map<string, Set<() => void>>();

  /** Number of long polls currently waiting (for metrics). */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  notify(topic: string): void {
    const set = this.waiters.get(topic);
    if (!set) return;
    this.waiters.delete(topic);
    for (const wake of set) wake();
  }

  /**
   * Resolves when a message arrives on one of `topics`, after `timeoutMs`, or
   * when `signal` aborts — whichever comes first. Never rejects.
   */
  wait(topics: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (timeoutMs <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        for (const t of topics) this.waiters.get(t)?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      for (const t of topics) {
        let set = this.waiters.get(t);
        if (!set) {
          set = new Set();
          this.waiters.set(t, set);
        }
        set.add(done);
      }
    });
  }
}
