/**
 * Avoids brokers that were slow or failing recently, as RocketMQ producers do
 * (MQFaultStrategy): each send's latency maps to a period the broker is not
 * preferred; a failure counts as very slow. Avoidance is a preference, never
 * a ban: when every broker is being avoided the one whose avoidance ends first
 * is used, so a single-broker cluster keeps working.
 */

/** Latency thresholds (ms) and how long a broker is avoided after each (ms). */
export const DEFAULT_LATENCY_MAX_MS = [50, 100, 550, 1_000, 2_000, 3_000, 15_000] as const;
export const DEFAULT_NOT_AVAILABLE_MS = [0, 0, 5_000, 10_000, 30_000, 60_000, 120_000] as const;
/** What a failed call counts as: avoided for a short while, then tried again. */
export const DEFAULT_FAILURE_AVOID_MS = 3_000;

interface FaultItem {
  /** Epoch ms from which the broker is preferred again. */
  availableAt: number;
  lastLatencyMs: number;
}

export class LatencyFaultTolerance {
  private readonly items = new Map<string, FaultItem>();

  constructor(
    private readonly enabled = true,
    private readonly clock: () => number = Date.now,
    private readonly failureAvoidMs = DEFAULT_FAILURE_AVOID_MS,
  ) {}

  /** Records a call's outcome for a broker. */
  update(brokerName: string, latencyMs: number, failed: boolean): void {
    if (!this.enabled) return;
    let avoidMs = failed ? this.failureAvoidMs : 0;
    if (!failed) {
      for (let i = DEFAULT_LATENCY_MAX_MS.length - 1; i >= 0; i--) {
        if (latencyMs >= DEFAULT_LATENCY_MAX_MS[i]!) {
          avoidMs = DEFAULT_NOT_AVAILABLE_MS[i]!;
          break;
        }
      }
    }
    if (avoidMs === 0) {
      this.items.delete(brokerName);
      return;
    }
    this.items.set(brokerName, { availableAt: this.clock() + avoidMs, lastLatencyMs: latencyMs });
  }

  isAvailable(brokerName: string): boolean {
    const item = this.items.get(brokerName);
    return !item || item.availableAt <= this.clock();
  }

  /**
   * Orders candidates: available ones first (keeping their order), then the
   * avoided ones by when their avoidance ends.
   */
  order<T extends { brokerName: string }>(candidates: readonly T[]): T[] {
    if (!this.enabled || this.items.size === 0) return [...candidates];
    const ok: T[] = [];
    const avoided: T[] = [];
    for (const c of candidates) (this.isAvailable(c.brokerName) ? ok : avoided).push(c);
    avoided.sort(
      (a, b) =>
        (this.items.get(a.brokerName)?.availableAt ?? 0) -
        (this.items.get(b.brokerName)?.availableAt ?? 0),
    );
    return [...ok, ...avoided];
  }

  /** Brokers currently avoided, for /metrics and logs. */
  avoided(): string[] {
    return [...this.items.keys()].filter((b) => !this.isAvailable(b));
  }
}
