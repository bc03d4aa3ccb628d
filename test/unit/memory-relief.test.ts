/**
 * Memory relief: a memory-reducing collection only when the loop was nearly
 * idle over the interval and memory grew enough since the last one; and the
 * collector it uses really gives the garbage back.
 */
import { describe, expect, it } from 'vitest';
import {
  inspectorCollector,
  MEMORY_RELIEF_GROWTH_BYTES,
  MEMORY_RELIEF_MIN_GAP_MS,
  MemoryRelief,
  type MemorySample,
  mallocTrimmer,
} from '../../common/memory-relief.js';

const MiB = 2 ** 20;

/** A relief over scripted samples and a clock that moves 40 s per check unless told otherwise. */
function fake(samples: Array<Omit<MemorySample, 'rss'> & { rss?: number }>) {
  let collected = 0;
  let now = 0;
  const relief = new MemoryRelief({
    sample: () => {
      const s = samples.shift() ?? { utilization: 0, bytes: 0 };
      return { rss: 0, ...s };
    },
    collect: async () => {
      collected++;
    },
    clock: () => now,
  });
  const check = (advanceMs = 40_000) => {
    now += advanceMs;
    return relief.check();
  };
  return { relief, check, collected: () => collected };
}

describe('memory relief', () => {
  it('collects once the loop idles after growth, and not again until memory grows again', async () => {
    const { relief, check, collected } = fake([
      // Busy: no collection, whatever the growth.
      { utilization: 0.6, bytes: 200 * MiB },
      // Idle with growth since boot (baseline 0): collects; the sample after it is the new baseline.
      { utilization: 0.01, bytes: 200 * MiB },
      { utilization: 0.3, bytes: 40 * MiB },
      // Grown enough and idle, but within MEMORY_RELIEF_MIN_GAP_MS of the last relief: not yet.
      { utilization: 0, bytes: 300 * MiB },
      // Idle, but grown less than the threshold since: nothing.
      { utilization: 0, bytes: 40 * MiB + MEMORY_RELIEF_GROWTH_BYTES - 1 },
      // Grown enough and idle: collects again.
      { utilization: 0.02, bytes: 40 * MiB + MEMORY_RELIEF_GROWTH_BYTES },
      { utilization: 0, bytes: 45 * MiB },
    ]);
    expect(await check()).toBe(false);
    expect(await check()).toBe(true);
    expect(await check(MEMORY_RELIEF_MIN_GAP_MS - 1)).toBe(false);
    expect(await check()).toBe(false);
    expect(await check()).toBe(true);
    expect(collected()).toBe(2);
    expect(relief.collections).toBe(2);
  });

  it('growth of the resident set alone also counts (what the C allocator keeps after a burst)', async () => {
    const { check, collected } = fake([
      { utilization: 0, bytes: 0, rss: 100 * MiB },
      { utilization: 0, bytes: 0, rss: 80 * MiB },
      // The V8 heap did not grow, the resident set did, by less than the threshold: nothing.
      { utilization: 0, bytes: 0, rss: 80 * MiB + MEMORY_RELIEF_GROWTH_BYTES - 1 },
      // By the threshold: relief.
      { utilization: 0, bytes: 0, rss: 80 * MiB + MEMORY_RELIEF_GROWTH_BYTES },
    ]);
    expect(await check()).toBe(true);
    expect(await check()).toBe(false);
    expect(await check()).toBe(true);
    expect(collected()).toBe(2);
  });

  it('does not start a collection while one runs', async () => {
    let finish = () => {};
    let started = 0;
    const relief = new MemoryRelief({
      sample: () => ({ utilization: 0, bytes: 500 * MiB, rss: 0 }),
      collect: () =>
        new Promise<void>((resolve) => {
          started++;
          finish = resolve;
        }),
    });
    const first = relief.check();
    expect(await relief.check()).toBe(false);
    finish();
    expect(await first).toBe(true);
    expect(started).toBe(1);
  });

  it('a failed collection is tried again only after the gap, not at every check', async () => {
    let now = 0;
    let attempts = 0;
    const relief = new MemoryRelief({
      sample: () => ({ utilization: 0, bytes: 500 * MiB, rss: 0 }),
      collect: async () => {
        attempts++;
        throw new Error('inspector unavailable');
      },
      clock: () => now,
    });
    await expect(relief.check()).rejects.toThrow('inspector unavailable');
    now += MEMORY_RELIEF_MIN_GAP_MS - 1;
    expect(await relief.check()).toBe(false);
    now += 1;
    await expect(relief.check()).rejects.toThrow('inspector unavailable');
    expect(attempts).toBe(2);
    expect(relief.collections).toBe(0);
  });

  it("the inspector's collection frees old-generation garbage that scavenges leave", async () => {
    const collect = await inspectorCollector();
    expect(collect, 'this Node has no inspector').toBeDefined();
    // ~100 MiB of small objects held long enough to reach the old generation.
    let held: Array<{ s: string; n: number[] }> | undefined = [];
    for (let i = 0; i < 600_000; i++) held.push({ s: `garbage-${i}-${'x'.repeat(100)}`, n: [i] });
    await new Promise((r) => setTimeout(r, 50));
    held = undefined;
    const before = process.memoryUsage().heapUsed;
    await collect!();
    const after = process.memoryUsage().heapUsed;
    expect(held).toBeUndefined();
    expect(before - after).toBeGreaterThan(60 * MiB);
  });

  it('malloc_trim gives back the C heap pages a burst freed among live ones', async () => {
    const trim = await mallocTrimmer();
    expect(trim, 'koffi could not call glibc malloc_trim: run npm ci on glibc Linux').toBeDefined();
    const collect = (await inspectorCollector())!;
    // 1,600 × 64 KiB backing stores (below glibc's mmap threshold, so on its
    // heap), pages touched; every 8th stays alive, so the freed ones lie
    // between live ones where glibc cannot trim the heap's top.
    let bufs: Buffer[] | undefined = Array.from({ length: 1_600 }, () =>
      Buffer.allocUnsafeSlow(64 * 1024).fill(1),
    );
    const kept = bufs.filter((_, i) => i % 8 === 0);
    bufs = undefined;
    await collect();
    const before = process.memoryUsage.rss();
    trim!();
    const after = process.memoryUsage.rss();
    expect(bufs).toBeUndefined();
    expect(kept.every((b) => b[0] === 1 && b[65_535] === 1)).toBe(true);
    expect(before - after).toBeGreaterThan(50 * MiB);
  });
});
