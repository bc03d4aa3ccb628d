/**
 * Replication lag samples (ms) of the last `windowMs`, for GetBrokerStatus:
 * percentiles are computed on demand (rarely), recording is O(1). Memory is
 * bounded by `capacity` samples; when more arrive within the window the
 * oldest are dropped first.
 */
export interface LagSummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export const DEFAULT_LAG_WINDOW_MS = 10_000;
const DEFAULT_LAG_CAPACITY = 65_536;

export class LagWindow {
  private readonly at: Float64Array;
  private readonly lag: Float64Array;
  private next = 0;
  private count = 0;

  constructor(
    private readonly windowMs = DEFAULT_LAG_WINDOW_MS,
    capacity = DEFAULT_LAG_CAPACITY,
    private readonly clock: () => number = Date.now,
  ) {
    this.at = new Float64Array(capacity);
    this.lag = new Float64Array(capacity);
  }

  record(lagMs: number): void {
    this.at[this.next] = this.clock();
    this.lag[this.next] = Math.max(0, lagMs);
    this.next = (this.next + 1) % this.at.length;
    if (this.count < this.at.length) this.count++;
  }

  summary(): LagSummary {
    const since = this.clock() - this.windowMs;
    const values: number[] = [];
    for (let i = 0; i < this.count; i++) if (this.at[i]! >= since) values.push(this.lag[i]!);
    if (values.length === 0) return { samples: 0, p50: 0, p99: 0, max: 0 };
    values.sort((a, b) => a - b);
    const pick = (q: number) => values[Math.min(values.length - 1, Math.floor(q * values.length))]!;
    return { samples: values.length, p50: pick(0.5), p99: pick(0.99), max: values.at(-1)! };
  }
}
