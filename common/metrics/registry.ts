/**
 * A prom-client registry per component (never the global one, so tests can
 * run several components in one process), with Node's default process
 * metrics under the component's prefix, plus gauges and counters read at
 * scrape time.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/** Latency buckets (seconds) shared by the send/receive histograms: 0.5 ms … 30 s. */
export const LATENCY_BUCKETS_S = [
  0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/**
 * @example const registry = createRegistry('sluice_broker_'); // sluice_broker_process_cpu_seconds_total …
 */
export function createRegistry(prefix: string, defaults = true): Registry {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix });
  return registry;
}

/**
 * A gauge whose value is read when scraped. `read` returns one number, or
 * values per label set; a throwing source leaves the gauge empty for that
 * scrape instead of failing it.
 */
export function gaugeOf<L extends string = never>(
  registry: Registry,
  name: string,
  help: string,
  read: () =>
    | number
    | undefined
    | Promise<number | undefined>
    | readonly { labels: Record<L, string>; value: number }[]
    | Promise<readonly { labels: Record<L, string>; value: number }[]>,
  labelNames: readonly L[] = [],
): Gauge<L> {
  return new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      let v: Awaited<ReturnType<typeof read>>;
      try {
        v = await read();
      } catch {
        return;
      }
      this.reset();
      if (typeof v === 'number') this.set(v);
      else if (Array.isArray(v)) for (const e of v) this.set(e.labels, e.value);
    },
  });
}

/**
 * A counter whose value is read when scraped from a source that only grows
 * (a "since start" count kept elsewhere), so it is typed and named as a
 * counter (`…_total`) for rate(). A throwing or undefined source leaves it
 * empty for that scrape.
 *
 * @example counterOf(registry, 'sluice_broker_revived_messages_total', 'redeliveries', () => stats.revived);
 */
export function counterOf(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | undefined | Promise<number | undefined>,
): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    async collect() {
      let v: number | undefined;
      try {
        v = await read();
      } catch {
        return;
      }
      this.reset();
      if (v !== undefined && Number.isFinite(v) && v >= 0) this.inc(v);
    },
  });
}
