/**
 * The closed load loop of the gRPC benchmark (bench/grpc.ts), apart so that
 * a test can drive it without starting a benchmark.
 */

/** A loop whose operation failed waits this long before the next try, so a failing path is not hammered. */
export const ERROR_PAUSE_MS = 100;

export interface LoadResult {
  /** Messages moved per second. */
  rate: number;
  /** Latency of operations that moved messages, ms. */
  p50: number;
  p99: number;
  /** Operations that failed. */
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * Runs `op` from `concurrency` loops for `seconds`; each op reports how many
 * messages it moved. A failed op is counted and its loop pauses
 * ERROR_PAUSE_MS before trying again.
 */
export async function load(
  concurrency: number,
  seconds: number,
  op: () => Promise<number>,
  out: { write(text: string): unknown } = process.stdout,
): Promise<LoadResult> {
  const until = performance.now() + seconds * 1000;
  const lat: number[] = [];
  let moved = 0;
  let errors = 0;
  let firstError: unknown;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        try {
          const n = await op();
          moved += n;
          if (n > 0) lat.push(performance.now() - t);
          else if (performance.now() + 50 < until) await new Promise((r) => setTimeout(r, 5));
        } catch (err) {
          errors++;
          firstError ??= err;
          // A pause reaching the end of the run ends this loop: a shorter
          // last pause would let timer rounding squeeze in extra failures.
          if (until - performance.now() <= ERROR_PAUSE_MS) break;
          await new Promise((r) => setTimeout(r, ERROR_PAUSE_MS));
        }
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  if (firstError !== undefined) {
    const why = firstError instanceof Error ? firstError.message : String(firstError);
    out.write(`    (${errors} failed operations; first: ${why.slice(0, 200)})\n`);
  }
  lat.sort((a, b) => a - b);
  return { rate: moved / elapsed, p50: percentile(lat, 50), p99: percentile(lat, 99), errors };
}
