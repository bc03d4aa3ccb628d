/**
 * Producer behaviour across brokers: with two masters, SIGKILLing one leaves
 * sends succeeding on the other within the retry budget (and receives keep
 * working); broker push-back answers 429 with Retry-After; no writable
 * broker answers 503; concurrent sends share batch RPCs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../common/errors.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { api, type FakeCluster, startFakeCluster } from './helpers.js';

describe('two masters, one SIGKILLed', () => {
  let c: Cluster;
  let a: ReturnType<typeof api>;
  beforeAll(async () => {
    c = await startCluster({
      brokers: [{ name: 'broker-a' }, { name: 'broker-b' }],
      gateway: true,
    });
    a = api(c.http);
    await waitFor(
      'both brokers registered',
      async () => (await a.get('/v1/cluster')).json?.brokers?.length === 2,
    );
  });
  afterAll(async () => {
    await c?.close();
  });

  it('a receive over both brokers hides nothing: 200 messages each arrive once, at attempt 1', async () => {
    const t = 'spread-topic';
    expect((await a.put(`/v1/topics/${t}`, { readQueueNums: 2, writeQueueNums: 2 })).status).toBe(
      200,
    );
    const seen = new Map<string, number[]>();
    let stop = false;
    const failures: string[] = [];
    // Long enough that a hidden message cannot come back within the test.
    const invisibleSeconds = 120;
    const consumer = async () => {
      while (!stop) {
        const r = await a.post(`/v1/topics/${t}/groups/spread/receive`, {
          max: 10,
          waitSeconds: 2,
          invisibleSeconds,
        });
        if (r.status !== 200) {
          failures.push(`${r.status} ${r.text}`);
          continue;
        }
        for (const m of r.json.messages) {
          const attempts = seen.get(m.messageId) ?? [];
          attempts.push(m.deliveryAttempt);
          seen.set(m.messageId, attempts);
        }
        if (r.json.messages.length > 0) {
          await a.post(`/v1/topics/${t}/groups/spread/ack`, {
            receiptHandles: r.json.messages.map((m: any) => m.receiptHandle),
          });
        }
      }
    };
    const consumers = Array.from({ length: 4 }, consumer);
    // Every consumer long-polls both brokers before the first message arrives.
    await waitFor('consumers waiting', async () =>
      /sluice_gateway_long_polls_waiting [4-9]/.test((await a.get('/metrics')).text),
    );
    const sent: string[] = [];
    const brokers = new Set<string>();
    const producer = async (p: number) => {
      for (let i = p; i < 200; i += 8) {
        const r = await a.post(`/v1/topics/${t}/messages`, { body: `s${i}` });
        expect(r.status, r.text).toBe(200);
        sent.push(r.json.results[0].messageId);
        brokers.add(r.json.results[0].broker);
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, p) => producer(p)));
    expect(brokers).toEqual(new Set(['broker-a', 'broker-b']));
    // Well under invisibleSeconds: a message a poll took and dropped would not be back yet.
    await waitFor('every message received', () => sent.every((id) => seen.has(id)), 20_000).catch(
      () => undefined,
    );
    stop = true;
    await Promise.all(consumers);
    expect(sent.filter((id) => !seen.has(id))).toEqual([]);
    expect(failures).toEqual([]);
    expect(seen.size).toBe(200);
    const repeated = [...seen].filter(([, attempts]) => attempts.length !== 1 || attempts[0] !== 1);
    expect(repeated).toEqual([]);
  });

  it('keeps sends succeeding on the surviving broker', async () => {
    const created = await a.put('/v1/topics/fo-topic', { readQueueNums: 2, writeQueueNums: 2 });
    expect(created.json.brokers.sort()).toEqual(['broker-a', 'broker-b']);
    const before = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        a.post('/v1/topics/fo-topic/messages', { body: `b${i}` }),
      ),
    );
    expect(new Set(before.map((r) => r.json.results[0].broker))).toEqual(
      new Set(['broker-a', 'broker-b']),
    );

    await c.brokers[0]!.kill('SIGKILL');
    const statuses: number[] = [];
    const brokers = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const r = await a.post('/v1/topics/fo-topic/messages', { body: `a${i}` });
      statuses.push(r.status);
      if (r.status === 200) brokers.add(r.json.results[0].broker);
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect([...brokers]).toEqual(['broker-b']);
    const batch = await a.post('/v1/topics/fo-topic/messages', {
      messages: Array.from({ length: 10 }, (_, i) => ({ body: `x${i}` })),
    });
    expect(batch.json.results.every((r: any) => r.code === Code.OK)).toBe(true);
    const got = await a.post('/v1/topics/fo-topic/groups/g/receive', { max: 32, waitSeconds: 1 });
    expect(got.status).toBe(200);
    expect(got.json.messages.length).toBeGreaterThan(0);
    expect((await a.get('/readyz')).status).toBe(200);
  });
});

describe('push-back, no broker, coalescing (fake brokers)', () => {
  let f: FakeCluster;
  let a: ReturnType<typeof api>;
  beforeAll(async () => {
    f = await startFakeCluster({ brokers: ['broker-a'], gateway: { sendMaxInFlight: 1 } });
    a = api(f.http);
  });
  afterAll(async () => {
    await f?.close();
  });

  it('coalesces concurrent sends into fewer batch RPCs', async () => {
    await a.post('/v1/topics/co-topic/messages', { body: 'first' });
    const b = f.brokers[0]!;
    const calls = b.sendCalls;
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        a.post('/v1/topics/co-topic/messages', { body: `m${i}` }),
      ),
    );
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(new Set(replies.map((r) => r.json.results[0].messageId)).size).toBe(200);
    expect(b.sendCalls - calls).toBeLessThan(100);
  });

  it('answers 429 with Retry-After when the broker pushes back', async () => {
    const b = f.brokers[0]!;
    b.sendStatus = { code: Code.TOO_MANY_REQUESTS, message: 'broker busy', reason: 'BROKER_BUSY' };
    try {
      const r = await a.post('/v1/topics/co-topic/messages', { body: 'x' });
      expect(r.status).toBe(429);
      expect(r.json.code).toBe(Code.TOO_MANY_REQUESTS);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      b.sendStatus = undefined;
    }
  });

  it('answers 501 NOT_IMPLEMENTED cleanly when the broker cannot end transactions', async () => {
    const r = await a.post('/v1/transactions/tx-1/commit', { topic: 'co-topic', messageId: 'm1' });
    expect(r.status).toBe(501);
    expect(r.json.code).toBe(Code.NOT_IMPLEMENTED);
  });

  it('answers 503 when no writable broker is left', async () => {
    await f.brokers[0]!.stop();
    // The name server still lists the broker for a while; the gateway finds it unreachable.
    const r = await a.post('/v1/topics/co-topic/messages', { body: 'x' });
    expect(r.status, r.text).toBe(503);
    expect(r.headers.get('retry-after')).toBeTruthy();
    expect(r.json.code).toBe(Code.HA_NOT_AVAILABLE);
    await waitFor('not ready', async () => (await a.get('/readyz')).status === 503);
  });

  it('is not ready while no name server answers', async () => {
    await f.cluster.namesrvs[0]!.kill('SIGKILL');
    const r = await waitFor('not ready', async () => {
      const x = await a.get('/readyz');
      return x.json?.namesrv === false ? x : undefined;
    });
    expect(r.status).toBe(503);
    expect(r.json).toEqual({ ready: false, namesrv: false, broker: false });
    expect((await a.get('/healthz')).status).toBe(200);
  });
});
