/**
 * The official rocketmq-client-nodejs Producer (unmodified) against a real
 * cluster through the gateway's apache.rocketmq.v2 service: normal, FIFO,
 * delay and transactional messages, including a check-back that resolves an
 * orphaned transaction over the Telemetry stream, and leaves the check-backs
 * of a REST producer's transaction to that producer.
 */
import type { MessageView, TransactionChecker } from 'rocketmq-client-nodejs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callUnary } from '../../common/grpc.js';
import { api } from '../gateway/helpers.js';
import { brokerClient, brokerStats } from '../harness/clients.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { bodies, receiveN, SdkClients, sdkDefinition } from './sdk-helpers.js';

const { TransactionResolution } = sdkDefinition;

describe('official Node.js SDK: producer', () => {
  let c: Cluster;
  let sdk: SdkClients;
  beforeAll(async () => {
    c = await startCluster({
      brokers: [{ config: { transactionTimeOut: 1_000, transactionCheckInterval: 500 } }],
      gateway: true,
    });
    sdk = new SdkClients(c);
  });
  afterAll(async () => {
    await sdk?.shutdownAll();
    await c?.close();
  });

  it('sends normal messages that a consumer receives with tag, keys and properties', async () => {
    const producer = await sdk.producer({ topic: 'grpc-normal' });
    const receipts = [];
    for (let i = 0; i < 5; i++) {
      receipts.push(
        await producer.send({
          topic: 'grpc-normal',
          tag: 'TagA',
          keys: [`key-${i}`],
          body: Buffer.from(`normal-${i}`),
          properties: new Map([['n', String(i)]]),
        }),
      );
    }
    expect(new Set(receipts.map((r) => r.messageId)).size).toBe(5);
    const consumer = await sdk.consumer('grpc-normal-g', { 'grpc-normal': '*' });
    const got = await receiveN(consumer, 5);
    expect(bodies(got).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `normal-${i}`));
    for (const m of got) {
      const i = Number(m.properties.get('n'));
      expect(m.messageId).toBe(receipts[i]!.messageId);
      expect(m.tag).toBe('TagA');
      expect(m.keys).toEqual([`key-${i}`]);
      expect(m.topic).toBe('grpc-normal');
      expect(m.deliveryAttempt).toBe(1);
      expect(m.corrupted).toBeFalsy();
      expect(m.bornTimestamp?.getTime()).toBeGreaterThan(Date.now() - 60_000);
    }
    for (const m of got) await consumer.ack(m);
  });

  it('keeps a message group in order (FIFO)', async () => {
    const producer = await sdk.producer({ topic: 'grpc-fifo' });
    const offsets: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await producer.send({
        topic: 'grpc-fifo',
        messageGroup: 'order-42',
        body: Buffer.from(`fifo-${i}`),
      });
      offsets.push(Number(r.offset));
    }
    // One group, one queue: offsets grow one by one.
    expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
    const consumer = await sdk.consumer('grpc-fifo-g', { 'grpc-fifo': '*' });
    const got: MessageView[] = [];
    await waitFor('the FIFO group delivered in order', async () => {
      for (const m of await consumer.receive(32, 30_000)) {
        got.push(m);
        await consumer.ack(m);
      }
      return got.length >= 10;
    });
    expect(bodies(got)).toEqual([...Array(10).keys()].map((i) => `fifo-${i}`));
    expect(got.every((m) => m.messageGroup === 'order-42')).toBe(true);
  });

  it('an orderly group gets a message group one message at a time, in order', async () => {
    const broker = brokerClient(c.brokers[0]!.addr);
    await callUnary(broker, broker.UpdateSubscriptionGroup as never, {
      group_name: 'grpc-fifo-orderly',
      consume_enable: true,
      consume_message_orderly: true,
      retry_max_times: 16,
    });
    broker.close();
    const producer = await sdk.producer({ topic: 'grpc-fifo2' });
    for (let i = 0; i < 3; i++) {
      await producer.send({
        topic: 'grpc-fifo2',
        messageGroup: 'acct-7',
        body: Buffer.from(`step-${i}`),
      });
    }
    const consumer = await sdk.consumer('grpc-fifo-orderly', { 'grpc-fifo2': '*' });
    for (let i = 0; i < 3; i++) {
      const [m] = await receiveN(consumer, 1, 10_000);
      expect(m?.body.toString()).toBe(`step-${i}`);
      // The group's next message waits until this one is settled.
      expect(await consumer.receive(32, 30_000)).toEqual([]);
      await consumer.ack(m!);
    }
  });

  it('delivers a delayed message at its delivery time, not before', async () => {
    const producer = await sdk.producer({ topic: 'grpc-delay' });
    const consumer = await sdk.consumer('grpc-delay-g', { 'grpc-delay': '*' });
    const due = new Date(Date.now() + 3_000);
    await producer.send({
      topic: 'grpc-delay',
      body: Buffer.from('later'),
      deliveryTimestamp: due,
    });
    const early = await consumer.receive(1, 10_000);
    expect(early).toEqual([]);
    const [m] = await receiveN(consumer, 1, 15_000);
    expect(m?.body.toString()).toBe('later');
    expect(Date.now()).toBeGreaterThanOrEqual(due.getTime() - 50);
    expect(m?.deliveryTimestamp?.getTime()).toBe(due.getTime());
    await consumer.ack(m!);
  });

  it('commits a transaction: the message is delivered only after commit', async () => {
    const checker: TransactionChecker = { check: async () => null as never };
    const producer = await sdk.producer({ topic: 'grpc-tx', checker });
    const consumer = await sdk.consumer('grpc-tx-g', { 'grpc-tx': '*' });
    const tx = producer.beginTransaction();
    const receipt = await producer.send({ topic: 'grpc-tx', body: Buffer.from('tx-commit') }, tx);
    expect(receipt.transactionId).not.toBe('');
    expect(await consumer.receive(1, 10_000)).toEqual([]);
    await tx.commit();
    const [m] = await receiveN(consumer, 1);
    expect(m?.body.toString()).toBe('tx-commit');
    expect(m?.messageId).toBe(receipt.messageId);
    await consumer.ack(m!);
  });

  it('rolls back a transaction: the message is never delivered, and its producer is never asked', async () => {
    const asked: string[] = [];
    // Commits if asked: a rollback the broker lost would come back as a check-back and a delivery.
    const checker: TransactionChecker = {
      check: async (m) => {
        asked.push(m.messageId);
        return m.body.toString() === 'tx-rollback' ? TransactionResolution.COMMIT : (null as never);
      },
    };
    const producer = await sdk.producer({ topic: 'grpc-txrb', checker });
    const consumer = await sdk.consumer('grpc-txrb-g', { 'grpc-txrb': '*' });
    const before = await brokerStats(c.brokers[0]!.addr);
    const tx = producer.beginTransaction();
    await producer.send({ topic: 'grpc-txrb', body: Buffer.from('tx-rollback') }, tx);
    await tx.rollback();
    const after = await brokerStats(c.brokers[0]!.addr);
    expect(Number(after.transactionsRolledBack)).toBe(Number(before.transactionsRolledBack) + 1);
    // No half message is left for a check-back (the tests before this one settled theirs).
    expect(after.transactionsOpen).toBe('0');
    // Longer than the broker's check time (transactionTimeOut 1 s, then every 0.5 s).
    expect(await consumer.receive(1, 10_000)).toEqual([]);
    expect(await consumer.receive(1, 10_000)).toEqual([]);
    expect(asked).toEqual([]);
  });

  it('resolves an orphaned transaction through a check-back to the producer', async () => {
    const asked: string[] = [];
    const checker: TransactionChecker = {
      check: async (m) => {
        asked.push(m.messageId);
        return m.body.toString() === 'tx-orphan' ? TransactionResolution.COMMIT : (null as never);
      },
    };
    const producer = await sdk.producer({ topic: 'grpc-txorphan', checker });
    const consumer = await sdk.consumer('grpc-txorphan-g', { 'grpc-txorphan': '*' });
    const tx = producer.beginTransaction();
    const receipt = await producer.send(
      { topic: 'grpc-txorphan', body: Buffer.from('tx-orphan') },
      tx,
    );
    // Neither commit nor rollback: the broker finds it undecided and the gateway asks the producer.
    const [m] = await receiveN(consumer, 1, 20_000);
    expect(m?.body.toString()).toBe('tx-orphan');
    expect(asked).toContain(receipt.messageId);
    await consumer.ack(m!);
  });

  it("leaves a REST producer's transaction to it: no SDK producer is asked, no check-back is spent on it", async () => {
    const rest = api(c.http);
    const asked: string[] = [];
    const checker: TransactionChecker = {
      check: async (m) => {
        asked.push(m.messageId);
        return TransactionResolution.ROLLBACK;
      },
    };
    // Connected, with a check-back handler, publishing to another topic.
    await sdk.producer({ topic: 'grpc-tx-elsewhere', checker });
    const sent = await rest.post('/v1/topics/rest-tx-own/messages', {
      body: 'rest-undecided',
      transactional: true,
    });
    expect(sent.status, sent.text).toBe(200);
    const tx = sent.json.results[0];
    const listed = async () => {
      const r = await rest.get('/v1/transactions/orphans?topic=rest-tx-own');
      expect(r.status, r.text).toBe(200);
      return r.json.transactions.length > 0 ? r.json.transactions : undefined;
    };
    // Each listing is one check-back; the gRPC side must have taken none in between.
    const first = await waitFor('the orphan listed for its REST producer', listed);
    expect(first).toEqual([
      expect.objectContaining({ transactionId: tx.transactionId, checkTimes: 1 }),
    ]);
    // Let several check intervals (0.5 s) and gateway orphan polls (1 s) pass.
    await new Promise((r) => setTimeout(r, 2_500));
    const second = await waitFor('the orphan listed again', listed);
    expect(second).toEqual([
      expect.objectContaining({ transactionId: tx.transactionId, checkTimes: 2 }),
    ]);
    expect(asked).toEqual([]);
    const rolledBack = await rest.post(`/v1/transactions/${tx.transactionId}/rollback`, {
      topic: 'rest-tx-own',
      messageId: tx.messageId,
    });
    expect(rolledBack.status, rolledBack.text).toBe(200);
  });
});
