/**
 * Gives memory back when a process goes quiet after a burst.
 *
 * V8 collects old-generation garbage only under allocation pressure, so a
 * process that carried a load and then idles keeps what the load left behind.
 * Measured on a gateway after a minute of batched sends and receives: 229 MiB
 * RSS, unchanged through 30 s of idling; one full collection took it to
 * 151 MiB (V8 heap committed 107 → 28 MiB, external memory 43 → 4 MiB, all of
 * it garbage). A freshly started process likewise carries ~30 MiB of boot
 * garbage. JDK 12's periodic G1 collection (JEP 346) answers the same problem.
 *
 * The C allocator keeps memory too. A burst frees many buffers of 8–128 KiB
 * (socket reads, request bodies, encoded batches) scattered among live ones,
 * and glibc returns a freed page to the system only at the top of its heap,
 * or when malloc_trim asks it to. The same gateway, collected, still held
 * 169 MiB RSS; malloc_trim(0) took it to 86 MiB in under a millisecond.
 *
 * Every `checkMs` the relief looks back over the interval. When the event loop
 * was busy for less than `idleUtilization` of it and the V8 heap plus external
 * memory, or the resident set, has grown by `growthBytes` since the last
 * relief, it asks V8 for a memory-reducing collection (see
 * inspectorCollector) and then glibc for its free pages (see mallocTrimmer).
 * That costs a pause of tens of ms, taken only while the loop is nearly idle;
 * a steadily busy process never sees one.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from './logger.js';

export const MEMORY_RELIEF_CHECK_MS = 2_000;
/** Event-loop utilisation (0–1) over a check interval below which the process counts as idle. */
export const MEMORY_RELIEF_IDLE_UTILIZATION = 0.05;
/**
 * Growth (bytes) of the V8 heap plus external memory, or of the resident set,
 * since the last relief that makes one worthwhile.
 */
export const MEMORY_RELIEF_GROWTH_BYTES = 32 * 2 ** 20;
/**
 * Least time between two reliefs, ms: a light steady load (idle by the
 * measure above, yet growing the heap) gets at most one pause per gap.
 */
export const MEMORY_RELIEF_MIN_GAP_MS = 30_000;

export interface MemorySample {
  /** Event-loop utilisation (0–1) since the previous sample. */
  utilization: number;
  /** V8 heap committed plus external memory, bytes. */
  bytes: number;
  /** Resident set size, bytes: also counts what the C allocator keeps. */
  rss: number;
}

export interface MemoryReliefDeps {
  sample(): MemorySample;
  /** A full, memory-reducing collection, and the allocator's free pages given back. */
  collect(): Promise<void>;
  logger?: Logger;
  idleUtilization?: number;
  growthBytes?: number;
  minGapMs?: number;
  /** Monotonic ms. */
  clock?: () => number;
}

export class MemoryRelief {
  /** The sample right after the last relief; zeros before the first, so boot garbage goes too. */
  private baseline: MemorySample = { utilization: 0, bytes: 0, rss: 0 };
  private collecting = false;
  /** When the last relief ended (monotonic ms); none yet. */
  private lastAt = Number.NEGATIVE_INFINITY;
  /** Collections asked for so far. */
  collections = 0;

  constructor(private readonly deps: MemoryReliefDeps) {}

  /** One look back over the interval since the previous; true when it collected. */
  async check(): Promise<boolean> {
    const clock = this.deps.clock ?? performance.now.bind(performance);
    if (this.collecting) return false;
    const s = this.deps.sample();
    if (clock() - this.lastAt < (this.deps.minGapMs ?? MEMORY_RELIEF_MIN_GAP_MS)) return false;
    const idle = s.utilization < (this.deps.idleUtilization ?? MEMORY_RELIEF_IDLE_UTILIZATION);
    const growth = Math.max(s.bytes - this.baseline.bytes, s.rss - this.baseline.rss);
    if (!idle || growth < (this.deps.growthBytes ?? MEMORY_RELIEF_GROWTH_BYTES)) return false;
    this.collecting = true;
    const started = performance.now();
    try {
      await this.deps.collect();
    } finally {
      this.collecting = false;
      // Also after a failure, so that one is retried (and logged) once per gap, not per check.
      this.lastAt = clock();
    }
    this.collections++;
    // The collection itself made the loop busy; the next interval must not count it.
    const after = this.deps.sample();
    this.baseline = after;
    this.deps.logger?.debug(
      {
        beforeMiB: Math.round(s.bytes / 2 ** 20),
        afterMiB: Math.round(after.bytes / 2 ** 20),
        rssBeforeMiB: Math.round(s.rss / 2 ** 20),
        rssAfterMiB: Math.round(after.rss / 2 ** 20),
        pauseMs: Math.round(performance.now() - started),
      },
      'idle: memory given back',
    );
    return true;
  }
}

/** Event-loop utilisation and memory of this process, each call covering the time since the last. */
export function processSampler(): () => MemorySample {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    const m = process.memoryUsage();
    return { utilization: delta.utilization, bytes: m.heapTotal + m.external, rss: m.rss };
  };
}

/**
 * A memory-reducing collection (Isolate::LowMemoryNotification: full
 * collections until nothing more goes, then V8 hands its free pages back)
 * asked of the inspector over an in-process session, which opens no port.
 * Measured on a script holding 114 MiB of garbage: RSS 178 → 50 MiB, where
 * --expose-gc's gc() frees the objects but leaves the RSS at 178 MiB.
 * Undefined when this Node was built without the inspector.
 */
export async function inspectorCollector(): Promise<(() => Promise<void>) | undefined> {
  let inspector: typeof import('node:inspector');
  try {
    inspector = await import('node:inspector');
  } catch {
    return undefined;
  }
  return () =>
    new Promise<void>((resolve, reject) => {
      const session = new inspector.Session();
      session.connect();
      session.post('HeapProfiler.collectGarbage', (err) => {
        // Disconnecting inside the session's own callback deadlocks the main thread (Node 20).
        setImmediate(() => session.disconnect());
        if (err) reject(err);
        else resolve();
      });
    });
}

/**
 * glibc's malloc_trim(0), called through koffi (a C FFI): hands every wholly
 * free page of the C heap back to the system, from the middle of the heap
 * too. Undefined where there is no glibc (musl, macOS) or koffi cannot load;
 * the relief then only collects.
 */
export async function mallocTrimmer(): Promise<(() => void) | undefined> {
  try {
    const koffi = (await import('koffi')).default;
    const trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)');
    return () => {
      trim(0);
    };
  } catch {
    return undefined;
  }
}

/** Starts the relief on this process; stop() ends it. Its timer never keeps the process alive. */
export async function startMemoryRelief(
  logger: Logger,
  checkMs = MEMORY_RELIEF_CHECK_MS,
): Promise<{ stop(): void; relief: MemoryRelief | undefined }> {
  const [gc, trim] = await Promise.all([inspectorCollector(), mallocTrimmer()]);
  if (!gc && !trim) return { stop: () => {}, relief: undefined };
  const collect = async () => {
    await gc?.();
    // After the collection: it is what frees the buffers whose pages go back.
    trim?.();
  };
  const relief = new MemoryRelief({ sample: processSampler(), collect, logger });
  const timer = setInterval(() => {
    relief.check().catch((err: unknown) => logger.warn({ err }, 'memory relief failed'));
  }, checkMs);
  timer.unref();
  return { stop: () => clearInterval(timer), relief };
}
