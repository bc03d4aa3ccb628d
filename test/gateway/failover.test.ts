/**
 * Producer and consumer behaviour across real brokers: a receive over two
 * masters hides no message; with two masters, SIGKILLing one leaves sends
 * succeeding on the other within the retry budget (and receives keep
 * working); a broker refusing writes (disk over its threshold) answers 429
 * with Retry-After, entry by entry in a batch; concurrent sends share batch
 * RPCs (counted by the gateway's batch-size histogram); no broker answers
 * 503, for sends and for a waiting long poll.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../common/errors.js';
import { groupSlot } from '../../gateway/core/message-group-slot.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { api } from './helpers.js';

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

describe('push-back, partial batches, coalescing, no broker (real brokers)', () => {
  let c: Cluster;
  let a: ReturnType<typeof api>;
  /** Sum and count of the gateway's send batch-size histogram (one sample per batch RPC). */
  const batches = async (): Promise<{ rpcs: number; messages: number }> => {
    const text = (await a.get('/metrics')).text;
    const num = (name: string) =>
      Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
    return {
      rpcs: num('sluice_gateway_send_batch_messages_count'),
      messages: num('sluice_gateway_send_batch_messages_sum'),
    };
  };
  beforeAll(async () => {
    c = await startCluster({
      brokers: [
        { name: 'broker-a' },
        // Refuses every write: any real disk is fuller than this (DISK_FULL → 429).
        { name: 'broker-full', config: { diskSpaceWarningLevelRatio: 0.000001 } },
        // Stores every send, then answers SLAVE_NOT_AVAILABLE: it has no slave.
        { name: 'broker-sync', role: 'SYNC_MASTER' },
      ],
      gateway: { config: { sendMaxInFlight: 1 } },
    });
    a = api(c.http);
    await waitFor(
      'every broker registered',
      async () => (await a.get('/v1/cluster')).json?.brokers?.length === 3,
    );
    for (const [t, broker] of [
      ['co-topic', 'broker-a'],
      ['full-topic', 'broker-full'],
      ['mixed-topic', 'broker-a'],
      ['mixed-topic', 'broker-full'],
      ['sync-topic', 'broker-a'],
      ['sync-topic', 'broker-sync'],
    ] as const) {
      const r = await a.put(`/v1/topics/${t}`, { broker, readQueueNums: 2, writeQueueNums: 2 });
      expect(r.json.brokers, r.text).toEqual([broker]);
    }
    await waitFor('routes over two brokers', async () => {
      const routes = await Promise.all(
        ['mixed-topic', 'sync-topic'].map((t) => a.get(`/v1/topics/${t}/route`)),
      );
      return routes.every((r) => r.json?.queues?.length === 2);
    });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('coalesces concurrent sends into fewer batch RPCs', async () => {
    expect((await a.post('/v1/topics/co-topic/messages', { body: 'first' })).status).toBe(200);
    const before = await batches();
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        a.post('/v1/topics/co-topic/messages', { body: `m${i}` }),
      ),
    );
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(new Set(replies.map((r) => r.json.results[0].messageId)).size).toBe(200);
    const after = await batches();
    expect(after.messages - before.messages).toBe(200);
    expect(after.rpcs - before.rpcs).toBeLessThan(100);
  });

  it('answers 429 with Retry-After when the broker pushes back (disk full)', async () => {
    const r = await a.post('/v1/topics/full-topic/messages', { body: 'x' });
    expect(r.status, r.text).toBe(429);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.json).toMatchObject({ code: Code.TOO_MANY_REQUESTS, reason: 'DISK_FULL' });
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('answers a batch that partly succeeds entry by entry', async () => {
    // A message group stays on the broker it hashes to (no retry elsewhere): pick one on broker-full.
    const group = Array.from({ length: 100 }, (_, i) => `g${i}`).find(
      (g) => groupSlot(g, 2) === 1,
    )!;
    const r = await a.post('/v1/topics/mixed-topic/messages', {
      messages: [
        { body: 'lands' },
        { body: 'refused', messageGroup: group },
        { body: 'lands too' },
      ],
    });
    expect(r.status, r.text).toBe(200);
    expect(r.json.results.map((x: any) => x.code)).toEqual([
      Code.OK,
      Code.TOO_MANY_REQUESTS,
      Code.OK,
    ]);
    expect(r.json.results[0]).toMatchObject({ status: 'OK', broker: 'broker-a' });
    expect(r.json.results[0].messageId).toBeTruthy();
    expect(r.json.results[1].messageId).toBeUndefined();
    expect(r.json.results[1].message).toContain('disk');
  });

  it('does not resend what a SYNC_MASTER stored but could not replicate: the entry keeps its message id', async () => {
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        a.post('/v1/topics/sync-topic/messages', { body: `s${i}` }),
      ),
    );
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
    const results = replies.map((r) => r.json.results[0]);
    const onSync = results.filter((r) => r.broker === 'broker-sync');
    expect(onSync.length).toBeGreaterThan(0);
    for (const r of onSync) {
      expect(r).toMatchObject({ code: Code.HA_NOT_AVAILABLE, status: 'HA_NOT_AVAILABLE' });
      expect(r.messageId).toBeTruthy();
    }
    expect(results.filter((r) => r.broker === 'broker-a').every((r) => r.code === Code.OK)).toBe(
      true,
    );
    // Each message is stored once: no copy on broker-a of what broker-sync kept.
    const bodies: string[] = [];
    await waitFor('every message received', async () => {
      const got = await a.post('/v1/topics/sync-topic/groups/g/receive', {
        max: 32,
        waitSeconds: 0.5,
      });
      bodies.push(...got.json.messages.map((m: any) => m.body));
      return bodies.length >= 20;
    });
    // Let time pass: a duplicate would be readable by now.
    const late = await a.post('/v1/topics/sync-topic/groups/g/receive', {
      max: 32,
      waitSeconds: 1,
    });
    bodies.push(...late.json.messages.map((m: any) => m.body));
    expect(bodies.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `s${i}`).sort());
  });

  it('a long poll whose only broker dies answers 503, not an empty 200', async () => {
    const pending = a.post('/v1/topics/co-topic/groups/late/receive', {
      waitSeconds: 20,
      filter: { expression: 'Nothing' },
    });
    await waitFor('long poll waiting', async () =>
      /sluice_gateway_long_polls_waiting [1-9]/.test((await a.get('/metrics')).text),
    );
    const killedAt = Date.now();
    await c.brokers[0]!.kill('SIGKILL');
    const r = await pending;
    expect(r.status, r.text).toBe(503);
    expect(r.json.code).toBe(Code.HA_NOT_AVAILABLE);
    expect(r.headers.get('retry-after')).toBeTruthy();
    expect(Date.now() - killedAt).toBeLessThan(10_000);
  });

  it('answers 503 when no writable broker is left', async () => {
    // broker-a was SIGKILLed above; the name server still lists it for a while.
    const r = await a.post('/v1/topics/co-topic/messages', { body: 'x' });
    expect(r.status, r.text).toBe(503);
    expect(r.headers.get('retry-after')).toBeTruthy();
    expect(r.json.code).toBe(Code.HA_NOT_AVAILABLE);
  });

  it('is not ready while no broker, then no name server, answers', async () => {
    expect((await a.get('/readyz')).status).toBe(200); // broker-full and broker-sync still answer
    await c.brokers[1]!.kill('SIGKILL');
    await c.brokers[2]!.kill('SIGKILL');
    const noBroker = await waitFor('not ready', async () => {
      const x = await a.get('/readyz');
      return x.status === 503 ? x : undefined;
    });
    expect(noBroker.json).toEqual({ ready: false, namesrv: true, broker: false });
    await c.namesrvs[0]!.kill('SIGKILL');
    const r = await waitFor('no name server', async () => {
      const x = await a.get('/readyz');
      return x.json?.namesrv === false ? x : undefined;
    });
    expect(r.status).toBe(503);
    expect(r.json).toEqual({ ready: false, namesrv: false, broker: false });
    expect((await a.get('/healthz')).status).toBe(200);
  });
});
