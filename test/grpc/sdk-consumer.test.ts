/**
 * The official rocketmq-client-nodejs SimpleConsumer (unmodified) against a
 * real cluster through the gateway: receive and ack, change invisible
 * duration, tag filters, redelivery after the invisible time, the
 * dead-letter queue after the last attempt, and REST ↔ SDK interplay (a
 * message and a receipt handle cross from one protocol to the other).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { bodies, receiveN, SdkClients } from './sdk-helpers.js';

/** Deliveries before a message goes to %DLQ% in this cluster (kept small to test the boundary). */
const MAX_RECONSUME_TIMES = 2;

async function post(
  c: Cluster,
  path: string,
  body: unknown,
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${c.http}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

describe('official Node.js SDK: simple consumer', () => {
  let c: Cluster;
  let sdk: SdkClients;
  beforeAll(async () => {
    c = await startCluster({
      brokers: [{ config: { maxReconsumeTimes: MAX_RECONSUME_TIMES } }],
      gateway: true,
    });
    sdk = new SdkClients(c);
  });
  afterAll(async () => {
    await sdk?.shutdownAll();
    await c?.close();
  });

  it('receives and acks; an acked message is not delivered again', async () => {
    const producer = await sdk.producer({ topic: 'sc-ack' });
    for (let i = 0; i < 3; i++)
      await producer.send({ topic: 'sc-ack', body: Buffer.from(`m${i}`) });
    const consumer = await sdk.consumer('sc-ack-g', { 'sc-ack': '*' });
    const got = await receiveN(consumer, 3, 15_000, 2_000);
    expect(bodies(got).sort()).toEqual(['m0', 'm1', 'm2']);
    for (const m of got) await consumer.ack(m);
    // Past the 2 s invisible time: nothing comes back.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await consumer.receive(10, 10_000)).toEqual([]);
  });

  it('filters by tag', async () => {
    const producer = await sdk.producer({ topic: 'sc-tag' });
    for (const tag of ['TagA', 'TagB', 'TagC', 'TagA']) {
      await producer.send({ topic: 'sc-tag', tag, body: Buffer.from(tag) });
    }
    const consumer = await sdk.consumer('sc-tag-g', { 'sc-tag': 'TagA || TagC' });
    const got = await receiveN(consumer, 3);
    expect(bodies(got).sort()).toEqual(['TagA', 'TagA', 'TagC']);
    for (const m of got) await consumer.ack(m);
    expect(await consumer.receive(10, 10_000)).toEqual([]);
  });

  it('redelivers a message whose invisible time ran out, with the next delivery attempt', async () => {
    const producer = await sdk.producer({ topic: 'sc-redeliver' });
    const sent = await producer.send({ topic: 'sc-redeliver', body: Buffer.from('again') });
    const consumer = await sdk.consumer('sc-redeliver-g', { 'sc-redeliver': '*' });
    const [first] = await receiveN(consumer, 1, 15_000, 1_000);
    expect(first?.messageId).toBe(sent.messageId);
    expect(first?.deliveryAttempt).toBe(1);
    const [second] = await receiveN(consumer, 1, 15_000, 10_000);
    expect(second?.messageId).toBe(sent.messageId);
    expect(second?.deliveryAttempt).toBe(2);
    // The first delivery's handle is stale now; the second one settles the message.
    await expect(consumer.ack(first!)).rejects.toMatchObject({ code: 40013 });
    await consumer.ack(second!);
  });

  it('changes the invisible duration: sooner redelivery, and the new handle acks', async () => {
    const producer = await sdk.producer({ topic: 'sc-invisible' });
    await producer.send({ topic: 'sc-invisible', body: Buffer.from('x') });
    const consumer = await sdk.consumer('sc-invisible-g', { 'sc-invisible': '*' });
    const [m] = await receiveN(consumer, 1, 15_000, 60_000);
    const before = m!.receiptHandle;
    await consumer.changeInvisibleDuration(m!, 1_000);
    expect(m!.receiptHandle).not.toBe(before);
    // Visible again after about a second instead of a minute.
    const [again] = await receiveN(consumer, 1, 10_000, 30_000);
    expect(again?.messageId).toBe(m!.messageId);
    await consumer.ack(again!);

    // Extending works too, and the refreshed handle acks.
    await producer.send({ topic: 'sc-invisible', body: Buffer.from('y') });
    const [n] = await receiveN(consumer, 1, 15_000, 2_000);
    await consumer.changeInvisibleDuration(n!, 30_000);
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await consumer.receive(1, 10_000)).toEqual([]);
    await consumer.ack(n!);
  });

  it(`moves a message to %DLQ% after ${MAX_RECONSUME_TIMES} failed deliveries`, async () => {
    const producer = await sdk.producer({ topic: 'sc-dlq' });
    const sent = await producer.send({ topic: 'sc-dlq', body: Buffer.from('poison') });
    const consumer = await sdk.consumer('sc-dlq-g', { 'sc-dlq': '*' });
    const attempts: number[] = [];
    for (let i = 0; i < MAX_RECONSUME_TIMES; i++) {
      const [m] = await receiveN(consumer, 1, 15_000, 1_000);
      expect(m?.messageId).toBe(sent.messageId);
      attempts.push(m!.deliveryAttempt!);
    }
    expect(attempts).toEqual([1, 2]);
    // The last attempt's time runs out: the message goes to the DLQ instead of back to the group.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await consumer.receive(1, 5_000)).toEqual([]);
    const dlq = await waitFor(
      'the DLQ topic to be routable',
      async () => {
        try {
          return await sdk.consumer('sc-dlq-reader', { '%DLQ%sc-dlq-g': '*' });
        } catch {
          return undefined;
        }
      },
      15_000,
      500,
    );
    const [dead] = await receiveN(dlq, 1);
    expect(dead?.body.toString()).toBe('poison');
    await dlq.ack(dead!);
  });

  it('receives over gRPC what REST sent, and REST acks the gRPC receipt handle', async () => {
    const sent = await post(c, '/v1/topics/sc-rest/messages', {
      body: 'from-rest',
      tag: 'R',
      keys: ['rk'],
      properties: { origin: 'http' },
    });
    expect(sent.status).toBe(200);
    const consumer = await sdk.consumer('sc-rest-g', { 'sc-rest': '*' });
    const [m] = await receiveN(consumer, 1);
    expect(m?.body.toString()).toBe('from-rest');
    expect(m?.tag).toBe('R');
    expect(m?.keys).toEqual(['rk']);
    expect(m?.properties.get('origin')).toBe('http');
    expect(m?.messageId).toBe(sent.json.results[0].messageId);
    const acked = await post(c, '/v1/topics/sc-rest/groups/sc-rest-g/ack', {
      receiptHandles: [m!.receiptHandle],
    });
    expect(acked.json.results[0].code).toBe(20000);
  });

  it('receives over REST what the SDK sent, and the SDK acks a REST receipt handle', async () => {
    const producer = await sdk.producer({ topic: 'sc-sdk2rest' });
    const receipt = await producer.send({
      topic: 'sc-sdk2rest',
      tag: 'S',
      keys: ['sk'],
      body: Buffer.from('from-sdk'),
      properties: new Map([['origin', 'grpc']]),
    });
    const got = await post(c, '/v1/topics/sc-sdk2rest/groups/sc-sdk2rest-g/receive', {
      max: 1,
      waitSeconds: 5,
      invisibleSeconds: 10,
    });
    const [m] = got.json.messages;
    expect(m).toMatchObject({
      messageId: receipt.messageId,
      body: 'from-sdk',
      tag: 'S',
      keys: ['sk'],
      properties: { origin: 'grpc' },
    });
    // The SDK acks with the handle a message view carries: hand it the REST one.
    const consumer = await sdk.consumer('sc-sdk2rest-g', { 'sc-sdk2rest': '*' });
    const view = {
      messageId: m.messageId,
      topic: 'sc-sdk2rest',
      receiptHandle: m.receiptHandle,
      endpoints: consumer.getEndpoints(),
    };
    await consumer.ack(view as never);
    const again = await post(c, '/v1/topics/sc-sdk2rest/groups/sc-sdk2rest-g/ack', {
      receiptHandles: [m.receiptHandle],
    });
    expect(again.json.results[0].code).toBe(40013);
  });
});
