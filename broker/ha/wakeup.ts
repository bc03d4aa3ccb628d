/**
 * A level-triggered wake-up for one sleeper: `wait(ms)` resolves on the next
 * `notify()` or after `ms`. A notify that finds nobody asleep is remembered,
 * so the next wait returns at once — a wake-up between "checked, nothing to
 * do" and "went to sleep" is never lost.
 */
export class Wakeup {
  private resolve: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;

  notify(): void {
    const r = this.resolve;
    if (r) {
      this.settle();
      r();
    } else {
      this.pending = true;
    }
  }

  /** Resolves on notify() or after `ms` (0 or less: at once when not notified). */
  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      // A second sleeper replaces the first (there is one per instance by design); wake the old one.
      this.resolve?.();
      this.settle();
      this.resolve = resolve;
      this.timer = setTimeout(
        () => {
          this.settle();
          resolve();
        },
        Math.max(0, ms),
      );
    });
  }

  private settle(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.resolve = undefined;
  }
}
