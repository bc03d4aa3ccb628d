/**
 * The timer holds only its near window in memory, bounded by
 * timerMaxInMemory, and loads later timers from the timer topic's consume
 * queue as time goes on — across a crash too. Driven by a hand-moved clock
 * over a real store (test/messaging/local-broker.ts): every timer is
 * delivered once, never before its time, while memory stays at the bound.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TimerIndex } from '../../broker/messaging/timer-index.js';
import { waitFor } from '../harness/wait.js';
import { closeLocalBrokers, openLocalBroker } from './local-broker.js';

afterEach(closeLocalBrokers);

const MAX_IN_MEMORY = 100;
const options = { timerWindowMs: 10_000, timerMaxInMemory: MAX_IN_MEMORY };

describe('TimerIndex.evictLatest', () => {
  it('drops the latest buckets down to the bound and says from when', () => {
    const ix = new TimerIndex();
    for (let i = 0; i < 10; i++) ix.add({ offset: i, physicalOffset: i, dueAt: 1_000 + i * 100 });
    expect(ix.evictLatest(20)).toBeUndefined();
    expect(ix.evictLatest(6)).toBe(1_600);
    expect(ix.size).toBe(6);
    expect(ix.takeDue(10_000, 100).map((e) => e.dueAt)).toEqual([
      1_000, 1_100, 1_200, 1_300, 1_400, 1_500,
    ]);
  });
});

describe('timer window', () => {
  it('delivers 500 timers spread over 25 s on time with at most 100 in memory, across a crash', async () => {
    const t0 = Date.now();
    let b = await openLocalBroker({ fakeClock: t0, start: true, options });
    await b.ctx.topics.upsert({
      topic_name: 'tw',
      read_queue_nums: 1,
      write_queue_nums: 1,
      perm: 6,
    });
    const N = 500;
    const dueOf = (i: number) => t0 + 20_000 + i * 50;
    for (let i = 0; i < N; i += 100) {
      await b.sendOk(
        'tw',
        Array.from({ length: 100 }, (_, k) => ({
          body: Buffer.from(String(dueOf(i + k))),
          delivery_timestamp_ms: dueOf(i + k),
        })),
      );
    }
    expect(b.timer.stats()).toMatchObject({ pending: N, inMemory: 0 });

    const delivered = async () => (await b.store.read('tw', 0, 0, 10_000)).records;
    let maxInMemory = 0;
    for (let now = t0; now <= t0 + 50_000; now += 500) {
      if (now === t0 + 32_000) {
        // Crash mid-way: the window is loaded again from disk at start.
        await b.crash();
        b = await openLocalBroker({ dir: b.dir, fakeClock: now, start: true, options });
      }
      b.clock.now = now;
      const due = Array.from({ length: N }, (_, i) => dueOf(i)).filter((d) => d <= now).length;
      const got = await waitFor(`the timers due by +${now - t0} ms`, async () => {
        const records = await delivered();
        return records.length >= due ? records : undefined;
      });
      // None early: nothing past `now` went out.
      expect(got.every((r) => Number(r.body.toString()) <= now)).toBe(true);
      maxInMemory = Math.max(maxInMemory, b.timer.stats().inMemory);
    }
    const all = await delivered();
    expect(new Set(all.map((r) => r.body.toString())).size).toBe(N);
    expect(all).toHaveLength(N); // once each: the crash came between deliveries
    expect(maxInMemory).toBeLessThanOrEqual(MAX_IN_MEMORY);
    expect(maxInMemory).toBeGreaterThan(MAX_IN_MEMORY / 2); // near the bound: 10 s hold 200 timers here
    expect(b.timer.stats()).toMatchObject({ pending: 0, inMemory: 0 });
  });
});
