/**
 * FIFO consumption (subscription group consume_message_orderly): in send order
 * within a message group, the group's next message only after the previous
 * one is acked or dead-lettered, other groups not blocked, redelivery in
 * place.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeReceiptHandle } from '../../common/receipt-handle.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { BrokerApi, body, OK } from './broker-api.js';

describe('FIFO', () => {
  let c: Cluster;
  let api: BrokerApi;
  beforeAll(async () => {
    c = await startCluster({ brokers: [{}] });
    api = new BrokerApi(c.brokers[0]!.addr);
  });
  afterAll(async () => {
    api?.close();
    await c?.close();
  });

  const orderly = (group: string, retry_max_times?: number) =>
    api.updateGroup({
      group_name: group,
      consume_enable: true,
      consume_message_orderly: true,
      ...(retry_max_times !== undefined && { retry_max_times }),
    });

  it('delivers 10k messages of 100 groups in order per group to 4 concurrent consumers', async () => {
    const topic = 'fifo10k';
    await api.updateTopic({ topic_name: topic, read_queue_nums: 8, write_queue_nums: 8, perm: 6 });
    await orderly('fg');
    const GROUPS = 100;
    const TOTAL = 10_000;
    for (let start = 0; start < TOTAL; start += 1000) {
      await api.sendOk(
        topic,
        Array.from({ length: 1000 }, (_, k) => {
          const i = start + k;
          const g = i % GROUPS;
          return { body: Buffer.from(`${g}:${Math.floor(i / GROUPS)}`), message_group: `mg-${g}` };
        }),
      );
    }
    const next = new Array<number>(GROUPS).fill(0);
    const inFlightGroups = new Set<number>();
    const violations: string[] = [];
    let received = 0;
    const deadline = Date.now() + 60_000;
    const consumer = async () => {
      while (received < TOTAL && Date.now() < deadline) {
        const got = await api.pop('fg', topic, { max: 32, invisibleMs: 30_000, waitMs: 500 });
        for (const m of got) {
          const [g, seq] = body(m).split(':').map(Number) as [number, number];
          // Never two messages of one group out at once, and always the next one.
          if (inFlightGroups.has(g)) violations.push(`group ${g} delivered while busy`);
          if (seq !== next[g]) violations.push(`group ${g}: got ${seq}, expected ${next[g]}`);
          inFlightGroups.add(g);
          next[g] = seq + 1;
        }
        // "Processing": the groups stay busy while the other consumers pop.
        if (got.length > 0) await new Promise((r) => setTimeout(r, 2 + Math.random() * 4));
        // Release the groups before the ack is sent: the broker may hand out the next
        // message of a group as soon as the ack is in, even to another consumer.
        for (const m of got) inFlightGroups.delete(Number(body(m).split(':')[0]));
        if (got.length > 0) {
          const acks = await api.ack(
            'fg',
            topic,
            got.map((m) => m.receipt_handle),
          );
          if (acks.some((a) => a.code !== OK)) violations.push('ack failed');
          received += got.length;
        }
      }
    };
    await Promise.all([consumer(), consumer(), consumer(), consumer()]);
    expect(violations.slice(0, 5)).toEqual([]);
    expect(received).toBe(TOTAL);
    expect(next.every((n) => n === TOTAL / GROUPS)).toBe(true);
  });

  it('a group with more waiting records than the read-ahead holds does not block the others', async () => {
    const topic = 'fifo4';
    await api.updateTopic({ topic_name: topic, read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
    await orderly('fw');
    // 2100 records of busy group A (more than the 2048 read ahead), then B and C.
    const A = 2100;
    for (let i = 0; i < A; i += 700) {
      await api.sendOk(
        topic,
        Array.from({ length: 700 }, (_, k) => ({
          body: Buffer.from(`a${i + k}`),
          message_group: 'A',
        })),
      );
    }
    await api.sendOk(topic, [
      { body: Buffer.from('b0'), message_group: 'B' },
      { body: Buffer.from('c0'), message_group: 'C' },
    ]);
    const first = await api.pop('fw', topic, { max: 1, waitMs: 1_000 });
    expect(first.map(body)).toEqual(['a0']);
    // A is busy: B and C come next, though 2099 records of A lie before them.
    const others = await api.pop('fw', topic, { max: 10, waitMs: 1_000 });
    expect(others.map(body)).toEqual(['b0', 'c0']);
    expect(await api.pop('fw', topic, { max: 10, waitMs: 200 })).toEqual([]);
    // A goes on in order, one at a time, past the records that did not fit.
    let handle = first[0]!.receipt_handle;
    for (let i = 1; i < A; i++) {
      await api.ack('fw', topic, [handle]);
      const got = await api.pop('fw', topic, { max: 10, waitMs: 1_000 });
      if (got.length !== 1 || body(got[0]!) !== `a${i}`) {
        expect(got.map(body)).toEqual([`a${i}`]);
      }
      handle = got[0]!.receipt_handle;
    }
  });

  it("holds a group's next message until the previous is acked; other groups flow", async () => {
    const topic = 'fifo2';
    await api.updateTopic({ topic_name: topic, read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
    await orderly('fb');
    await api.sendOk(topic, [
      { body: Buffer.from('a1'), message_group: 'A' },
      { body: Buffer.from('a2'), message_group: 'A' },
      { body: Buffer.from('b1'), message_group: 'B' },
      { body: Buffer.from('b2'), message_group: 'B' },
      { body: Buffer.from('c1'), message_group: 'C' },
    ]);
    const first = await api.pop('fb', topic, { max: 10, waitMs: 1_000 });
    expect(first.map(body)).toEqual(['a1', 'b1', 'c1']);
    expect(await api.pop('fb', topic, { max: 10, waitMs: 200 })).toEqual([]);
    const byBody = new Map(first.map((m) => [body(m), m]));
    await api.ack('fb', topic, [byBody.get('b1')!.receipt_handle]);
    expect((await api.pop('fb', topic, { max: 10, waitMs: 1_000 })).map(body)).toEqual(['b2']);
    // A waiting pop is woken by the ack that frees group A.
    const waiting = api.pop('fb', topic, { max: 10, waitMs: 5_000 });
    await new Promise((r) => setTimeout(r, 200));
    const ackedAt = Date.now();
    await api.ack('fb', topic, [byBody.get('a1')!.receipt_handle]);
    expect((await waiting).map(body)).toEqual(['a2']);
    expect(Date.now() - ackedAt).toBeLessThan(1_000);
  });

  it('redelivers in place with attempt + 1 and dead-letters after retry_max_times, freeing the group', async () => {
    const topic = 'fifo3';
    await api.updateTopic({ topic_name: topic, read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
    await orderly('fr', 2);
    await api.sendOk(topic, [
      { body: Buffer.from('x1'), message_group: 'X' },
      { body: Buffer.from('x2'), message_group: 'X' },
    ]);
    const d1 = await api.pop('fr', topic, { max: 10, invisibleMs: 1_000, waitMs: 1_000 });
    expect(d1.map(body)).toEqual(['x1']);
    const t1 = Date.now();
    const d2 = await api.pop('fr', topic, { max: 10, invisibleMs: 1_000, waitMs: 3_000 });
    expect(Date.now() - t1).toBeGreaterThanOrEqual(800);
    expect(d2.map(body)).toEqual(['x1']);
    expect(d2[0]!.delivery_attempt).toBe(2);
    // In place: same queue offset, not the retry topic.
    expect(decodeReceiptHandle(d2[0]!.receipt_handle).topic).toBe(topic);
    expect(d2[0]!.queue_offset).toBe(d1[0]!.queue_offset);
    // Attempt 2 was the last: x1 goes to the DLQ and x2 follows.
    const d3 = await api.pop('fr', topic, { max: 10, invisibleMs: 1_000, waitMs: 3_000 });
    expect(d3.map(body)).toEqual(['x2']);
    expect(d3[0]!.delivery_attempt).toBe(1);
    expect((await api.readAll('%DLQ%fr', 0)).map(body)).toEqual(['x1']);
  });
});
