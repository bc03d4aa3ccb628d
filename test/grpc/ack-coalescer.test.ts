/** AckCoalescer: concurrent acks of one group share calls; each caller gets its own statuses. */
import { describe, expect, it } from 'vitest';
import { AckCoalescer } from '../../gateway/core/ack-coalescer.js';

const ok = (h: string) => ({ code: 20000, message: h, reason: '' });

describe('AckCoalescer', () => {
  it('sends acks that arrive together in one call and answers each caller in order', async () => {
    const calls: string[][] = [];
    const c = new AckCoalescer(async (_t, _g, handles) => {
      calls.push([...handles]);
      return handles.map(ok);
    });
    const results = await Promise.all([
      c.ack('t', 'g', ['a']),
      c.ack('t', 'g', ['b', 'c']),
      c.ack('t', 'g', ['d']),
    ]);
    expect(calls).toEqual([['a', 'b', 'c', 'd']]);
    expect(results.map((r) => r.map((s) => s.message))).toEqual([['a'], ['b', 'c'], ['d']]);
  });

  it('keeps groups apart, splits at maxBatch and queues behind calls in flight', async () => {
    const calls: { group: string; handles: string[] }[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const c = new AckCoalescer(
      async (_t, group, handles) => {
        calls.push({ group, handles: [...handles] });
        await gate;
        return handles.map(ok);
      },
      { maxBatch: 2, maxInFlight: 1 },
    );
    const all = Promise.all([
      c.ack('t', 'g1', ['a', 'b']),
      c.ack('t', 'g1', ['c']),
      c.ack('t', 'g1', ['d']),
      c.ack('t', 'g2', ['x']),
    ]);
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual([
      { group: 'g1', handles: ['a', 'b'] },
      { group: 'g2', handles: ['x'] },
    ]);
    release();
    const results = await all;
    expect(calls.slice(2)).toEqual([{ group: 'g1', handles: ['c', 'd'] }]);
    expect(results.flat().map((s) => s.message)).toEqual(['a', 'b', 'c', 'd', 'x']);
  });

  it('fails every caller of a failed call', async () => {
    const c = new AckCoalescer(async () => {
      throw new Error('broker gone');
    });
    const results = await Promise.allSettled([c.ack('t', 'g', ['a']), c.ack('t', 'g', ['b'])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});
