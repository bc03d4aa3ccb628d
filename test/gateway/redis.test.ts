/**
 * Gateway replicas sharing Redis: routes and Idempotency-Keys are shared, a
 * message received on one replica is acked on the other, and Redis dying
 * (SIGKILL) mid-run costs clients nothing; the gateways reconnect by
 * themselves once it is back.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, type Node, startCluster } from '../harness/cluster.js';
import { type RedisHandle, startRedis } from '../harness/redis.js';
import { waitFor } from '../harness/wait.js';
import { api, startGatewayReplica } from './helpers.js';

let redis: RedisHandle;
let c: Cluster;
let g1: ReturnType<typeof api>;
let g2: ReturnType<typeof api>;
let replica: Node;
let probe: Redis;

beforeAll(async () => {
  redis = await startRedis();
  c = await startCluster({
    brokers: [{}],
    gateway: { config: { redisUrl: redis.url, routeLocalTtlMs: 0 } },
  });
  const second = await startGatewayReplica(c, 'gateway-2', {
    redisUrl: redis.url,
    routeLocalTtlMs: 0,
  });
  replica = second.node;
  g1 = api(c.http);
  g2 = api(second.http);
  probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  probe.on('error', () => undefined);
  await probe.connect();
});

afterAll(async () => {
  probe?.disconnect();
  await replica?.stop();
  await c?.close();
  await redis?.stop();
});

describe('two gateway replicas sharing Redis', () => {
  it('receive on one, ack on the other; routes and Idempotency-Keys are shared', async () => {
    const sent = await g1.post(
      '/v1/topics/redis-share/messages',
      { body: 'shared' },
      { 'idempotency-key': 'k-1' },
    );
    expect(sent.status, sent.text).toBe(200);
    // A repeat reaching the other replica is recognised.
    const repeat = await g2.post(
      '/v1/topics/redis-share/messages',
      { body: 'shared' },
      { 'idempotency-key': 'k-1' },
    );
    expect(repeat.headers.get('idempotent-replayed')).toBe('true');
    expect(repeat.json).toEqual(sent.json);

    const got = await waitFor('message on replica 1', async () => {
      const r = await g1.post('/v1/topics/redis-share/groups/g/receive', {
        max: 10,
        waitSeconds: 1,
      });
      return r.json?.messages?.length ? r : undefined;
    });
    expect(got.json.messages).toHaveLength(1);
    const ack = await g2.post('/v1/topics/redis-share/groups/g/ack', {
      receiptHandles: [got.json.messages[0].receiptHandle],
    });
    expect(ack.json.results[0].code).toBe(20000);
    const none = await g1.post('/v1/topics/redis-share/groups/g/receive', { waitSeconds: 0 });
    expect(none.json.messages).toEqual([]);

    const cached = await probe.get('sluice:route:redis-share');
    expect(JSON.parse(cached!).route.queue_datas[0].broker_name).toBe('broker-a');
  });

  it('keeps serving with no client-visible failure while Redis is SIGKILLed, and reconnects after', async () => {
    await g1.post('/v1/topics/redis-kill/messages', { body: 'warm-up' });
    let stop = false;
    const failures: string[] = [];
    let sent = 0;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const gw = i % 2 === 0 ? g1 : g2;
        const r = await gw.post(
          '/v1/topics/redis-kill/messages',
          { body: `m${i}` },
          { 'idempotency-key': `kill-${i}` },
        );
        if (r.status !== 200 || r.json.results[0].code !== 20000)
          failures.push(`send ${r.status} ${r.text}`);
        else sent++;
        const rec = await gw.post('/v1/topics/redis-kill/groups/g/receive', { max: 4 });
        if (rec.status !== 200) failures.push(`${rec.status} ${rec.text}`);
        else if (rec.json.messages.length > 0) {
          const other = gw === g1 ? g2 : g1;
          const ack = await other.post('/v1/topics/redis-kill/groups/g/ack', {
            receiptHandles: rec.json.messages.map((m: any) => m.receiptHandle),
          });
          // Every handle settles: per entry, not just the HTTP status.
          const codes = ack.json?.results?.map((x: any) => x.code) ?? [];
          if (
            ack.status !== 200 ||
            codes.length !== rec.json.messages.length ||
            codes.some((code: number) => code !== 20000)
          ) {
            failures.push(`ack ${ack.status} ${ack.text}`);
          }
        }
      }
    })();
    await waitFor('some traffic', () => sent > 10);
    await redis.kill('SIGKILL');
    const atKill = sent;
    await waitFor('traffic without Redis', () => sent > atKill + 30, 20_000);
    await redis.restart();
    const atRestart = sent;
    await waitFor('traffic after Redis is back', () => sent > atRestart + 10, 20_000);
    // The gateways reconnect by themselves: routes land in Redis again.
    await probe.connect().catch(() => undefined);
    await waitFor(
      'route written to the restarted Redis',
      async () => {
        await g1.post('/v1/topics/redis-kill/messages', { body: 'after' });
        await g2.post('/v1/topics/redis-back/messages', { body: 'after' });
        return (await probe.get('sluice:route:redis-back').catch(() => null)) !== null;
      },
      20_000,
      200,
    );
    stop = true;
    await load;
    expect(failures).toEqual([]);
  });
});
