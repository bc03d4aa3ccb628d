/**
 * Delay and timer messages: arbitrary delivery times and RocketMQ delay
 * levels, never delivered early, on time within 1 s, bounded by
 * timerMaxDelaySec. The broker here holds only 2 s of timers in memory
 * (timerWindowMs), so most timers below are loaded from disk on the way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { BrokerApi, body, OK } from './broker-api.js';

/** Pops (and acks) until `count` messages came; records when each arrived. */
async function receiveTimed(
  api: BrokerApi,
  group: string,
  topic: string,
  count: number,
  timeoutMs: number,
) {
  const out: Array<{ m: StoredMessage__Output; at: number }> = [];
  const deadline = Date.now() + timeoutMs;
  const consumer = async () => {
    while (out.length < count && Date.now() < deadline) {
      const got = await api.pop(group, topic, { max: 256, waitMs: 500 });
      const at = Date.now();
      for (const m of got) out.push({ m, at });
      if (got.length > 0)
        await api.ack(
          group,
          topic,
          got.map((m) => m.receipt_handle),
        );
    }
  };
  await Promise.all([consumer(), consumer()]);
  return out;
}

describe('delay and timer messages', () => {
  let c: Cluster;
  let api: BrokerApi;
  beforeAll(async () => {
    c = await startCluster({
      brokers: [{ config: { timerMaxDelaySec: 3600, timerWindowMs: 2_000 } }],
    });
    api = new BrokerApi(c.brokers[0]!.addr);
  });
  afterAll(async () => {
    api?.close();
    await c?.close();
  });

  it('delivers at the delivery time, not before, within 1 s', async () => {
    await api.sendOk('tm1', [{ body: Buffer.from('warm') }]); // the topic exists and the group starts at 0
    const due = Date.now() + 1_500;
    const sent = await api.sendOk('tm1', [
      { body: Buffer.from('later'), delivery_timestamp_ms: due, tag: 'T', keys: ['tk'] },
    ]);
    expect(sent[0]!.message_id).not.toBe('');
    const got = await receiveTimed(api, 'g', 'tm1', 2, 6_000);
    const later = got.find((x) => body(x.m) === 'later')!;
    expect(later.at).toBeGreaterThanOrEqual(due);
    expect(later.at - due).toBeLessThan(1_000);
    expect(later.m.store_timestamp_ms).toBeGreaterThanOrEqual(due);
    expect(later.m.message!.delivery_timestamp_ms).toBe(due);
    expect(later.m.message!.tag).toBe('T');
    expect(later.m.message!.keys).toEqual(['tk']);
    expect(later.m.message!.message_id).toBe(sent[0]!.message_id);
  });

  it('supports RocketMQ delay levels (1 = 1 s, 2 = 5 s) and delivers past times at once', async () => {
    await api.sendOk('tm2', [{ body: Buffer.from('warm') }]);
    const sentAt = Date.now();
    await api.sendOk('tm2', [
      { body: Buffer.from('level1'), delay_level: 1 },
      { body: Buffer.from('level2'), delay_level: 2 },
      { body: Buffer.from('past'), delivery_timestamp_ms: sentAt - 10_000 },
    ]);
    const got = await receiveTimed(api, 'g', 'tm2', 4, 9_000);
    const at = (b: string) => got.find((x) => body(x.m) === b)!.at;
    expect(at('past') - sentAt).toBeLessThan(800);
    expect(at('level1') - sentAt).toBeGreaterThanOrEqual(1_000);
    expect(at('level1') - sentAt).toBeLessThan(2_000);
    expect(at('level2') - sentAt).toBeGreaterThanOrEqual(5_000);
    expect(at('level2') - sentAt).toBeLessThan(6_500);
  });

  it('refuses a delay level that does not exist, per entry', async () => {
    const res = await api.send('tm2b', [
      { body: Buffer.from('ok'), delay_level: 16 },
      { body: Buffer.from('no level 19'), delay_level: 19 },
      { body: Buffer.from('negative'), delay_level: -1 },
    ]);
    expect(res.map((r) => r.status!.code)).toEqual([OK, 40012, 40012]);
    expect(res[1]!.status!.message).toMatch(/delay level 19 is out of range 1\.\.18/);
  });

  it('holds only the near window in memory, loads later timers from disk on time, across a kill -9', async () => {
    const topic = 'tm5';
    await api.sendOk(topic, [{ body: Buffer.from('warm') }]);
    await receiveTimed(api, 'g', topic, 1, 3_000);
    const near = Date.now() + 6_000;
    const far = Date.now() + 3_000_000;
    await api.sendOk(
      topic,
      Array.from({ length: 300 }, (_, i) => ({
        body: Buffer.from(String(near + (i % 100) * 10)),
        delivery_timestamp_ms: near + (i % 100) * 10,
      })),
    );
    await api.sendOk(
      topic,
      Array.from({ length: 300 }, () => ({ body: Buffer.from('far'), delivery_timestamp_ms: far })),
    );
    // Due beyond the 2 s window: on disk only, for now.
    const before = await api.status();
    expect(Number(before.timerPending)).toBeGreaterThanOrEqual(600);
    expect(Number(before.timerInMemory)).toBe(0);
    await c.brokers[0]!.kill('SIGKILL');
    await c.brokers[0]!.start();
    const after = await api.status();
    expect(Number(after.timerPending)).toBeGreaterThanOrEqual(600);
    expect(Number(after.timerInMemory)).toBeLessThan(300);

    const got = await receiveTimed(api, 'g', topic, 300, 12_000);
    expect(got).toHaveLength(300);
    expect(got.filter((x) => body(x.m) === 'far')).toEqual([]);
    const lateness = got.map((x) => x.at - Number(body(x.m)));
    expect(Math.min(...lateness)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...lateness)).toBeLessThan(1_000);
    // The far ones are still pending, and not in memory.
    const end = await api.status();
    expect(Number(end.timerPending)).toBeGreaterThanOrEqual(300);
    expect(Number(end.timerInMemory)).toBe(0);
  });

  it('refuses a delivery time past timerMaxDelaySec (per entry)', async () => {
    const res = await api.send('tm3', [
      { body: Buffer.from('ok') },
      { body: Buffer.from('too far'), delivery_timestamp_ms: Date.now() + 3_601_000 },
    ]);
    expect(res[0]!.status!.code).toBe(OK);
    expect(res[1]!.status!.code).toBe(40012);
  });

  it('delivers 3000 timers due within the same 2 seconds, each within 1 s and none early', async () => {
    const topic = 'tm4';
    await api.updateTopic({ topic_name: topic, read_queue_nums: 4, write_queue_nums: 4, perm: 6 });
    const start = Date.now() + 2_000;
    const N = 3000;
    for (let i = 0; i < N; i += 500) {
      await api.sendOk(
        topic,
        Array.from({ length: 500 }, (_, k) => {
          const due = start + Math.floor(((i + k) * 2_000) / N);
          return { body: Buffer.from(String(due)), delivery_timestamp_ms: due };
        }),
      );
    }
    expect(Number((await api.status()).timerPending)).toBeGreaterThanOrEqual(N);
    const got = await receiveTimed(api, 'g', topic, N, 15_000);
    expect(got).toHaveLength(N);
    const early = got.filter((x) => x.at < Number(body(x.m)));
    const lateness = got.map((x) => x.at - Number(body(x.m)));
    expect(early).toHaveLength(0);
    expect(Math.max(...lateness)).toBeLessThan(1_000);
  });
});
