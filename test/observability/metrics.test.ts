/**
 * /metrics of every component (gateway on its HTTP port, broker and name
 * server on metricsPort) parses as Prometheus text, and the message
 * counters move by exactly the workload: 10 messages sent → +10 in on the
 * gateway and on the broker for that topic; 10 received → +10 out.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../gateway/helpers.js';
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
  await waitFor('gateway ready', async () => (await a.get('/readyz')).status === 200);
  expect((await a.put('/v1/topics/metered', { readQueueNums: 2, writeQueueNums: 2 })).status).toBe(
    200,
  );
});

afterAll(async () => {
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
    // Not acked yet: the broker counts them in flight.
    await waitFor('in-flight gauge', async () =>
      (await scrape(brokerMetrics)).value('sluice_broker_in_flight_messages') >= 10
        ? true
        : undefined,
    );
  });
});
