/**
 * Wakes long polls when a message lands: waiters register per topic and are
 * resolved by the store's dispatch events, so a long poll answers as soon as
 * something arrives instead of re-polling on a timer.
 *
 * A poll reads, finds nothing and then waits; a message that lands between
 * the start of its read and the start of its wait must still wake it. So each
 * topic has an arrival sequence, bumped by every notify: a poll takes
 * `mark(topics)` before it reads and hands it to `wait`, which returns at once
 * when a sequence moved since.
 *
 * Memory: one number per topic ever notified (bounded by the topic count).
 */

/** Arrival sequences of some topics, taken before a read (see ArrivalNotifier.mark). */
export type ArrivalMark = readonly number[];

export class ArrivalNotifier {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly sequences = new Map<string, number>();

  /** Number of long polls currently waiting (for metrics). */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  /** Something arrived on `topic` (or a FIFO message group became free there). */
  notify(topic: string): void {
    this.sequences.set(topic, (this.sequences.get(topic) ?? 0) + 1);
    const set = this.waiters.get(topic);
    if (!set) return;
    this.waiters.delete(topic);
    for (const wake of set) wake();
  }

  /** The topics' arrival sequences now; take it before reading, pass it to wait(). */
  mark(topics: readonly string[]): ArrivalMark {
    return topics.map((t) => this.sequences.get(t) ?? 0);
  }

  /**
   * Resolves when a message arrives on one of `topics`, after `timeoutMs`, or
   * when `signal` aborts — whichever comes first; at once when `since` (a
   * mark of the same topics) shows an arrival already. Never rejects.
   */
  wait(
    topics: readonly string[],
    timeoutMs: number,
    signal?: AbortSignal,
    since?: ArrivalMark,
  ): Promise<void> {
    if (timeoutMs <= 0 || signal?.aborted) return Promise.resolve();
    if (since && topics.some((t, i) => (this.sequences.get(t) ?? 0) !== since[i])) {
      return Promise.resolve();
    }
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
