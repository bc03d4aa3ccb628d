/**
 * gRPC benchmark (`npm run bench:grpc`): the official rocketmq-client-nodejs
 * SDK (Producer, SimpleConsumer) through the gateway's apache.rocketmq.v2
 * service, beside the REST path on the same cluster in the same run, and a
 * batched SendMessage from a raw stub (what the protocol allows when a client
 * batches, which the Node SDK does not).
 *
 * Everything runs on this machine and shares its cores (clients, gateway,
 * broker, name server): quote ratios, not absolutes. BENCH_SECONDS sets the
 * length of each phase (default 8, after an unmeasured warm-up of both
 * paths); BENCH_INFLIGHT the concurrent sends (default 64); receives run 4
 * loops of 32.
 *
 * The official Node.js SDK sends one message per SendMessage and acks one
 * message per AckMessage; REST batches acks, so its receive + ack moves more
 * per round trip. The raw stub row shows the same gateway with batched sends.
 */
import { Agent, request } from 'node:http';
import { credentials, Metadata } from '@grpc/grpc-js';
import { Producer, SimpleConsumer } from 'rocketmq-client-nodejs';
import { messagingProto } from '../gateway/grpc/messaging-proto.js';
import { startCluster } from '../test/harness/cluster.js';
import { BENCH_BROKER_CONFIG } from './broker-config.js';
import { load } from './load-loop.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARMUP_SECONDS = Math.min(3, SECONDS);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 64);
const RECEIVE_LOOPS = 4;
const RECEIVE_BATCH = 32;
const BODY_BYTES = 1024;
const FILL = Number(process.env.BENCH_FILL ?? 120_000);
const body = Buffer.alloc(BODY_BYTES, 'x');

interface Row {
  path: string;
  what: string;
  rate: number;
  p50?: number;
  p99?: number;
  /** Operations that failed during the measured phase. */
  errors: number;
}
const rows: Row[] = [];
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number | undefined) => (n === undefined ? '' : `${n.toFixed(2)} ms`);

function record(r: Row): void {
  rows.push(r);
  const lat = r.p50 !== undefined ? `  p50 ${ms(r.p50)}  p99 ${ms(r.p99)}` : '';
  process.stdout.write(
    `  ${r.path.padEnd(22)} ${r.what.padEnd(34)} ${fmt(r.rate).padStart(9)} msgs/s${lat}  errors ${r.errors}\n`,
  );
}

const agent = new Agent({ keepAlive: true, maxSockets: 128 });
function post(base: string, path: string, payload: unknown): Promise<any> {
  const data = Buffer.from(JSON.stringify(payload));
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': data.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if ((res.statusCode ?? 500) >= 300)
            reject(new Error(`${res.statusCode} ${text.slice(0, 200)}`));
          else resolve(JSON.parse(text));
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function fill(http: string, topic: string, count: number): Promise<void> {
  const batch = { messages: Array.from({ length: 100 }, () => ({ body: body.toString() })) };
  let sent = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (sent < count) {
        sent += 100;
        await post(http, `/v1/topics/${topic}/messages`, batch);
      }
    }),
  );
}

const silent = { info() {}, debug() {}, warn() {}, error() {}, close() {} };

async function main(): Promise<void> {
  process.stdout.write(`Sluice gRPC benchmark: ${BODY_BYTES} B bodies, ${SECONDS} s per phase\n`);
  const c = await startCluster({ brokers: [{ config: BENCH_BROKER_CONFIG }], gateway: true });
  const endpoints = `127.0.0.1:${c.gateway!.grpcPort}`;
  try {
    // ---------------- produce ----------------
    const producer = new Producer({
      endpoints,
      namespace: '',
      topic: 'bench-sdk',
      logger: silent as never,
    });
    await producer.startup();
    // Warm-up (unmeasured): JIT the gateway's gRPC and REST paths alike, so the order of phases does not favour one.
    await post(c.http, '/v1/topics/bench-rest/messages', { body: 'warm-up' });
    await load(INFLIGHT, WARMUP_SECONDS, async () => {
      await producer.send({ topic: 'bench-sdk', body });
      return 1;
    });
    await load(INFLIGHT, WARMUP_SECONDS, async () => {
      await post(c.http, '/v1/topics/bench-rest/messages', { body: body.toString() });
      return 1;
    });
    const sdkSend = await load(INFLIGHT, SECONDS, async () => {
      await producer.send({ topic: 'bench-sdk', body });
      return 1;
    });
    record({ path: 'gRPC (official SDK)', what: `send, ${INFLIGHT} in flight`, ...sdkSend });

    const sdkSendOne = await load(1, Math.min(SECONDS, 4), async () => {
      await producer.send({ topic: 'bench-sdk', body });
      return 1;
    });
    record({ path: 'gRPC (official SDK)', what: 'send, 1 in flight (latency)', ...sdkSendOne });

    const restSend = await load(INFLIGHT, SECONDS, async () => {
      await post(c.http, '/v1/topics/bench-rest/messages', { body: body.toString() });
      return 1;
    });
    record({ path: 'REST', what: `send, ${INFLIGHT} in flight`, ...restSend });

    const Svc = messagingProto().grpc.apache.rocketmq.v2.MessagingService;
    const stub = new Svc(endpoints, credentials.createInsecure());
    const batch = {
      messages: Array.from({ length: RECEIVE_BATCH }, (_, i) => ({
        topic: { name: 'bench-raw' },
        body,
        system_properties: { message_id: `RAW-${i}`, message_type: 'NORMAL' as const },
      })),
    };
    const rawSend = await load(8, SECONDS, async () => {
      await new Promise<void>((resolve, reject) =>
        stub.SendMessage(batch, new Metadata(), (err, res) =>
          err || res?.status?.code !== 'OK'
            ? reject(err ?? new Error(String(res?.status?.message)))
            : resolve(),
        ),
      );
      return RECEIVE_BATCH;
    });
    record({
      path: 'gRPC (raw stub)',
      what: `send, ${RECEIVE_BATCH}/request, 8 in flight`,
      ...rawSend,
    });
    stub.close();
    await producer.shutdown();

    // ---------------- consume ----------------
    await Promise.all([fill(c.http, 'bench-sdk-c', FILL), fill(c.http, 'bench-rest-c', FILL)]);
    const consumer = new SimpleConsumer({
      endpoints,
      namespace: '',
      consumerGroup: 'bench-sdk-g',
      subscriptions: new Map([['bench-sdk-c', '*']]),
      awaitDuration: 1_000,
      logger: silent as never,
    });
    await consumer.startup();
    const sdkRecv = await load(RECEIVE_LOOPS, SECONDS, async () => {
      const msgs = await consumer.receive(RECEIVE_BATCH, 30_000);
      await Promise.all(msgs.map((m) => consumer.ack(m)));
      return msgs.length;
    });
    record({
      path: 'gRPC (official SDK)',
      what: `receive ${RECEIVE_BATCH} + ack each, ${RECEIVE_LOOPS} loops`,
      ...sdkRecv,
    });
    await consumer.shutdown();

    const restRecv = await load(RECEIVE_LOOPS, SECONDS, async () => {
      const got = await post(c.http, '/v1/topics/bench-rest-c/groups/bench-rest-g/receive', {
        max: RECEIVE_BATCH,
        waitSeconds: 1,
        invisibleSeconds: 30,
      });
      const handles = got.messages.map((m: { receiptHandle: string }) => m.receiptHandle);
      if (handles.length > 0)
        await post(c.http, '/v1/topics/bench-rest-c/groups/bench-rest-g/ack', {
          receiptHandles: handles,
        });
      return handles.length;
    });
    record({
      path: 'REST',
      what: `receive ${RECEIVE_BATCH} + ack batch, ${RECEIVE_LOOPS} loops`,
      ...restRecv,
    });

    // ---------------- summary ----------------
    process.stdout.write(
      '\n| path | operation | msgs/s | p50 | p99 | errors |\n|---|---|---:|---:|---:|---:|\n',
    );
    for (const r of rows) {
      process.stdout.write(
        `| ${r.path} | ${r.what} | ${fmt(r.rate)} | ${ms(r.p50)} | ${ms(r.p99)} | ${r.errors} |\n`,
      );
    }
    process.stdout.write(
      `\nSDK send / REST send: ${(sdkSend.rate / restSend.rate).toFixed(2)}×; ` +
        `SDK receive+ack / REST receive+ack: ${(sdkRecv.rate / restRecv.rate).toFixed(2)}×\n`,
    );
  } finally {
    agent.destroy();
    await c.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
