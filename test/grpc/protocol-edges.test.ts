/**
 * The public protocol's edges, with a raw client loaded from our own .proto
 * files: malformed requests get the right apache.rocketmq.v2 Code (missing
 * topic, bad receipt handle, oversized bodies and batches …), unsupported
 * features answer cleanly, the authorization header is accepted and ignored,
 * and every server of the cluster (gateway, broker, name server) answers
 * grpc.health.v1 and server reflection.
 */

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  type Client,
  credentials,
  loadPackageDefinition,
  Metadata,
  makeGenericClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessagingServiceClient } from '../../common/generated/apache/rocketmq/v2/MessagingService.js';
import type { Settings } from '../../common/generated/apache/rocketmq/v2/Settings.js';
import { callUnary } from '../../common/grpc.js';
import { encodeReceiptHandle } from '../../common/receipt-handle.js';
import { messagingProto } from '../../gateway/grpc/messaging-proto.js';
import { brokerClient } from '../harness/clients.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { SdkClients } from './sdk-helpers.js';

const MAX_MESSAGE_SIZE = 64 * 1024;
const MAX_REQUEST_BYTES = 128 * 1024;
/** The broker's default delivery limit here (not the usual 16, so the settings must read it). */
const MAX_RECONSUME_TIMES = 7;

const require = createRequire(import.meta.url);

function md(extra: Record<string, string> = {}): Metadata {
  const m = new Metadata();
  m.set('x-mq-client-id', 'edge-client');
  m.set('x-mq-request-id', 'req-1');
  for (const [k, v] of Object.entries(extra)) m.set(k, v);
  return m;
}

function call<T>(
  client: MessagingServiceClient,
  method: string,
  req: unknown,
  meta = md(),
): Promise<T> {
  return new Promise((resolve, reject) => {
    (client as any)[method](
      req,
      meta,
      { deadline: Date.now() + 20_000 },
      (err: ServiceError | null, res: T) => (err ? reject(err) : resolve(res)),
    );
  });
}

async function receiveAll(client: MessagingServiceClient, req: unknown): Promise<any[]> {
  const out: any[] = [];
  for await (const r of client.ReceiveMessage(req as never, md(), {
    deadline: Date.now() + 20_000,
  }))
    out.push(r);
  return out;
}

/** A gateway counter from its /metrics (REST port): the sum over series whose labels contain every `labels` pair. */
async function gatewayCounter(http: string, name: string, labels: string[]): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !labels.every((l) => line.includes(l))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** grpc.health.v1 Check of one service name; the status name, or the gRPC error. */
function healthCheck(health: Client & Record<string, any>, service: string): Promise<string> {
  return new Promise((resolve, reject) =>
    health.Check({ service }, { deadline: Date.now() + 5_000 }, (e: Error | null, r: any) =>
      e ? reject(e) : resolve(r.status),
    ),
  );
}

const topic = (name: string) => ({ resource_namespace: '', name });
const msg = (t: string, body: Buffer, sp: Record<string, unknown> = {}) => ({
  topic: topic(t),
  body,
  system_properties: { message_id: `ID-${Math.random()}`, message_type: 'NORMAL', ...sp },
});

describe('apache.rocketmq.v2 protocol edges', () => {
  let c: Cluster;
  let client: MessagingServiceClient;
  beforeAll(async () => {
    c = await startCluster({
      brokers: [
        {
          config: {
            maxReconsumeTimes: MAX_RECONSUME_TIMES,
            // Undecided transactions come up for a check-back quickly.
            transactionTimeOut: 1_000,
            transactionCheckInterval: 500,
          },
        },
      ],
      gateway: { config: { maxMessageSize: MAX_MESSAGE_SIZE, maxRequestBytes: MAX_REQUEST_BYTES } },
    });
    const Svc = messagingProto().grpc.apache.rocketmq.v2.MessagingService;
    client = new Svc(`127.0.0.1:${c.gateway!.grpcPort}`, credentials.createInsecure());
    // A topic that exists, for the receipt handle cases.
    const sent: any = await call(client, 'SendMessage', {
      messages: [msg('edge-t', Buffer.from('x'))],
    });
    expect(sent.status.code).toBe('OK');
  });
  afterAll(async () => {
    client?.close();
    await c?.close();
  });

  it('a send without a topic is ILLEGAL_TOPIC; without messages BAD_REQUEST', async () => {
    const noTopic: any = await call(client, 'SendMessage', {
      messages: [{ body: Buffer.from('x'), system_properties: { message_id: 'a' } }],
    });
    expect(noTopic.status.code).toBe('ILLEGAL_TOPIC');
    const bad: any = await call(client, 'SendMessage', {
      messages: [msg('bad topic!', Buffer.from('x'))],
    });
    expect(bad.status.code).toBe('ILLEGAL_TOPIC');
    const none: any = await call(client, 'SendMessage', { messages: [] });
    expect(none.status.code).toBe('BAD_REQUEST');
  });

  it('a receive without a topic or group is refused with the matching code', async () => {
    const noTopic = await receiveAll(client, {
      group: topic('g'),
      message_queue: { id: 0 },
      batch_size: 1,
      filter_expression: { type: 'TAG', expression: '*' },
    });
    expect(noTopic).toEqual([
      { status: { code: 'ILLEGAL_TOPIC', message: expect.any(String) }, content: 'status' },
    ]);
    const noGroup = await receiveAll(client, {
      message_queue: { topic: topic('edge-t'), id: 0 },
      batch_size: 1,
    });
    expect(noGroup[0].status.code).toBe('ILLEGAL_CONSUMER_GROUP');
    const unknown = await receiveAll(client, {
      group: topic('g'),
      message_queue: { topic: topic('edge-nowhere'), id: 0 },
      batch_size: 1,
      long_polling_timeout: { seconds: 1 },
    });
    expect(unknown[0].status.code).toBe('TOPIC_NOT_FOUND');
  });

  it('pulls by offset and keeps a group offset (QueryOffset, PullMessage, UpdateOffset, GetOffset)', async () => {
    for (let i = 0; i < 6; i++) {
      const sent: any = await call(client, 'SendMessage', {
        messages: [msg('edge-pull', Buffer.from(`p${i}`))],
      });
      expect(sent.status.code).toBe('OK');
    }
    const route: any = await call(client, 'QueryRoute', { topic: topic('edge-pull') });
    const queues = route.message_queues.filter((q: any) => q.permission !== 'NONE');
    const group = topic('edge-puller');
    const seen: string[] = [];
    for (const q of queues) {
      const mq = { topic: q.topic, id: q.id, broker: q.broker };
      const begin: any = await call(client, 'QueryOffset', {
        message_queue: mq,
        query_offset_policy: 'BEGINNING',
      });
      const end: any = await call(client, 'QueryOffset', {
        message_queue: mq,
        query_offset_policy: 'END',
      });
      expect(begin.status.code).toBe('OK');
      const responses: any[] = [];
      for await (const r of client.PullMessage(
        {
          group,
          message_queue: mq,
          offset: begin.offset,
          batch_size: 32,
          long_polling_timeout: { seconds: 0 },
        } as never,
        md(),
        { deadline: Date.now() + 10_000 },
      )) {
        responses.push(r);
      }
      const messages = responses.filter((r) => r.message).map((r) => r.message.body.toString());
      expect(messages).toHaveLength(end.offset - begin.offset);
      seen.push(...messages);
      expect(responses.at(-1).next_offset).toBe(end.offset);
      const noOffset: any = await call(client, 'GetOffset', { group, message_queue: mq });
      expect(noOffset.status.code).toBe('OFFSET_NOT_FOUND');
      const updated: any = await call(client, 'UpdateOffset', {
        group,
        message_queue: mq,
        offset: end.offset,
      });
      expect(updated.status.code).toBe('OK');
      const got: any = await call(client, 'GetOffset', { group, message_queue: mq });
      expect(got).toMatchObject({ status: { code: 'OK' }, offset: end.offset });
    }
    expect(seen.sort()).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5']);
  });

  it('a bad receipt handle is INVALID_RECEIPT_HANDLE (garbled, forged, on ack and on change-invisible)', async () => {
    const forged = encodeReceiptHandle(
      {
        brokerName: 'broker-a',
        topic: 'edge-t',
        queueId: 0,
        offset: 0,
        popTime: Date.now(),
        invisibleMs: 30_000,
        attempt: 1,
        group: 'g',
      },
      'not-the-cluster-secret',
    );
    for (const handle of ['garbage', forged]) {
      const acked: any = await call(client, 'AckMessage', {
        group: topic('g'),
        topic: topic('edge-t'),
        entries: [{ message_id: 'm', receipt_handle: handle }],
      });
      expect(acked.status.code).toBe('INVALID_RECEIPT_HANDLE');
      expect(acked.entries[0].status.code).toBe('INVALID_RECEIPT_HANDLE');
      const changed: any = await call(client, 'ChangeInvisibleDuration', {
        group: topic('g'),
        topic: topic('edge-t'),
        receipt_handle: handle,
        invisible_duration: { seconds: 10 },
        message_id: 'm',
      });
      expect(changed.status.code).toBe('INVALID_RECEIPT_HANDLE');
    }
  });

  it('a body over maxMessageSize is MESSAGE_BODY_TOO_LARGE; a batch over the request limit PAYLOAD_TOO_LARGE', async () => {
    const big: any = await call(client, 'SendMessage', {
      messages: [msg('edge-t', Buffer.alloc(MAX_MESSAGE_SIZE + 1, 1))],
    });
    expect(big.status.code).toBe('MESSAGE_BODY_TOO_LARGE');
    const batch: any = await call(client, 'SendMessage', {
      messages: [1, 2, 3].map(() => msg('edge-t', Buffer.alloc(MAX_MESSAGE_SIZE - 1, 2))),
    });
    expect(batch.status.code).toBe('PAYLOAD_TOO_LARGE');
    const empty: any = await call(client, 'SendMessage', {
      messages: [msg('edge-t', Buffer.alloc(0))],
    });
    expect(empty.status.code).toBe('MESSAGE_BODY_EMPTY');
  });

  it('a message type that contradicts its fields is MESSAGE_PROPERTY_CONFLICT_WITH_TYPE', async () => {
    const fifoNoGroup: any = await call(client, 'SendMessage', {
      messages: [msg('edge-t', Buffer.from('x'), { message_type: 'FIFO' })],
    });
    expect(fifoNoGroup.status.code).toBe('MESSAGE_PROPERTY_CONFLICT_WITH_TYPE');
    const corrupt: any = await call(client, 'SendMessage', {
      messages: [
        msg('edge-t', Buffer.from('x'), { body_digest: { type: 'MD5', checksum: 'ABC' } }),
      ],
    });
    expect(corrupt.status.code).toBe('MESSAGE_CORRUPTED');
  });

  it('unknown transactions INVALID_TRANSACTION_ID; missing features UNSUPPORTED; an unimplemented RPC NOT_IMPLEMENTED; unknown methods UNIMPLEMENTED', async () => {
    const tx: any = await call(client, 'EndTransaction', {
      topic: topic('edge-t'),
      message_id: 'm',
      transaction_id: 'no-such-transaction',
      resolution: 'COMMIT',
      source: 'SOURCE_CLIENT',
    });
    expect(tx.status.code).toBe('INVALID_TRANSACTION_ID');
    const sql = await receiveAll(client, {
      group: topic('g'),
      message_queue: { topic: topic('edge-t'), id: 0 },
      batch_size: 1,
      filter_expression: { type: 'SQL', expression: 'a > 1' },
    });
    expect(sql[0].status.code).toBe('UNSUPPORTED');
    // Unsupported features inside served RPCs: UNSUPPORTED (50500).
    const sqlPull: any[] = [];
    for await (const r of client.PullMessage(
      {
        group: topic('g'),
        message_queue: { topic: topic('edge-t'), id: 0 },
        offset: 0,
        batch_size: 1,
        filter_expression: { type: 'SQL', expression: 'a > 1' },
      } as never,
      md(),
      { deadline: Date.now() + 10_000 },
    ))
      sqlPull.push(r);
    expect(sqlPull.map((r) => r.status?.code)).toEqual(['UNSUPPORTED']);
    for (const sp of [{ lite_topic: 'lt' }, { priority: 3 }, { message_type: 'LITE' }]) {
      const sent: any = await call(client, 'SendMessage', {
        messages: [msg('edge-t', Buffer.from('x'), sp)],
      });
      expect(sent.status.code, JSON.stringify(sp)).toBe('UNSUPPORTED');
    }
    // An RPC of our service that Sluice does not implement: NOT_IMPLEMENTED (50100).
    const recall: any = await call(client, 'RecallMessage', {
      topic: topic('edge-t'),
      recall_handle: 'h',
    });
    expect(recall.status.code).toBe('NOT_IMPLEMENTED');
    // A method our service.proto does not define: gRPC UNIMPLEMENTED, no Status.

    const Raw = makeGenericClientConstructor(
      {
        SyncLiteSubscription: {
          path: '/apache.rocketmq.v2.MessagingService/SyncLiteSubscription',
          requestStream: false,
          responseStream: false,
          requestSerialize: (v: Buffer) => v,
          requestDeserialize: (v: Buffer) => v,
          responseSerialize: (v: Buffer) => v,
          responseDeserialize: (v: Buffer) => v,
        },
      },
      'Raw',
    );
    const raw = new Raw(
      `127.0.0.1:${c.gateway!.grpcPort}`,
      credentials.createInsecure(),
    ) as Client & Record<string, any>;
    const err = await new Promise<ServiceError>((resolve) =>
      raw.SyncLiteSubscription(Buffer.alloc(0), (e: ServiceError) => resolve(e)),
    );
    expect(err.code).toBe(12); // UNIMPLEMENTED
    raw.close();
  });

  it('a Telemetry session without a client id or with an unknown client type gets a status, not a hang', async () => {
    const ask = (meta: Metadata, settings: Settings) =>
      new Promise<any>((resolve, reject) => {
        const stream = client.Telemetry(meta);
        stream.on('data', (cmd) => {
          resolve(cmd);
          stream.end();
        });
        stream.on('error', reject);
        stream.write({ settings });
      });
    const noId = await ask(new Metadata(), { client_type: 'PRODUCER', publishing: { topics: [] } });
    expect(noId.status.code).toBe('CLIENT_ID_REQUIRED');
    expect(noId.command).toBeUndefined();
    const lite = await ask(md(), { client_type: 'LITE_PUSH_CONSUMER', subscription: {} });
    expect(lite.status.code).toBe('UNRECOGNIZED_CLIENT_TYPE');
    const producer = await ask(md(), {
      client_type: 'PRODUCER',
      publishing: { topics: [topic('edge-t')] },
    });
    expect(producer.status.code).toBe('OK');
    expect(producer.settings.publishing.max_body_size).toBe(MAX_MESSAGE_SIZE);
    expect(producer.settings.backoff_policy.strategy).toBe('exponential_backoff');
    const consumer = await ask(md(), {
      client_type: 'SIMPLE_CONSUMER',
      subscription: {
        group: topic('g'),
        subscriptions: [{ topic: topic('edge-t'), expression: { type: 'TAG', expression: '*' } }],
      },
    });
    expect(consumer.settings.subscription.group.name).toBe('g');
    expect(consumer.settings.subscription.receive_batch_size).toBeGreaterThan(0);
    expect(consumer.settings.subscription.fifo).toBe(false);
    // A group without its own retry limit: the broker's maxReconsumeTimes.
    expect(consumer.settings.backoff_policy.max_attempts).toBe(MAX_RECONSUME_TIMES);

    const broker = brokerClient(c.brokers[0]!.addr);
    await callUnary(broker, broker.UpdateSubscriptionGroup as never, {
      group_name: 'g-orderly',
      consume_enable: true,
      consume_message_orderly: true,
      retry_max_times: 3,
    });
    broker.close();
    const orderly = await ask(md(), {
      client_type: 'PUSH_CONSUMER',
      subscription: { group: topic('g-orderly') },
    });
    expect(orderly.settings.subscription.fifo).toBe(true);
    // The group's own retry_max_times.
    expect(orderly.settings.backoff_policy.max_attempts).toBe(3);
  });

  it('accepts and ignores an MQv2-HMAC-SHA1 authorization header (raw client and the official SDK)', async () => {
    const auth = md({
      authorization:
        'MQv2-HMAC-SHA1 Credential=AK123, SignedHeaders=x-mq-date-time, Signature=0123ABCD',
      'x-mq-date-time': '20260101T000000Z',
      'x-mq-namespace': '',
    });
    const sent: any = await call(
      client,
      'SendMessage',
      { messages: [msg('edge-t', Buffer.from('auth'))] },
      auth,
    );
    expect(sent.status.code).toBe('OK');
    const garbled: any = await call(
      client,
      'SendMessage',
      { messages: [msg('edge-t', Buffer.from('auth'))] },
      md({ authorization: 'nonsense' }),
    );
    expect(garbled.status.code).toBe('OK');

    const sdk = new SdkClients(c);
    try {
      const producer = await sdk.producer({
        topic: 'edge-auth',
        sessionCredentials: { accessKey: 'AK123', accessSecret: 'secret' },
      });
      const receipt = await producer.send({ topic: 'edge-auth', body: Buffer.from('signed') });
      expect(receipt.messageId).toBeTruthy();
    } finally {
      await sdk.shutdownAll();
    }
  });

  it('gateway, broker and name server answer grpc.health.v1 and server reflection', async () => {
    const Health = makeGenericClientConstructor(healthService, 'Health');
    const reflectionPath = join(
      dirname(require.resolve('@grpc/reflection/package.json')),
      'build/proto/grpc/reflection/v1/reflection.proto',
    );
    const reflection = loadPackageDefinition(
      loadSync(reflectionPath, { keepCase: true, oneofs: true }),
    ) as any;
    const servers = [
      { addr: `127.0.0.1:${c.gateway!.grpcPort}`, expect: 'apache.rocketmq.v2.MessagingService' },
      { addr: c.brokers[0]!.addr, expect: 'sluice.v1.Broker' },
      { addr: c.namesrvs[0]!.addr, expect: 'sluice.v1.NameServer' },
    ];
    for (const s of servers) {
      const health = new Health(s.addr, credentials.createInsecure()) as Client &
        Record<string, any>;
      // The server as a whole and each service it serves, by name.
      for (const service of ['', s.expect]) {
        expect(await healthCheck(health, service), `${s.addr} '${service}'`).toBe('SERVING');
      }
      // A service the server does not serve is unknown to health (NOT_FOUND).
      await expect(healthCheck(health, 'no.such.Service')).rejects.toMatchObject({ code: 5 });
      health.close();

      const r = new reflection.grpc.reflection.v1.ServerReflection(
        s.addr,
        credentials.createInsecure(),
      );
      const answers = await new Promise<any[]>((resolve, reject) => {
        const out: any[] = [];
        const stream = r.ServerReflectionInfo();
        stream.on('data', (d: any) => {
          out.push(d);
          if (out.length === 2) stream.end();
        });
        stream.on('end', () => resolve(out));
        stream.on('error', reject);
        stream.write({ list_services: '' });
        stream.write({ file_containing_symbol: s.expect });
      });
      r.close();
      const names = answers[0].list_services_response.service.map((x: any) => x.name);
      expect(names, s.addr).toContain(s.expect);
      expect(
        answers[1].file_descriptor_response?.file_descriptor_proto.length,
        s.addr,
      ).toBeGreaterThan(0);
    }
  });
  it('QueryAssignment gives queue 0 of each broker, reached through the gateway', async () => {
    const gateway = { host: '127.0.0.1', port: c.gateway!.grpcPort };
    // With the access point the client was configured with, and without (the :authority it dialled).
    for (const endpoints of [{ scheme: 'IPv4', addresses: [gateway] }, undefined]) {
      const res: any = await call(client, 'QueryAssignment', {
        topic: topic('edge-t'),
        group: topic('edge-assign-g'),
        ...(endpoints && { endpoints }),
      });
      expect(res.status.code).toBe('OK');
      expect(
        res.assignments.map((a: any) => ({
          topic: a.message_queue.topic.name,
          id: a.message_queue.id,
          permission: a.message_queue.permission,
          broker: a.message_queue.broker.name,
          endpoints: a.message_queue.broker.endpoints,
        })),
      ).toEqual([
        {
          topic: 'edge-t',
          id: 0,
          permission: 'READ_WRITE',
          broker: 'broker-a',
          endpoints: { scheme: 'IPv4', addresses: [gateway] },
        },
      ]);
    }
    const noGroup: any = await call(client, 'QueryAssignment', { topic: topic('edge-t') });
    expect(noGroup.status.code).toBe('ILLEGAL_CONSUMER_GROUP');
  });

  it('ForwardMessageToDeadLetterQueue moves a received message to %DLQ%group, settled for the group', async () => {
    const sent: any = await call(client, 'SendMessage', {
      messages: [msg('edge-dlq', Buffer.from('to-the-dlq'))],
    });
    expect(sent.status.code).toBe('OK');
    const receive = (t: string, g: string) =>
      receiveAll(client, {
        group: topic(g),
        message_queue: { topic: topic(t), id: 0 },
        batch_size: 1,
        invisible_duration: { seconds: 1 },
        long_polling_timeout: { seconds: 1 },
        filter_expression: { type: 'TAG', expression: '*' },
      });
    const [head, got] = await receive('edge-dlq', 'edge-dlq-g');
    expect(head.status.code).toBe('OK');
    const m = got.message;
    expect(m.body.toString()).toBe('to-the-dlq');
    const forwarded: any = await call(client, 'ForwardMessageToDeadLetterQueue', {
      group: topic('edge-dlq-g'),
      topic: topic('edge-dlq'),
      receipt_handle: m.system_properties.receipt_handle,
      message_id: m.system_properties.message_id,
      delivery_attempt: m.system_properties.delivery_attempt,
      max_delivery_attempts: MAX_RECONSUME_TIMES,
    });
    expect(forwarded.status.code).toBe('OK');
    // Settled for the group: not offered again once its 1 s invisible time is over.
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await receive('edge-dlq', 'edge-dlq-g')).map((r) => r.status?.code)).toEqual([
      'MESSAGE_NOT_FOUND',
    ]);
    // And readable from the group's dead-letter topic (routable once the broker registers it).
    const dead = await waitFor('the message in %DLQ%edge-dlq-g', async () => {
      const r = await receive('%DLQ%edge-dlq-g', 'edge-dlq-reader');
      return r.find((x) => x.message)?.message;
    });
    expect(dead.body.toString()).toBe('to-the-dlq');
    expect(dead.system_properties.message_id).toBe(m.system_properties.message_id);
    const forged: any = await call(client, 'ForwardMessageToDeadLetterQueue', {
      group: topic('edge-dlq-g'),
      topic: topic('edge-dlq'),
      receipt_handle: 'garbage',
      message_id: 'm',
    });
    expect(forged.status.code).toBe('INVALID_RECEIPT_HANDLE');
  });

  it('Heartbeat answers OK for producers and consumers, with or without a Telemetry session', async () => {
    const producer: any = await call(client, 'Heartbeat', { client_type: 'PRODUCER' });
    expect(producer.status.code).toBe('OK');
    const consumer: any = await call(client, 'Heartbeat', {
      client_type: 'SIMPLE_CONSUMER',
      group: topic('edge-hb-g'),
    });
    expect(consumer.status.code).toBe('OK');
  });

  it('NotifyClientTermination: a terminated producer is no longer asked to resolve its transactions', async () => {
    const clientId = 'edge-tx-producer';
    const meta = () => md({ 'x-mq-client-id': clientId });
    const commands: any[] = [];
    const stream = client.Telemetry(meta());
    stream.on('data', (cmd) => commands.push(cmd));
    stream.on('error', () => undefined);
    try {
      stream.write({
        settings: { client_type: 'PRODUCER', publishing: { topics: [topic('edge-tx')] } },
      });
      await waitFor('the settings answer', () => commands.some((x) => x.settings));
      const sent: any = await call(
        client,
        'SendMessage',
        { messages: [msg('edge-tx', Buffer.from('undecided'), { message_type: 'TRANSACTION' })] },
        meta(),
      );
      expect(sent.status.code).toBe('OK');
      const transactionId = sent.entries[0].transaction_id;
      const checks = () =>
        commands.filter(
          (x) => x.recover_orphaned_transaction_command?.transaction_id === transactionId,
        ).length;
      // Left undecided, it is offered to its producer, again and again.
      await waitFor('two check-backs while the producer is connected', () => checks() >= 2);
      const done: any = await call(client, 'NotifyClientTermination', {}, meta());
      expect(done.status.code).toBe('OK');
      const before = checks();
      // Check-backs came about once a second (orphan poll 1 s, check interval 0.5 s);
      // twice that passes and nothing more is sent.
      await new Promise((r) => setTimeout(r, 2_000));
      expect(checks()).toBe(before);
      const rolledBack: any = await call(client, 'EndTransaction', {
        topic: topic('edge-tx'),
        message_id: sent.entries[0].message_id,
        transaction_id: transactionId,
        resolution: 'ROLLBACK',
        source: 'SOURCE_CLIENT',
      });
      expect(rolledBack.status.code).toBe('OK');
    } finally {
      stream.end();
    }
  });

  it('a receive cancelled after the gateway popped hands its message to the next receive, its delivery attempt not counted', async () => {
    const t = 'edge-cancel';
    const g = 'edge-cancel-g';
    const req = {
      group: topic(g),
      message_queue: { topic: topic(t), id: 0 },
      batch_size: 1,
      invisible_duration: { seconds: 60 },
      long_polling_timeout: { seconds: 5 },
      filter_expression: { type: 'TAG', expression: '*' },
    };
    const send = async (body: string): Promise<string> => {
      const sent: any = await call(client, 'SendMessage', {
        messages: [msg(t, Buffer.from(body))],
      });
      expect(sent.status.code).toBe('OK');
      return sent.entries[0].message_id;
    };
    const ack = async (m: any) => {
      const acked: any = await call(client, 'AckMessage', {
        group: topic(g),
        topic: topic(t),
        entries: [
          {
            message_id: m.system_properties.message_id,
            receipt_handle: m.system_properties.receipt_handle,
          },
        ],
      });
      expect(acked.status.code).toBe('OK');
    };
    // A first round trip: the gateway knows the topic's route before the broker freezes.
    await send('warm-up');
    await ack(
      await waitFor(
        'the warm-up message',
        async () => (await receiveAll(client, req)).find((r) => r.message)?.message,
      ),
    );
    const id = await send('popped-after-cancel');
    const cancelled = () =>
      gatewayCounter(c.http, 'sluice_gateway_grpc_requests_total', [
        'method="ReceiveMessage"',
        'code="cancelled"',
      ]);
    const before = await cancelled();
    // The broker is frozen, so the gateway's pop (sent as the receive starts,
    // never cancelled) is answered only after the client has gone.
    const pid = c.brokers[0]!.child.pid!;
    process.kill(pid, 'SIGSTOP');
    let frozen = true;
    try {
      const first = client.ReceiveMessage(req as never, md(), { deadline: Date.now() + 20_000 });
      const seen: unknown[] = [];
      first.on('data', (r) => seen.push(r));
      first.on('error', () => undefined);
      // Frames of one connection are handled in order: once a later call on it
      // is answered, the receive has reached its handler.
      const hb: any = await call(client, 'Heartbeat', { client_type: 'PRODUCER' });
      expect(hb.status.code).toBe('OK');
      first.cancel();
      await waitFor(
        'the gateway saw the receive cancelled',
        async () => (await cancelled()) > before,
      );
      process.kill(pid, 'SIGCONT');
      frozen = false;
      expect(seen).toEqual([]);
    } finally {
      if (frozen) process.kill(pid, 'SIGCONT');
    }
    // The cancelled receive's pop took the message.
    await waitFor('the message in flight for the group', async () => {
      const r = await fetch(`${c.http}/v1/groups/${g}/progress?topic=${t}`);
      const queues: { inFlight: number }[] = ((await r.json()) as any).queues ?? [];
      return queues.reduce((n, q) => n + q.inFlight, 0) === 1;
    });
    // Well within its 60 s invisible time, and as its first delivery.
    const startedAt = Date.now();
    const again = await receiveAll(client, req);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    expect(again[0]?.status.code).toBe('OK');
    const m = again.find((r) => r.message)?.message;
    expect(m?.system_properties.message_id).toBe(id);
    expect(m?.system_properties.delivery_attempt).toBe(1);
    await ack(m);
  });

  // Kills the cluster's only broker: keep this test last in the file.
  it("the gateway's health follows its readiness (REST /readyz): NOT_SERVING without a live broker", async () => {
    const Health = makeGenericClientConstructor(healthService, 'Health');
    const health = new Health(
      `127.0.0.1:${c.gateway!.grpcPort}`,
      credentials.createInsecure(),
    ) as Client & Record<string, any>;
    const both = async () => [
      await healthCheck(health, ''),
      await healthCheck(health, 'apache.rocketmq.v2.MessagingService'),
    ];
    const readyz = async () => (await fetch(`${c.http}/readyz`)).status;
    try {
      expect(await both()).toEqual(['SERVING', 'SERVING']);
      await c.brokers[0]!.kill('SIGKILL');
      await waitFor('gateway health NOT_SERVING', async () =>
        (await both()).every((s) => s === 'NOT_SERVING'),
      );
      expect(await readyz()).toBe(503);
      await c.brokers[0]!.restart();
      await waitFor(
        'gateway health SERVING again',
        async () => (await both()).every((s) => s === 'SERVING'),
        30_000,
      );
      expect(await readyz()).toBe(200);
    } finally {
      health.close();
    }
  });
});

describe('apache.rocketmq.v2 SendMessage on a SYNC_MASTER without a slave', () => {
  let c: Cluster;
  let client: MessagingServiceClient;
  beforeAll(async () => {
    // Stores every send, then answers SLAVE_NOT_AVAILABLE (HA_NOT_AVAILABLE): it has no slave.
    c = await startCluster({ brokers: [{ role: 'SYNC_MASTER' }], gateway: true });
    const Svc = messagingProto().grpc.apache.rocketmq.v2.MessagingService;
    client = new Svc(`127.0.0.1:${c.gateway!.grpcPort}`, credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await c?.close();
  });

  it('answers the status with the message id of the stored message, which is not sent again', async () => {
    const m = msg('edge-sync', Buffer.from('stored-once'));
    const sent: any = await call(client, 'SendMessage', { messages: [m] });
    expect(sent.entries).toHaveLength(1);
    expect(sent.entries[0]).toMatchObject({
      status: { code: 'HA_NOT_AVAILABLE' },
      message_id: m.system_properties.message_id,
    });
    expect(sent.status.code).toBe('HA_NOT_AVAILABLE');
    const receive = (waitSeconds: number) =>
      receiveAll(client, {
        group: topic('edge-sync-g'),
        message_queue: { topic: topic('edge-sync'), id: 0 },
        batch_size: 32,
        invisible_duration: { seconds: 60 },
        long_polling_timeout: { seconds: waitSeconds },
        filter_expression: { type: 'TAG', expression: '*' },
      });
    const got = (await receive(5)).filter((r) => r.message).map((r) => r.message);
    expect(got.map((x) => x.system_properties.message_id)).toEqual([
      m.system_properties.message_id,
    ]);
    // A resend (to the only broker there is) would be readable by now.
    expect((await receive(1)).map((r) => r.status?.code)).toEqual(['MESSAGE_NOT_FOUND']);
  });
});
