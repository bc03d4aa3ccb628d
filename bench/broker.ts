/**
 * Broker benchmark (`npx tsx bench/broker.ts`, `npm run bench:broker`).
 *
 * Starts a real name server and broker (ASYNC_FLUSH) as child processes and
 * measures through the internal gRPC API:
 *   1. send: 128 × 1 KiB per call, SEND_IN_FLIGHT calls in flight;
 *   2. pop + ack: batches of 32, POP_CONSUMERS consumers;
 *   3. timers: TIMERS messages due within one window (default one minute),
 *      each delivery's lateness = receive time - due time (early = negative).
 * Beside each figure it prints the grpc-js ceiling measured in the same run: the
 * same calls with the same payloads against an echo server in another process
 * that answers without storing anything.
 *
 * Environment knobs: BENCH_SEND_MESSAGES, BENCH_POP_MESSAGES, BENCH_TIMERS,
 * BENCH_TIMER_WINDOW_MS, BENCH_SEND_IN_FLIGHT, BENCH_POP_CONSUMERS, BENCH_BROKER_ADDR (use
 * a running broker instead of starting one).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import type { BrokerClient } from '../common/generated/sluice/v1/Broker.js';
import type { BrokerStatus__Output } from '../common/generated/sluice/v1/BrokerStatus.js';
import type { Empty } from '../common/generated/sluice/v1/Empty.js';
import type { PopMessagesRequest } from '../common/generated/sluice/v1/PopMessagesRequest.js';
import type { PopMessagesResponse__Output } from '../common/generated/sluice/v1/PopMessagesResponse.js';
import type { SendMessagesRequest } from '../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse__Output } from '../common/generated/sluice/v1/SendMessagesResponse.js';
import type { StoredMessage } from '../common/generated/sluice/v1/StoredMessage.js';
import { callUnary, GRPC_CHANNEL_OPTIONS } from '../common/grpc.js';
import { sluiceProto } from '../common/proto.js';
import { brokerClient } from '../test/harness/clients.js';
import { startCluster } from '../test/harness/cluster.js';

const env = (k: string, d: number) => Number(process.env[k] ?? d);
const SEND_BATCH = 128;
const POP_BATCH = 32;
const BODY_BYTES = 1024;
const SEND_MESSAGES = env('BENCH_SEND_MESSAGES', 640_000);
const POP_MESSAGES = env('BENCH_POP_MESSAGES', 320_000);
const TIMERS = env('BENCH_TIMERS', 100_000);
const TIMER_WINDOW_MS = env('BENCH_TIMER_WINDOW_MS', 60_000);
const SEND_IN_FLIGHT = env('BENCH_SEND_IN_FLIGHT', 8);
const POP_CONSUMERS = env('BENCH_POP_CONSUMERS', 8);
const TOPIC = 'bench_broker';
const QUEUES = 8;

interface Figure {
  name: string;
  messages: number;
  ms: number;
  latencies: number[];
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function rate(f: Figure): number {
  return (f.messages * 1000) / f.ms;
}

// ------------------------------------------------------------------ echo server (child)

function cannedMessages(n: number): StoredMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    message: {
      topic: TOPIC,
      body: Buffer.alloc(BODY_BYTES, 120),
      tag: '',
      keys: [],
      properties: {},
      message_id: `0A000001000000000000000000${String(i).padStart(6, '0')}`,
      born_timestamp_ms: Date.now(),
      born_host: '127.0.0.1:1',
    },
    queue_id: 0,
    queue_offset: i,
    physical_offset: i * 1200,
    store_timestamp_ms: Date.now(),
    store_host: '127.0.0.1:10911',
    offset_message_id: '7F00000100002A9F0000000000001000',
    delivery_attempt: 1,
    receipt_handle: 'x'.repeat(180),
    broker_name: 'broker-a',
  }));
}

async function runEchoServer(): Promise<void> {
  const proto = sluiceProto();
  const server = new Server(GRPC_CHANNEL_OPTIONS);
  const ok = { code: 20000, message: 'OK', reason: '' };
  const popped = cannedMessages(POP_BATCH);
  type Call = ServerUnaryCall<{ entries?: unknown[]; receipt_handles?: unknown[] }, unknown>;
  server.addService(proto.grpc.sluice.v1.Broker.service, {
    SendMessages: (call: Call, cb: sendUnaryData<unknown>) =>
      cb(null, {
        results: (call.request.entries ?? []).map((_, i) => ({
          status: ok,
          message_id: '0A000001000000000000000000000000',
          offset_message_id: '7F00000100002A9F0000000000001000',
          queue_id: i % QUEUES,
          queue_offset: i,
          physical_offset: i,
        })),
      }),
    PopMessages: (_call: Call, cb: sendUnaryData<unknown>) =>
      cb(null, { status: ok, messages: popped }),
    AckMessages: (call: Call, cb: sendUnaryData<unknown>) =>
      cb(null, { results: (call.request.receipt_handles ?? []).map(() => ok) }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  process.send?.({ port });
}

async function startEcho(): Promise<{ addr: string; stop(): void }> {
  const child = fork(fileURLToPath(import.meta.url), ['--echo-server'], { stdio: 'inherit' });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`echo server exited ${code}`)));
  });
  return { addr: `127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

// ------------------------------------------------------------------ workloads

async function sendLoad(
  client: BrokerClient,
  total: number,
  name: string,
  dueAt?: (i: number) => number,
) {
  const body = Buffer.alloc(BODY_BYTES, 97);
  const latencies: number[] = [];
  let next = 0;
  let failed = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < total) {
      const from = next;
      const n = Math.min(SEND_BATCH, total - from);
      next += n;
      const entries = Array.from({ length: n }, (_, k) => ({
        message: {
          topic: TOPIC + (dueAt ? '_timer' : ''),
          body: dueAt ? Buffer.from(String(dueAt(from + k)).padEnd(BODY_BYTES, ' ')) : body,
          delivery_timestamp_ms: dueAt ? dueAt(from + k) : 0,
        },
        queue_id: -1,
      }));
      const t0 = performance.now();
      const res = await callUnary<SendMessagesRequest, SendMessagesResponse__Output>(
        client,
        client.SendMessages,
        { entries },
        30_000,
      );
      latencies.push(performance.now() - t0);
      failed += res.results.filter((r) => r.status?.code !== 20000).length;
    }
  };
  await Promise.all(Array.from({ length: SEND_IN_FLIGHT }, worker));
  if (failed > 0) throw new Error(`${failed} sends failed`);
  return { name, messages: total, ms: performance.now() - start, latencies } satisfies Figure;
}

async function popAckLoad(
  client: BrokerClient,
  total: number,
  name: string,
  group: string,
): Promise<Figure> {
  const latencies: number[] = [];
  let got = 0;
  let empty = 0;
  const start = performance.now();
  const worker = async () => {
    while (got < total && empty < 20) {
      const t0 = performance.now();
      const res = await callUnary<PopMessagesRequest, PopMessagesResponse__Output>(
        client,
        client.PopMessages,
        {
          consumer_group: group,
          topic: TOPIC,
          queue_id: -1,
          max_messages: POP_BATCH,
          invisible_ms: 60_000,
          max_wait_ms: 0,
        },
        30_000,
      );
      if (res.messages.length === 0) {
        empty++;
        continue;
      }
      got += res.messages.length;
      await callUnary(client, client.AckMessages, {
        consumer_group: group,
        topic: TOPIC,
        receipt_handles: res.messages.map((m) => m.receipt_handle),
      });
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: POP_CONSUMERS }, worker));
  return { name, messages: got, ms: performance.now() - start, latencies };
}

async function timerLoad(client: BrokerClient) {
  const windowStart = Date.now() + 10_000;
  const dueAt = (i: number) => windowStart + Math.floor((i * TIMER_WINDOW_MS) / TIMERS);
  const sent = await sendLoad(client, TIMERS, 'timer send', dueAt);
  const lateness: number[] = [];
  let early = 0;
  const deadline = windowStart + TIMER_WINDOW_MS + 30_000;
  const consumer = async () => {
    while (lateness.length < TIMERS && Date.now() < deadline) {
      const res = await callUnary<PopMessagesRequest, PopMessagesResponse__Output>(
        client,
        client.PopMessages,
        {
          consumer_group: 'bench_timer',
          topic: `${TOPIC}_timer`,
          queue_id: -1,
          max_messages: 256,
          invisible_ms: 60_000,
          max_wait_ms: 200,
        },
        30_000,
      );
      const now = Date.now();
      for (const m of res.messages) {
        const due = Number(Buffer.from(m.message!.body).toString('utf8').trim());
        lateness.push(now - due);
        if (now < due) early++;
      }
      if (res.messages.length > 0) {
        await callUnary(client, client.AckMessages, {
          consumer_group: 'bench_timer',
          topic: `${TOPIC}_timer`,
          receipt_handles: res.messages.map((m) => m.receipt_handle),
        });
      }
    }
  };
  await Promise.all([consumer(), consumer(), consumer(), consumer()]);
  lateness.sort((a, b) => a - b);
  return { sent, received: lateness.length, early, lateness };
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const echo = await startEcho();
  // BENCH_BROKER_ADDR: measure a broker started elsewhere (e.g. under --cpu-prof).
  const external = process.env.BENCH_BROKER_ADDR;
  const cluster = external
    ? undefined
    : await startCluster({
        brokers: [
          {
            config: {
              flushDiskType: 'ASYNC_FLUSH',
              mapedFileSizeCommitLog: 256 * 1024 * 1024,
              mapedFileSizeConsumeQueue: 300_000 * 20,
              defaultTopicQueueNums: QUEUES,
            },
          },
        ],
      });
  const broker = brokerClient(external ?? cluster!.brokers[0]!.addr);
  const echoClient = brokerClient(echo.addr);
  try {
    await callUnary(broker, broker.UpdateTopic, {
      topic_name: TOPIC,
      read_queue_nums: QUEUES,
      write_queue_nums: QUEUES,
      perm: 6,
    });
    await callUnary(broker, broker.UpdateTopic, {
      topic_name: `${TOPIC}_timer`,
      read_queue_nums: QUEUES,
      write_queue_nums: QUEUES,
      perm: 6,
    });
    // Warm up both paths (JIT, connections).
    await sendLoad(broker, 20_000, 'warm-up');
    await popAckLoad(broker, 10_000, 'warm-up', 'bench_warm');
    await sendLoad(echoClient, 10_000, 'warm-up');

    const echoSend = await sendLoad(
      echoClient,
      Math.min(SEND_MESSAGES, 320_000),
      'grpc-js echo (send)',
    );
    const send = await sendLoad(broker, SEND_MESSAGES, 'send 128 × 1 KiB');
    const echoPop = await popAckLoad(
      echoClient,
      Math.min(POP_MESSAGES, 160_000),
      'grpc-js echo (pop+ack)',
      'g',
    );
    const pop = await popAckLoad(broker, POP_MESSAGES, 'pop + ack 32', 'bench_pop');
    const stats1 = await callUnary<Empty, BrokerStatus__Output>(broker, broker.GetBrokerStatus, {});
    process.stdout.write(
      `\nTimers: ${TIMERS} due within ${TIMER_WINDOW_MS / 1000} s, window starts in 10 s …\n`,
    );
    const timers = await timerLoad(broker);
    const stats2 = await callUnary<Empty, BrokerStatus__Output>(broker, broker.GetBrokerStatus, {});

    const rows: string[][] = [
      [
        'workload',
        'msgs/s',
        'MB/s',
        'call p50 ms',
        'call p99 ms',
        'ceiling msgs/s',
        '% of ceiling',
      ],
    ];
    const row = (f: Figure, ceiling?: Figure) => {
      const l = [...f.latencies].sort((a, b) => a - b);
      rows.push([
        f.name,
        rate(f).toFixed(0),
        ((rate(f) * BODY_BYTES) / 1e6).toFixed(1),
        pct(l, 50).toFixed(2),
        pct(l, 99).toFixed(2),
        ceiling ? rate(ceiling).toFixed(0) : '',
        ceiling ? `${((100 * rate(f)) / rate(ceiling)).toFixed(0)}%` : '',
      ]);
    };
    row(echoSend);
    row(send, echoSend);
    row(echoPop);
    row(pop, echoPop);
    row(timers.sent);
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    process.stdout.write('\n');
    for (const r of rows)
      process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
    const late = timers.lateness;
    process.stdout.write(
      `\ntimers: ${timers.received}/${TIMERS} delivered, early = ${timers.early}, lateness p50 ${pct(late, 50)} ms, p99 ${pct(late, 99)} ms, max ${late[late.length - 1] ?? 'n/a'} ms; over 1 s late: ${late.filter((x) => x > 1000).length}\n`,
    );
    process.stdout.write(
      `broker RSS after send/pop: ${(Number(stats1.stats.rssBytes) / 2 ** 20).toFixed(0)} MiB, after timers: ${(Number(stats2.stats.rssBytes) / 2 ** 20).toFixed(0)} MiB; broker-side timer max lateness ${stats2.stats.timerMaxLatenessMs} ms\n`,
    );
    process.stdout.write(
      '(2 shared cores: client, broker and echo server compete; expect noise)\n',
    );
  } finally {
    broker.close();
    echoClient.close();
    echo.stop();
    await cluster?.close();
  }
}

if (process.argv.includes('--echo-server')) {
  await runEchoServer();
} else {
  await main();
}
