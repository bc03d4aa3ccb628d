/**
 * One trace per message across real processes: a message sent over REST
 * with a W3C traceparent, received and acked over REST, yields spans of
 * the gateway send, the broker store, the gateway receive and the ack in
 * the producer's trace, exported over OTLP/HTTP (JSON) to a test receiver,
 * with the messaging semantic-convention attributes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api } from '../gateway/helpers.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './otlp-receiver.js';

const OTEL_VARS = [
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_BSP_SCHEDULE_DELAY',
] as const;
const saved = Object.fromEntries(OTEL_VARS.map((k) => [k, process.env[k]]));

let receiver: OtlpReceiver;
let c: Cluster;
let a: ReturnType<typeof api>;

const PRODUCER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PRODUCER_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${PRODUCER_TRACE}-${PRODUCER_SPAN}-01`;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  // Children inherit the environment: every process exports to the receiver.
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
  process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
  try {
    c = await startCluster({ brokers: [{}], gateway: true });
  } finally {
    for (const k of OTEL_VARS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
  a = api(c.http);
  await waitFor('gateway ready', async () => (await a.get('/readyz')).status === 200);
  expect((await a.put('/v1/topics/traced', { readQueueNums: 1, writeQueueNums: 1 })).status).toBe(
    200,
  );
});

afterAll(async () => {
  await c?.close();
  await receiver?.close();
});

function only(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((s) => s.name === name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0]!;
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

    const trace = await waitFor('four spans of the trace', () => {
      const spans = receiver.spans.filter((s) => s.traceId === PRODUCER_TRACE);
      const names = new Set(spans.map((s) => s.name));
      return ['send traced', 'store traced', 'receive traced', 'ack traced'].every((n) =>
        names.has(n),
      )
        ? spans
        : undefined;
    });
    expect(receiver.rejected).toEqual([]);

    const send = only(trace, 'send traced');
    const store = only(trace, 'store traced');
    const receive = only(trace, 'receive traced');
    const ack = only(trace, 'ack traced');

    expect(send).toMatchObject({ service: 'sluice-gateway', kind: 4, parentSpanId: PRODUCER_SPAN });
    expect(send.attributes).toMatchObject({
      'messaging.system': 'rocketmq',
      'messaging.destination.name': 'traced',
      'messaging.operation.type': 'send',
      'messaging.message.id': messageId,
      'messaging.rocketmq.message.tag': 'TagA',
      'messaging.rocketmq.message.keys': ['order-1'],
    });
    expect(m.traceparent).toContain(send.spanId);

    expect(store).toMatchObject({ service: 'sluice-broker', kind: 2, parentSpanId: send.spanId });
    expect(store.attributes).toMatchObject({
      'messaging.system': 'rocketmq',
      'messaging.destination.name': 'traced',
      'messaging.operation.name': 'store',
      'messaging.message.id': messageId,
      'messaging.rocketmq.message.tag': 'TagA',
    });

    expect(receive).toMatchObject({
      service: 'sluice-gateway',
      kind: 5,
      parentSpanId: send.spanId,
    });
    expect(receive.attributes).toMatchObject({
      'messaging.system': 'rocketmq',
      'messaging.destination.name': 'traced',
      'messaging.operation.type': 'receive',
      'messaging.consumer.group.name': 'g-trace',
      'messaging.message.id': messageId,
      'messaging.rocketmq.message.tag': 'TagA',
      'messaging.rocketmq.message.keys': ['order-1'],
    });

    expect(ack).toMatchObject({ service: 'sluice-gateway', kind: 3, parentSpanId: send.spanId });
    expect(ack.attributes).toMatchObject({
      'messaging.system': 'rocketmq',
      'messaging.destination.name': 'traced',
      'messaging.operation.type': 'settle',
      'messaging.operation.name': 'ack',
      'messaging.consumer.group.name': 'g-trace',
    });
    expect(ack.status.code ?? 0).not.toBe(2);

    for (const s of trace) {
      expect(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano)).toBe(true);
    }
  });

  it('hands a traceparent sent without tracing context back untouched when none is given', async () => {
    const sent = await a.post('/v1/topics/traced/messages', { body: 'no context' });
    expect(sent.status, sent.text).toBe(200);
    const got = await a.post('/v1/topics/traced/groups/g-root/receive', {
      max: 16,
      waitSeconds: 5,
    });
    const m = got.json.messages.find((x: any) => x.messageId === sent.json.results[0].messageId);
    expect(m).toBeDefined();
    // The gateway's send span is a new root: its context is what the consumer gets.
    expect(m.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(m.traceparent).not.toContain(PRODUCER_TRACE);
  });
});
