/**
 * The gRPC benchmark's load loop (bench/load-loop.ts): failures are counted
 * and each failing loop pauses before retrying instead of spinning.
 */
import { describe, expect, it } from 'vitest';
import { ERROR_PAUSE_MS, load } from '../../bench/load-loop.js';

describe('gRPC benchmark load loop', () => {
  it('counts failed operations and pauses after each one', async () => {
    const lines: string[] = [];
    const seconds = 0.5;
    const loops = 2;
    let calls = 0;
    const res = await load(
      loops,
      seconds,
      async () => {
        calls++;
        throw new Error('gateway unavailable');
      },
      { write: (t: string) => lines.push(t) },
    );
    // Without the pause a loop would fail thousands of times in half a second.
    const most = loops * Math.ceil((seconds * 1000) / ERROR_PAUSE_MS + 1);
    expect(res.errors).toBe(calls);
    expect(res.errors).toBeGreaterThanOrEqual(loops);
    expect(res.errors).toBeLessThanOrEqual(most);
    expect(res.rate).toBe(0);
    expect(lines.join('')).toContain(`${res.errors} failed operations; first: gateway unavailable`);
  });

  it('reports no errors and the moved messages when operations succeed', async () => {
    const res = await load(1, 0.2, async () => {
      await new Promise((r) => setTimeout(r, 5));
      return 2;
    });
    expect(res.errors).toBe(0);
    expect(res.rate).toBeGreaterThan(0);
    expect(res.p50).toBeGreaterThan(0);
  });
});
