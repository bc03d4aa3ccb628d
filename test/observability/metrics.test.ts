/**
 * /metrics of every component (gateway on its HTTP port, broker and name
 * server on metricsPort) parses as Prometheus text, and the counters move
 * by exactly the workload: 10 messages sent over REST → +10 in on the
 * gateway and on the broker for that topic, 10 received → +10 out; the
 * same over gRPC with the official RocketMQ SDK (sends, receives, acks by
 * method and Status code); consumer lag per queue and in flight per group
 * follow sends, receives and acks; a redelivery counts one retry and a
 * dead-letter move one DLQ move for the group; totals are counters.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../gateway/helpers.js';
import { receiveN, SdkClients } from '../grpc/sdk-helpers.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { type Exposition, scrape } from './prom-text.js';

/** A port free right now (the component binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

let c: Cluster;
let a: ReturnType<typeof api>;
let sdk: SdkClients;
let brokerMetrics: string;
let namesrvMetrics: string;

beforeAll(async () => {
  const [bp, np] = [await freePort(), await freePort()];
  c = await startCluster({
    namesrvConfig: { metricsPort: np },
    brokers: [{ config: { metricsPort: bp, bindAddress: '127.0.0.1' } }],
    gateway: true,
  });
  brokerMetrics = `http://127.0.0.1:${bp}/metrics`;
  namesrvMetrics = `http://127.0.0.1:${np}/metrics`;
  a = api(c.http);
  sdk = new SdkClients(c);
  await waitFor('gateway ready', async () => (await a.get('/readyz')).status === 200);
  for (const t of ['metered', 'metered-grpc', 'metered-lag']) {
    expect((await a.put(`/v1/topics/${t}`, { readQueueNums: 2, writeQueueNums: 2 })).status).toBe(
      200,
    );
  }
});

afterAll(async () => {
  await sdk?.shutdownAll();
  await c?.close();
});

const topic = { topic: 'metered' };

describe('/metrics', () => {
  it('every component answers Prometheus text with its own metrics', async () => {
    const gw = await scrape(`${c.http}/metrics`);
    const broker = await scrape(brokerMetrics);
    const ns = await scrape(namesrvMetrics);
    for (const [e, prefix] of [
      [gw, 'sluice_gateway_'],
      [broker, 'sluice_broker_'],
      [ns, 'sluice_namesrv_'],
    ] as [Exposition, string][]) {
      expect(e.samples.length).toBeGreaterThan(10);
      expect(e.samples.every((s) => s.name.startsWith(prefix))).toBe(true);
      expect(e.has(`${prefix}process_cpu_seconds_total`)).toBe(true);
    }
    expect(gw.types.get('sluice_gateway_send_duration_seconds')).toBe('histogram');
    expect(gw.has('sluice_gateway_route_cache_hit_ratio')).toBe(true);
    expect(gw.has('sluice_gateway_long_polls_waiting')).toBe(true);
    // Totals since start are counters (rate() works on them), not gauges.
    for (const name of [
      'sluice_gateway_route_cache_hits_total',
      'sluice_gateway_route_cache_misses_total',
      'sluice_gateway_route_cache_errors_total',
      'sluice_gateway_idempotent_replays_total',
    ]) {
      expect(gw.types.get(name), name).toBe('counter');
    }
    for (const name of [
      'sluice_broker_revived_messages_total',
      'sluice_broker_dead_lettered_messages_total',
      'sluice_broker_ha_sync_timeouts_total',
    ]) {
      expect(broker.types.get(name), name).toBe('counter');
    }
    expect(broker.types.get('sluice_broker_commitlog_flush_duration_seconds')).toBe('histogram');
    expect(broker.types.get('sluice_broker_rpc_duration_seconds')).toBe('histogram');
    for (const name of [
      'sluice_broker_in_flight_messages',
      'sluice_broker_long_polls_waiting',
      'sluice_broker_disk_used_ratio',
      'sluice_broker_commitlog_unflushed_bytes',
    ]) {
      expect(broker.has(name), name).toBe(true);
    }
    expect(ns.value('sluice_namesrv_brokers_registered')).toBe(1);
    expect(ns.value('sluice_namesrv_topics')).toBeGreaterThan(0);
    // Registrations and heartbeats: the broker registered at least once.
    expect(
      ns.value('sluice_namesrv_rpc_requests_total', { method: 'RegisterBroker', code: '0' }),
    ).toBeGreaterThan(0);
  });

  it('counters move by the workload: 10 sent, 10 received', async () => {
    const gw0 = await scrape(`${c.http}/metrics`);
    const b0 = await scrape(brokerMetrics);

    const bodies = Array.from({ length: 10 }, (_, i) => `message-${i}`);
    // One batch of 4 and 6 singles, so both request shapes count.
    const batch = await a.post('/v1/topics/metered/messages', {
      messages: bodies.slice(0, 4).map((body) => ({ body })),
    });
    expect(batch.status, batch.text).toBe(200);
    for (const body of bodies.slice(4)) {
      const r = await a.post('/v1/topics/metered/messages', { body });
      expect(r.status, r.text).toBe(200);
    }
    const bytes = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0);

    const gw1 = await scrape(`${c.http}/metrics`);
    const b1 = await scrape(brokerMetrics);
    const delta = (e1: Exposition, e0: Exposition, name: string) =>
      e1.value(name, topic) - e0.value(name, topic);
    expect(delta(gw1, gw0, 'sluice_gateway_messages_in_total')).toBe(10);
    expect(delta(gw1, gw0, 'sluice_gateway_message_bytes_in_total')).toBe(bytes);
    expect(delta(gw1, gw0, 'sluice_gateway_send_duration_seconds_count')).toBe(7);
    expect(delta(b1, b0, 'sluice_broker_messages_in_total')).toBe(10);
    expect(delta(b1, b0, 'sluice_broker_message_bytes_in_total')).toBe(bytes);
    expect(
      b1.value('sluice_broker_rpc_duration_seconds_count', { method: 'SendMessages' }) -
        b0.value('sluice_broker_rpc_duration_seconds_count', { method: 'SendMessages' }),
    ).toBeGreaterThanOrEqual(1);
    // What was written gets flushed (ASYNC_FLUSH: by the flush timer), and the round is timed.
    const flushes = 'sluice_broker_commitlog_flush_duration_seconds_count';
    await waitFor('a timed commitlog flush', async () =>
      (await scrape(brokerMetrics)).value(flushes) > b0.value(flushes) ? true : undefined,
    );

    const received: any[] = [];
    await waitFor('10 messages received', async () => {
      const r = await a.post('/v1/topics/metered/groups/g-metrics/receive', {
        max: 10,
        waitSeconds: 1,
        invisibleSeconds: 60,
      });
      received.push(...r.json.messages);
      return received.length >= 10;
    });
    expect(received).toHaveLength(10);
    const gw2 = await scrape(`${c.http}/metrics`);
    expect(delta(gw2, gw1, 'sluice_gateway_messages_out_total')).toBe(10);
    expect(delta(gw2, gw1, 'sluice_gateway_message_bytes_out_total')).toBe(bytes);
    expect(delta(gw2, gw1, 'sluice_gateway_receive_duration_seconds_count')).toBeGreaterThan(0);
    // Sends and receives looked routes up: the route cache counters moved.
    expect(
      gw2.value('sluice_gateway_route_cache_hits_total') +
        gw2.value('sluice_gateway_route_cache_misses_total'),
    ).toBeGreaterThan(0);
    // Not acked yet: the broker counts them in flight.
    await waitFor('in-flight gauge', async () =>
      (await scrape(brokerMetrics)).value('sluice_broker_in_flight_messages') >= 10
        ? true
        : undefined,
    );
  });

  it('gRPC traffic (official SDK) counts in the same counters: sends, receives, acks', async () => {
    const t = { topic: 'metered-grpc' };
    const gw0 = await scrape(`${c.http}/metrics`);
    const b0 = await scrape(brokerMetrics);
    const producer = await sdk.producer({ topic: 'metered-grpc' });
    const bodies = ['g-one', 'g-two', 'g-three', 'g-four'];
    for (const body of bodies)
      await producer.send({ topic: 'metered-grpc', body: Buffer.from(body) });
    const bytes = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0);

    const gw1 = await scrape(`${c.http}/metrics`);
    const b1 = await scrape(brokerMetrics);
    const d = (e1: Exposition, e0: Exposition, name: string, labels: Record<string, string> = t) =>
      e1.value(name, labels) - e0.value(name, labels);
    expect(d(gw1, gw0, 'sluice_gateway_messages_in_total')).toBe(4);
    expect(d(gw1, gw0, 'sluice_gateway_message_bytes_in_total')).toBe(bytes);
    expect(d(gw1, gw0, 'sluice_gateway_send_duration_seconds_count')).toBe(4);
    expect(
      d(gw1, gw0, 'sluice_gateway_grpc_requests_total', { method: 'SendMessage', code: '20000' }),
    ).toBe(4);
    expect(d(b1, b0, 'sluice_broker_messages_in_total')).toBe(4);

    const consumer = await sdk.consumer('g-metered-grpc', { 'metered-grpc': '*' });
    const got = await receiveN(consumer, 4);
    expect(got).toHaveLength(4);
    const gw2 = await scrape(`${c.http}/metrics`);
    const b2 = await scrape(brokerMetrics);
    expect(d(gw2, gw1, 'sluice_gateway_messages_out_total')).toBe(4);
    expect(d(gw2, gw1, 'sluice_gateway_message_bytes_out_total')).toBe(bytes);
    expect(d(gw2, gw1, 'sluice_gateway_receive_duration_seconds_count')).toBeGreaterThan(0);
    expect(
      d(gw2, gw1, 'sluice_gateway_grpc_requests_total', {
        method: 'ReceiveMessage',
        code: '20000',
      }),
    ).toBeGreaterThan(0);
    expect(d(b2, b1, 'sluice_broker_messages_out_total')).toBe(4);
    expect(d(b2, b1, 'sluice_broker_message_bytes_out_total')).toBe(bytes);

    for (const m of got) await consumer.ack(m);
    const gw3 = await scrape(`${c.http}/metrics`);
    expect(d(gw3, gw2, 'sluice_gateway_acks_total')).toBe(4);
    expect(
      d(gw3, gw2, 'sluice_gateway_grpc_requests_total', { method: 'AckMessage', code: '20000' }),
    ).toBe(4);
    expect(
      d(gw3, gw2, 'sluice_gateway_grpc_request_duration_seconds_count', { method: 'AckMessage' }),
    ).toBe(4);
  });

  it('lag per queue and in flight per group follow the workload; a retry and a DLQ move count for the group', async () => {
    const base = '/v1/topics/metered-lag/groups/g-lag';
    const group = { group: 'g-lag' };
    const lagOf = (e: Exposition, queue: number) =>
      e.value('sluice_broker_consumer_lag_messages', {
        group: 'g-lag',
        topic: 'metered-lag',
        queue: String(queue),
      });
    // A first (empty) receive gives the group its place in every queue.
    expect((await a.post(`${base}/receive`, { max: 1, waitSeconds: 0 })).status).toBe(200);
    const b0 = await scrape(brokerMetrics);
    const gw0 = await scrape(`${c.http}/metrics`);
    const sent = await a.post('/v1/topics/metered-lag/messages', {
      messages: Array.from({ length: 6 }, (_, i) => ({ body: `lag-${i}` })),
    });
    expect(sent.status, sent.text).toBe(200);
    const perQueue = [0, 0];
    for (const r of sent.json.results) perQueue[r.queueId as number]!++;
    await waitFor('lag per queue = what was sent there', async () => {
      const e = await scrape(brokerMetrics);
      return lagOf(e, 0) === perQueue[0] && lagOf(e, 1) === perQueue[1] ? true : undefined;
    });

    const received: any[] = [];
    await waitFor('6 messages received', async () => {
      const r = await a.post(`${base}/receive`, { max: 6, waitSeconds: 1, invisibleSeconds: 60 });
      received.push(...r.json.messages);
      return received.length >= 6;
    });
    expect(received).toHaveLength(6);
    const b1 = await scrape(brokerMetrics);
    expect(b1.value('sluice_broker_group_in_flight_messages', group)).toBe(6);
    // Received is not consumed: the lag stays until the acks.
    expect(lagOf(b1, 0) + lagOf(b1, 1)).toBe(6);

    const [redo, ...rest] = received;
    const acked = await a.post(`${base}/ack`, {
      receiptHandles: rest.map((m: any) => m.receiptHandle),
    });
    expect(acked.status, acked.text).toBe(200);
    const gw1 = await scrape(`${c.http}/metrics`);
    expect(
      gw1.value('sluice_gateway_acks_total', { topic: 'metered-lag' }) -
        gw0.value('sluice_gateway_acks_total', { topic: 'metered-lag' }),
    ).toBe(5);

    // Visible again now: the revive pass writes it to %RETRY%g-lag (one retry).
    const vis = await a.post(`${base}/visibility`, {
      receiptHandle: redo.receiptHandle,
      invisibleSeconds: 0,
    });
    expect(vis.status, vis.text).toBe(200);
    await waitFor('one retry counted for the group', async () => {
      const e = await scrape(brokerMetrics);
      return e.value('sluice_broker_retries_total', group) -
        b0.value('sluice_broker_retries_total', group) ===
        1
        ? true
        : undefined;
    });
    const again = await waitFor('the retried message', async () => {
      const r = await a.post(`${base}/receive`, { max: 1, waitSeconds: 1, invisibleSeconds: 60 });
      return r.json.messages[0];
    });
    expect(again.messageId).toBe(redo.messageId);
    expect(again.deliveryAttempt).toBe(2);
    const dl = await a.post(`${base}/dead-letter`, { receiptHandle: again.receiptHandle });
    expect(dl.status, dl.text).toBe(200);

    const b2 = await waitFor('consumed: lag 0 in both queues, nothing in flight', async () => {
      const e = await scrape(brokerMetrics);
      return lagOf(e, 0) === 0 &&
        lagOf(e, 1) === 0 &&
        e.value('sluice_broker_group_in_flight_messages', group) === 0
        ? e
        : undefined;
    });
    const d = (name: string, labels?: Record<string, string>) =>
      b2.value(name, labels) - b0.value(name, labels);
    expect(d('sluice_broker_dead_letters_total', group)).toBe(1);
    expect(d('sluice_broker_retries_total', group)).toBe(1);
  });

  it('an empty long-poll receive on a one-broker topic costs the broker one pop, not a sweep and then a poll', async () => {
    expect(
      (await a.put('/v1/topics/metered-idle', { readQueueNums: 2, writeQueueNums: 2 })).status,
    ).toBe(200);
    const pops = async () =>
      (await scrape(brokerMetrics)).value('sluice_broker_rpc_requests_total', {
        method: 'PopMessages',
      });
    const receive = () =>
      a.post('/v1/topics/metered-idle/groups/idle-consumer/receive', { max: 4, waitSeconds: 0.3 });
    // The first receive also creates the group; count from the second.
    expect((await receive()).status).toBe(200);
    const before = await pops();
    for (let i = 0; i < 3; i++) {
      const res = await receive();
      expect(res.status).toBe(200);
      expect(res.json.messages).toEqual([]);
    }
    expect((await pops()) - before).toBe(3);
    // With a message there, the same single pop brings it at once.
    expect((await a.post('/v1/topics/metered-idle/messages', { body: 'wake' })).status).toBe(200);
    const started = Date.now();
    const res = await a.post('/v1/topics/metered-idle/groups/idle-consumer/receive', {
      max: 4,
      waitSeconds: 20,
    });
    expect(res.json.messages.map((m: { body: string }) => m.body)).toEqual(['wake']);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await pops()) - before).toBe(4);
  });

  it('a gateway and a broker that go idle after a burst give their heap back (memory relief)', async () => {
    const batch = {
      messages: Array.from({ length: 100 }, (_, i) => ({ body: `${i}-${'x'.repeat(1024)}` })),
    };
    for (let i = 0; i < 40; i++) {
      expect((await a.post('/v1/topics/metered/messages', batch)).status).toBe(200);
    }
    // V8 alone keeps the heap it grew to (64 MiB committed on an idle gateway
    // straight after boot, more after load); the relief collects it once the
    // loop idles, here to ~30 MiB.
    const committed = async (url: string, prefix: string) =>
      (await scrape(url)).value(`${prefix}nodejs_heap_size_total_bytes`) / 2 ** 20;
    await waitFor(
      'the gateway heap back under 48 MiB',
      async () => (await committed(`${c.http}/metrics`, 'sluice_gateway_')) < 48,
      // Reliefs are at least MEMORY_RELIEF_MIN_GAP_MS (30 s) apart; the boot one may have just run.
      45_000,
      500,
    );
    await waitFor(
      'the broker heap back under 48 MiB',
      async () => (await committed(brokerMetrics, 'sluice_broker_')) < 48,
      45_000,
      500,
    );
  });
});
