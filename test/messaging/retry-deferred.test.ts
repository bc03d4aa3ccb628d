/**
 * %RETRY%{group} holds the retries of every topic a group pops. A pop of one
 * topic keeps the others' retry records aside for them; those of a topic the
 * group no longer pops must not stay in memory (and pin the retry queue)
 * forever: they are dead-lettered after deferredRetryTtlMs (a day by
 * default), and at most maxDeferredRetries are held at once — past that cap a
 * topic idle for deferredRetryIdleUnderPressureMs makes room.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closeLocalBrokers, type LocalBroker, openLocalBroker } from './local-broker.js';

const OK = 20000;
afterEach(closeLocalBrokers);

const pop = (b: LocalBroker, topic: string, invisibleMs = 1_000) =>
  b.pop.pop({ group: 'g', topic, queueId: -1, max: 32, invisibleMs, waitMs: 0, filter: '*' });
const bodies = (ms: Awaited<ReturnType<typeof pop>>) =>
  ms.map((m) => Buffer.from(m.message!.body!).toString()).sort();

/** Both topics get messages popped and not acked; the revive pass re-puts them into %RETRY%g. */
async function retriesOfTwoTopics(b: LocalBroker, perTopic: number): Promise<void> {
  for (const t of ['ta', 'tb']) {
    await b.ctx.topics.upsert({ topic_name: t, read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
    await b.sendOk(
      t,
      Array.from({ length: perTopic }, (_, i) => ({ body: Buffer.from(`${t}${i}`) })),
    );
    expect(await pop(b, t)).toHaveLength(perTopic);
  }
  b.clock.now += 2_000;
  await b.revive.pass();
  expect((await b.store.read('%RETRY%g', 0, 0, 100)).records).toHaveLength(2 * perTopic);
}

describe('retries of a topic the group no longer pops', () => {
  it('are dead-lettered after the TTL and stop pinning the retry queue', async () => {
    const b = await openLocalBroker({
      fakeClock: 10_000_000,
      limits: { deferredRetryTtlMs: 60_000 },
    });
    await retriesOfTwoTopics(b, 2);
    // Only ta is popped from now on: tb's retries are kept aside.
    const ta = await pop(b, 'ta', 30_000);
    expect(bodies(ta)).toEqual(['ta0', 'ta1']);
    expect(
      (
        await b.pop.ack(
          'g',
          'ta',
          ta.map((m) => m.receipt_handle!),
        )
      ).map((s) => s.code),
    ).toEqual([OK, OK]);
    const retrySt = b.states.get('g', '%RETRY%g', 0)!;
    expect(retrySt.deferred.get('tb')?.entries).toHaveLength(2);
    expect(retrySt.base).toBeLessThan(4);

    b.clock.now += 30_000;
    expect(await pop(b, 'ta')).toEqual([]);
    expect(retrySt.deferred.get('tb')?.entries).toHaveLength(2); // not yet

    b.clock.now += 31_000;
    expect(await pop(b, 'ta')).toEqual([]);
    expect(retrySt.deferred.size).toBe(0);
    expect(retrySt.base).toBe(4);
    const dlq = await b.store.read('%DLQ%g', 0, 0, 100);
    expect(dlq.records.map((r) => r.body.toString()).sort()).toEqual(['tb0', 'tb1']);
    expect(dlq.records.map((r) => r.reconsumeTimes)).toEqual([1, 1]);
  });

  it('a topic still popped keeps its retries however long they wait', async () => {
    const b = await openLocalBroker({
      fakeClock: 20_000_000,
      limits: { deferredRetryTtlMs: 60_000 },
    });
    await retriesOfTwoTopics(b, 1);
    expect(bodies(await pop(b, 'ta', 30_000))).toEqual(['ta0']);
    b.clock.now += 45_000;
    expect(await pop(b, 'ta')).toEqual([]);
    b.clock.now += 45_000;
    // tb's list was touched by its own pops only: its first pop now, 90 s later, still gets it.
    expect(bodies(await pop(b, 'tb'))).toEqual(['tb0']);
  });

  it('holds at most maxDeferredRetries aside', async () => {
    const b = await openLocalBroker({ fakeClock: 30_000_000, limits: { maxDeferredRetries: 3 } });
    await retriesOfTwoTopics(b, 5);
    // The retry queue is interleaved ta0..ta4 then tb0..tb4; a pop of tb reads past ta's.
    const first = await pop(b, 'tb', 30_000);
    const retrySt = b.states.get('g', '%RETRY%g', 0)!;
    expect(retrySt.deferred.get('ta')!.entries.length).toBeLessThanOrEqual(3);
    // Still nothing lost: ta's retries all come with ta's pops.
    const ta = [...(await pop(b, 'ta', 30_000)), ...(await pop(b, 'ta', 30_000))];
    expect(bodies(ta)).toEqual(['ta0', 'ta1', 'ta2', 'ta3', 'ta4']);
    const tb = [...first, ...(await pop(b, 'tb', 30_000)), ...(await pop(b, 'tb', 30_000))];
    expect(bodies(tb)).toEqual(['tb0', 'tb1', 'tb2', 'tb3', 'tb4']);
  });

  it('past the cap, a topic idle for the pressure limit is dead-lettered to make room', async () => {
    const b = await openLocalBroker({
      fakeClock: 40_000_000,
      limits: { maxDeferredRetries: 3, deferredRetryIdleUnderPressureMs: 60_000 },
    });
    await retriesOfTwoTopics(b, 5);
    // A pop of tb reads ta0..ta2 aside and stops there: the cap is reached.
    const tb = [...(await pop(b, 'tb', 30_000))];
    const retrySt = b.states.get('g', '%RETRY%g', 0)!;
    expect(retrySt.deferred.get('ta')!.entries).toHaveLength(3);
    b.clock.now += 30_000;
    tb.push(...(await pop(b, 'tb', 30_000)));
    expect(retrySt.deferred.get('ta')!.entries).toHaveLength(3); // idle 30 s: kept
    b.clock.now += 31_000;
    for (let i = 0; i < 3; i++) tb.push(...(await pop(b, 'tb', 30_000)));
    const dlq = await b.store.read('%DLQ%g', 0, 0, 100);
    expect(dlq.records.map((r) => r.body.toString()).sort()).toEqual(['ta0', 'ta1', 'ta2']);
    // Room was made: tb's retries all come, and ta's later ones still wait for ta.
    expect(bodies(tb)).toEqual(['tb0', 'tb1', 'tb2', 'tb3', 'tb4']);
    expect(bodies(await pop(b, 'ta', 30_000))).toEqual(['ta3', 'ta4']);
  });

  it('below the cap, a day is the default before kept-aside retries are dead-lettered', async () => {
    const b = await openLocalBroker({ fakeClock: 50_000_000 });
    await retriesOfTwoTopics(b, 1);
    expect(bodies(await pop(b, 'ta', 30_000))).toEqual(['ta0']);
    b.clock.now += 6 * 60 * 60_000;
    expect(await pop(b, 'ta')).toEqual([]);
    expect(bodies(await pop(b, 'tb'))).toEqual(['tb0']);
    expect((await b.store.read('%DLQ%g', 0, 0, 100)).records).toHaveLength(0);
  });
});
