/**
 * One trace per message across real processes, exported over OTLP/HTTP
 * (JSON, by the official OpenTelemetry exporter) to a test receiver, with
 * the messaging semantic-convention attributes:
 *
 *  - REST send (with a W3C traceparent) → broker store → REST receive and
 *    ack, the store span showing its write, flush and replication waits
 *    (SYNC_FLUSH on a SYNC_MASTER with a slave);
 *  - REST send → the official RocketMQ SDK receives and acks over gRPC (it
 *    sends no trace context: the ack joins through the gateway's memory of
 *    the delivery);
 *  - the SDK sends over gRPC (a new trace starts at the gateway's send span)
 *    → REST receive, and the ack carries the delivered traceparent back;
 *  - gRPC metadata traceparent / tracestate and the protocol's
 *    trace_context field as parents; gRPC change-invisible and dead-letter
 *    without context join the delivered message's trace (also through the
 *    renewed receipt handle); a commit (SDK over gRPC, or REST without a
 *    traceparent) joins the transactional send's trace.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import type { TransactionChecker } from 'rocketmq-client-nodejs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessagingServiceClient } from '../../common/generated/apache/rocketmq/v2/MessagingService.js';
import { messagingProto } from '../../gateway/grpc/messaging-proto.js';
import { api } from '../gateway/helpers.js';
import { receiveN, SdkClients } from '../grpc/sdk-helpers.js';
import { brokerStats } from '../harness/clients.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './otlp-receiver.js';

const OTEL_VARS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_BSP_SCHEDULE_DELAY'] as const;
const saved = Object.fromEntries(OTEL_VARS.map((k) => [k, process.env[k]]));

let receiver: OtlpReceiver;
let c: Cluster;
let a: ReturnType<typeof api>;
let sdk: SdkClients;
let grpc: MessagingServiceClient;

const PRODUCER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PRODUCER_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${PRODUCER_TRACE}-${PRODUCER_SPAN}-01`;

const BROKER_CONFIG = {
  flushDiskType: 'SYNC_FLUSH',
  brokerNotActiveTimeoutMillis: 3_000,
  registerBrokerInterval: 500,
  haSyncMetadataInterval: 200,
};

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  // Children inherit the environment: every process exports to the receiver.
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
  try {
    c = await startCluster({
      brokers: [
        { name: 'broker-a', id: 0, role: 'SYNC_MASTER', config: BROKER_CONFIG },
        { name: 'broker-a', id: 1, role: 'SLAVE', config: BROKER_CONFIG },
      ],
      gateway: true,
    });
  } finally {
    for (const k of OTEL_VARS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
  a = api(c.http);
  sdk = new SdkClients(c);
  const Svc = messagingProto().grpc.apache.rocketmq.v2.MessagingService;
  grpc = new Svc(`127.0.0.1:${c.gateway!.grpcPort}`, credentials.createInsecure());
  await waitFor('slave in sync', async () =>
    (await brokerStats(c.brokers[0]!.addr)).haInSyncSlaves === '1' ? true : undefined,
  );
  await waitFor('gateway ready', async () => (await a.get('/readyz')).status === 200);
  for (const t of [
    'traced',
    'rest-to-sdk',
    'sdk-to-rest',
    'grpc-md',
    'traced-tx',
    'grpc-settle',
    'rest-tx',
  ]) {
    expect((await a.put(`/v1/topics/${t}`, { readQueueNums: 1, writeQueueNums: 1 })).status).toBe(
      200,
    );
  }
});

afterAll(async () => {
  grpc?.close();
  await sdk?.shutdownAll();
  await c?.close();
  await receiver?.close();
});

function only(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((s) => s.name === name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0]!;
}

/** The spans of `traceId` once every name in `names` arrived. */
function traceWith(traceId: string, names: string[]): Promise<ReceivedSpan[]> {
  return waitFor(`spans ${names.join(', ')} of trace ${traceId}`, () => {
    const spans = receiver.spans.filter((s) => s.traceId === traceId);
    const have = new Set(spans.map((s) => s.name));
    return names.every((n) => have.has(n)) ? spans : undefined;
  });
}

function traceIdOf(traceparent: string): string {
  return traceparent.split('-')[1]!;
}

function spanIdOf(traceparent: string): string {
  return traceparent.split('-')[2]!;
}

const messaging = (topic: string, operationType: string) => ({
  'messaging.system': 'rocketmq',
  'messaging.destination.name': topic,
  'messaging.operation.type': operationType,
});

function grpcCall<T>(method: string, req: unknown, meta: Metadata): Promise<T> {
  return new Promise((resolve, reject) => {
    (grpc as any)[method](
      req,
      meta,
      { deadline: Date.now() + 20_000 },
      (err: ServiceError | null, res: T) => (err ? reject(err) : resolve(res)),
    );
  });
}

describe('tracing', () => {
  it('follows a message from REST send through broker store to REST receive and ack in one trace', async () => {
    const sent = await a.post(
      '/v1/topics/traced/messages',
      { body: 'hello', tag: 'TagA', keys: ['order-1'] },
      { traceparent: TRACEPARENT, tracestate: 'vendor=x' },
    );
    expect(sent.status, sent.text).toBe(200);
    const messageId: string = sent.json.results[0].messageId;

    const got = await a.post('/v1/topics/traced/groups/g-trace/receive', {
      max: 1,
      waitSeconds: 5,
    });
    expect(got.status, got.text).toBe(200);
    expect(got.json.messages).toHaveLength(1);
    const m = got.json.messages[0];
    expect(m.messageId).toBe(messageId);
    // The stored context is the gateway's send span, in the producer's trace.
    expect(m.traceparent).toMatch(new RegExp(`^00-${PRODUCER_TRACE}-[0-9a-f]{16}-01$`));
    expect(m.traceparent).not.toContain(PRODUCER_SPAN);
    expect(m.tracestate).toBe('vendor=x');
    expect(m.properties).not.toHaveProperty('traceparent');
    expect(got.headers.get('traceparent')).toBe(m.traceparent);

    const acked = await a.post(
      '/v1/topics/traced/groups/g-trace/ack',
      { receiptHandles: [m.receiptHandle] },
      { traceparent: m.traceparent },
    );
    expect(acked.status, acked.text).toBe(200);

    const trace = await traceWith(PRODUCER_TRACE, [
      'send traced',
      'store traced',
      'receive traced',
      'ack traced',
    ]);
    expect(receiver.rejected).toEqual([]);

    const send = only(trace, 'send traced');
    const store = only(trace, 'store traced');
    const receive = only(trace, 'receive traced');
    const ack = only(trace, 'ack traced');

    expect(send).toMatchObject({ service: 'sluice-gateway', kind: 4, parentSpanId: PRODUCER_SPAN });
    expect(send.attributes).toMatchObject({
      ...messaging('traced', 'send'),
      'messaging.message.id': messageId,
      'messaging.rocketmq.message.tag': 'TagA',
      'messaging.rocketmq.message.keys': ['order-1'],
    });
    expect(m.traceparent).toContain(send.spanId);

    expect(store).toMatchObject({ service: 'sluice-broker', kind: 2, parentSpanId: send.spanId });
    expect(store.attributes).toMatchObject({
      ...messaging('traced', 'send'),
      'messaging.operation.name': 'store',
      'messaging.message.id': messageId,
      'messaging.rocketmq.message.tag': 'TagA',
      'messaging.rocketmq.broker.name': 'broker-a',
    });
    // Where the store's time went: written, then the fdatasync, then the slave's ack.
    expect(store.events.map((e) => e.name)).toEqual([
      'commitlog.written',
      'commitlog.flushed',
      'replica.acked',
    ]);
    const times = store.events.map((e) => BigInt(e.timeUnixNano));
    expect(times[0]! >= BigInt(store.startTimeUnixNano)).toBe(true);
    expect(times[1]! >= times[0]! && times[2]! >= times[1]!).toBe(true);
    expect(BigInt(store.endTimeUnixNano) >= times[2]!).toBe(true);

    expect(receive).toMatchObject({
      service: 'sluice-gateway',
      kind: 5,
      parentSpanId: send.spanId,
    });
    expect(receive.attributes).toMatchObject({
      ...messaging('traced', 'receive'),
      'messaging.consumer.group.name': 'g-trace',
      'messaging.message.id': messageId,
      'messaging.rocketmq.message.tag': 'TagA',
      'messaging.rocketmq.message.keys': ['order-1'],
    });

    expect(ack).toMatchObject({ service: 'sluice-gateway', kind: 3, parentSpanId: send.spanId });
    expect(ack.attributes).toMatchObject({
      ...messaging('traced', 'settle'),
      'messaging.operation.name': 'ack',
      'messaging.consumer.group.name': 'g-trace',
    });
    expect(ack.status.code ?? 0).not.toBe(2);

    for (const s of trace) {
      expect(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano)).toBe(true);
    }
  });

  it('a send without trace context starts a new trace at the gateway', async () => {
    const sent = await a.post('/v1/topics/traced/messages', { body: 'no context' });
    expect(sent.status, sent.text).toBe(200);
    const got = await a.post('/v1/topics/traced/groups/g-root/receive', {
      max: 16,
      waitSeconds: 5,
    });
    const m = got.json.messages.find((x: any) => x.messageId === sent.json.results[0].messageId);
    expect(m).toBeDefined();
    expect(m.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(m.traceparent).not.toContain(PRODUCER_TRACE);
    const [send] = (await traceWith(traceIdOf(m.traceparent), ['send traced'])).filter(
      (s) => s.name === 'send traced',
    );
    expect(send!.parentSpanId ?? '').toBe('');
    expect(send!.spanId).toBe(spanIdOf(m.traceparent));
  });

  it('REST send → official SDK receive and ack over gRPC: one trace, the ack joining without context', async () => {
    const trace2 = 'aaf92f3577b34da6a3ce929d0e0e4700';
    const sent = await a.post(
      '/v1/topics/rest-to-sdk/messages',
      { body: 'to the sdk', tag: 'TagS', keys: ['k-sdk'] },
      { traceparent: `00-${trace2}-${PRODUCER_SPAN}-01` },
    );
    expect(sent.status, sent.text).toBe(200);
    const messageId: string = sent.json.results[0].messageId;
    const consumer = await sdk.consumer('g-rest-to-sdk', { 'rest-to-sdk': '*' });
    const [m] = await receiveN(consumer, 1);
    expect(m?.messageId).toBe(messageId);
    await consumer.ack(m!);

    const trace = await traceWith(trace2, [
      'send rest-to-sdk',
      'store rest-to-sdk',
      'receive rest-to-sdk',
      'ack rest-to-sdk',
    ]);
    const send = only(trace, 'send rest-to-sdk');
    expect(send.parentSpanId).toBe(PRODUCER_SPAN);
    expect(only(trace, 'store rest-to-sdk').parentSpanId).toBe(send.spanId);
    const receive = only(trace, 'receive rest-to-sdk');
    expect(receive).toMatchObject({ kind: 5, parentSpanId: send.spanId });
    expect(receive.attributes).toMatchObject({
      ...messaging('rest-to-sdk', 'receive'),
      'messaging.consumer.group.name': 'g-rest-to-sdk',
      'messaging.message.id': messageId,
      'messaging.rocketmq.message.tag': 'TagS',
      'messaging.rocketmq.message.keys': ['k-sdk'],
      'messaging.rocketmq.message.delivery_attempt': 1,
    });
    const ack = only(trace, 'ack rest-to-sdk');
    expect(ack).toMatchObject({ kind: 3, parentSpanId: send.spanId });
    expect(ack.attributes).toMatchObject({
      ...messaging('rest-to-sdk', 'settle'),
      'messaging.operation.name': 'ack',
      'messaging.consumer.group.name': 'g-rest-to-sdk',
    });
    expect(ack.status.code ?? 0).not.toBe(2);
  });

  it('official SDK send over gRPC → REST receive and ack: the trace starts at the gateway send span', async () => {
    const producer = await sdk.producer({ topic: 'sdk-to-rest' });
    const receipt = await producer.send({
      topic: 'sdk-to-rest',
      tag: 'TagR',
      keys: ['k-rest'],
      body: Buffer.from('from the sdk'),
    });
    const got = await a.post('/v1/topics/sdk-to-rest/groups/g-sdk-to-rest/receive', {
      max: 1,
      waitSeconds: 5,
    });
    expect(got.status, got.text).toBe(200);
    const m = got.json.messages[0];
    expect(m.messageId).toBe(receipt.messageId);
    expect(m.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const acked = await a.post(
      '/v1/topics/sdk-to-rest/groups/g-sdk-to-rest/ack',
      { receiptHandles: [m.receiptHandle] },
      { traceparent: m.traceparent },
    );
    expect(acked.status, acked.text).toBe(200);

    const trace = await traceWith(traceIdOf(m.traceparent), [
      'send sdk-to-rest',
      'store sdk-to-rest',
      'receive sdk-to-rest',
      'ack sdk-to-rest',
    ]);
    const send = only(trace, 'send sdk-to-rest');
    // The SDK sent no context: the gateway's send span is the root.
    expect(send.parentSpanId ?? '').toBe('');
    expect(send.spanId).toBe(spanIdOf(m.traceparent));
    expect(send).toMatchObject({ service: 'sluice-gateway', kind: 4 });
    expect(send.attributes).toMatchObject({
      ...messaging('sdk-to-rest', 'send'),
      'messaging.message.id': receipt.messageId,
      'messaging.rocketmq.message.tag': 'TagR',
      'messaging.rocketmq.message.keys': ['k-rest'],
    });
    const store = only(trace, 'store sdk-to-rest');
    expect(store).toMatchObject({ service: 'sluice-broker', kind: 2, parentSpanId: send.spanId });
    expect(store.attributes).toMatchObject({ 'messaging.message.id': receipt.messageId });
    expect(only(trace, 'receive sdk-to-rest').parentSpanId).toBe(send.spanId);
    expect(only(trace, 'ack sdk-to-rest').parentSpanId).toBe(send.spanId);
  });

  it('gRPC: trace_context, else traceparent/tracestate metadata, is the send span parent', async () => {
    const fromMd = 'bbf92f3577b34da6a3ce929d0e0e4701';
    const fromField = 'ccf92f3577b34da6a3ce929d0e0e4702';
    const meta = new Metadata();
    meta.set('x-mq-client-id', 'trace-client');
    meta.set('traceparent', `00-${fromMd}-${PRODUCER_SPAN}-01`);
    meta.set('tracestate', 'vendor=md');
    const message = (body: string, sp: Record<string, unknown> = {}) => ({
      topic: { name: 'grpc-md', resource_namespace: '' },
      body: Buffer.from(body),
      system_properties: { message_id: `ID-${body}`, message_type: 'NORMAL', ...sp },
    });
    const res: any = await grpcCall(
      'SendMessage',
      {
        messages: [
          message('md'),
          message('field', { trace_context: `00-${fromField}-${PRODUCER_SPAN}-01` }),
        ],
      },
      meta,
    );
    expect(res.status.code).toBe('OK');
    const got = await a.post('/v1/topics/grpc-md/groups/g-md/receive', {
      max: 2,
      waitSeconds: 5,
    });
    const byBody = new Map<string, any>(got.json.messages.map((x: any) => [x.body, x]));
    expect(byBody.size).toBe(2);
    expect(byBody.get('md').traceparent).toMatch(new RegExp(`^00-${fromMd}-`));
    expect(byBody.get('md').tracestate).toBe('vendor=md');
    expect(byBody.get('field').traceparent).toMatch(new RegExp(`^00-${fromField}-`));
    // tracestate belongs to the metadata's traceparent, not to the field's.
    expect(byBody.get('field').tracestate ?? '').toBe('');
    const mdSend = only(await traceWith(fromMd, ['send grpc-md']), 'send grpc-md');
    expect(mdSend.parentSpanId).toBe(PRODUCER_SPAN);
    expect(byBody.get('md').traceparent).toContain(mdSend.spanId);
    const fieldSend = only(await traceWith(fromField, ['send grpc-md']), 'send grpc-md');
    expect(fieldSend.parentSpanId).toBe(PRODUCER_SPAN);
  });

  it('gRPC change-invisible then dead-letter, without context, join the message trace (the renewed handle too)', async () => {
    const traceId = 'ddf92f3577b34da6a3ce929d0e0e4703';
    const sent = await a.post(
      '/v1/topics/grpc-settle/messages',
      { body: 'settle me' },
      { traceparent: `00-${traceId}-${PRODUCER_SPAN}-01` },
    );
    expect(sent.status, sent.text).toBe(200);
    const meta = new Metadata();
    meta.set('x-mq-client-id', 'settle-client');
    const res: any[] = [];
    for await (const r of grpc.ReceiveMessage(
      {
        group: { name: 'g-grpc-settle', resource_namespace: '' },
        message_queue: { topic: { name: 'grpc-settle', resource_namespace: '' }, id: 0 },
        batch_size: 1,
        invisible_duration: { seconds: 30 },
        long_polling_timeout: { seconds: 5 },
        filter_expression: { type: 'TAG', expression: '*' },
      } as never,
      meta,
      { deadline: Date.now() + 20_000 },
    ))
      res.push(r);
    const m = res.find((r) => r.content === 'message')?.message;
    expect(m?.system_properties.message_id).toBe(sent.json.results[0].messageId);
    // The producer's context rides in trace_context.
    expect(m.system_properties.trace_context).toMatch(new RegExp(`^00-${traceId}-`));
    const changed: any = await grpcCall(
      'ChangeInvisibleDuration',
      {
        group: { name: 'g-grpc-settle', resource_namespace: '' },
        topic: { name: 'grpc-settle', resource_namespace: '' },
        receipt_handle: m.system_properties.receipt_handle,
        invisible_duration: { seconds: 30 },
        message_id: m.system_properties.message_id,
      },
      meta,
    );
    expect(changed.status.code).toBe('OK');
    const forwarded: any = await grpcCall(
      'ForwardMessageToDeadLetterQueue',
      {
        group: { name: 'g-grpc-settle', resource_namespace: '' },
        topic: { name: 'grpc-settle', resource_namespace: '' },
        receipt_handle: changed.receipt_handle,
        message_id: m.system_properties.message_id,
        delivery_attempt: 1,
        max_delivery_attempts: 16,
      },
      meta,
    );
    expect(forwarded.status.code).toBe('OK');
    const trace = await traceWith(traceId, [
      'send grpc-settle',
      'receive grpc-settle',
      'change_invisible grpc-settle',
      'dead_letter grpc-settle',
    ]);
    const send = only(trace, 'send grpc-settle');
    expect(only(trace, 'receive grpc-settle').parentSpanId).toBe(send.spanId);
    for (const [name, op] of [
      ['change_invisible grpc-settle', 'change_invisible'],
      ['dead_letter grpc-settle', 'dead_letter'],
    ] as const) {
      const s = only(trace, name);
      expect(s).toMatchObject({ kind: 3, parentSpanId: send.spanId });
      expect(s.attributes).toMatchObject({
        ...messaging('grpc-settle', 'settle'),
        'messaging.operation.name': op,
        'messaging.consumer.group.name': 'g-grpc-settle',
      });
    }
  });

  it('REST commit: child of the request traceparent, else of the transactional send span', async () => {
    const send = async (body: string) => {
      const r = await a.post('/v1/topics/rest-tx/messages', { body, transactional: true });
      expect(r.status, r.text).toBe(200);
      return r.json.results[0];
    };
    const plain = await send('tx-plain');
    const withCtx = await send('tx-ctx');
    const commit = (r: any, headers: Record<string, string> = {}) =>
      a.post(
        `/v1/transactions/${r.transactionId}/commit`,
        { topic: 'rest-tx', messageId: r.messageId },
        headers,
      );
    expect((await commit(plain)).status).toBe(200);
    const ctxTrace = 'eef92f3577b34da6a3ce929d0e0e4704';
    expect(
      (await commit(withCtx, { traceparent: `00-${ctxTrace}-${PRODUCER_SPAN}-01` })).status,
    ).toBe(200);
    const sendSpan = await waitFor('the transactional send span', () =>
      receiver.spans.find(
        (s) =>
          s.name === 'send rest-tx' && s.attributes['messaging.message.id'] === plain.messageId,
      ),
    );
    const joined = only(await traceWith(sendSpan.traceId, ['commit rest-tx']), 'commit rest-tx');
    expect(joined.parentSpanId).toBe(sendSpan.spanId);
    expect(joined.attributes).toMatchObject({
      'messaging.operation.name': 'commit',
      'messaging.message.id': plain.messageId,
      'messaging.rocketmq.transaction.id': plain.transactionId,
    });
    const fromHeader = only(await traceWith(ctxTrace, ['commit rest-tx']), 'commit rest-tx');
    expect(fromHeader.parentSpanId).toBe(PRODUCER_SPAN);
  });

  it('an SDK transaction commit joins the transactional send span trace', async () => {
    const checker: TransactionChecker = { check: async () => null as never };
    const producer = await sdk.producer({ topic: 'traced-tx', checker });
    const tx = producer.beginTransaction();
    const receipt = await producer.send({ topic: 'traced-tx', body: Buffer.from('tx') }, tx);
    await tx.commit();
    const send = await waitFor('the transactional send span', () =>
      receiver.spans.find(
        (s) =>
          s.name === 'send traced-tx' && s.attributes['messaging.message.id'] === receipt.messageId,
      ),
    );
    const trace = await traceWith(send.traceId, ['send traced-tx', 'commit traced-tx']);
    const commit = only(trace, 'commit traced-tx');
    expect(commit).toMatchObject({ service: 'sluice-gateway', kind: 3, parentSpanId: send.spanId });
    expect(commit.attributes).toMatchObject({
      ...messaging('traced-tx', 'settle'),
      'messaging.operation.name': 'commit',
      'messaging.message.id': receipt.messageId,
      'messaging.rocketmq.transaction.id': receipt.transactionId,
    });
  });
});
