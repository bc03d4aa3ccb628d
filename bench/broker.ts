/**
 * Broker benchmark (`npx tsx bench/broker.ts`, `npm run bench:broker`).
 *
 * Starts a real name server and broker (ASYNC_FLUSH) as child processes and
 * measures through the internal gRPC API, from CLIENT_PROCS load processes:
 *   1. send: 128 × 1 KiB per call, SEND_IN_FLIGHT calls in flight per process,
 *      as unary SendMessages calls and over the Calls stream (as the gateway sends);
 *   2. pop + ack: batches of 32, POP_CONSUMERS consumers per process, as
 *      unary calls and over the Calls stream (as the gateway pops and acks);
 *   3. timers: TIMERS messages due within one window (default one minute),
 *      each delivery's lateness = receive time - due time (early = negative).
 * Beside each figure it prints the grpc-js ceiling measured in the same run: the
 * same calls with the same payloads against an echo server in another process
 * that answers without storing anything.
 *
 * Environment knobs: BENCH_SEND_MESSAGES, BENCH_POP_MESSAGES, BENCH_TIMERS,
 * BENCH_TIMER_WINDOW_MS, BENCH_SEND_IN_FLIGHT, BENCH_POP_CONSUMERS, BENCH_CLIENT_PROCS,
 * BENCH_IN_PROCESS (0 = skip, only = nothing else), BENCH_BROKER_ADDR (use
 * a running broker instead of starting one), BENCH_COMPACT (0 = sends carry
 * `entries` and ask for `results`, pops ask for `messages`, instead of the
 * compact forms the gateway uses).
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { ArrivalNotifier } from '../broker/messaging/arrival-notifier.js';
import type { BrokerContext } from '../broker/messaging/broker-context.js';
import { ConsumeStateStore } from '../broker/messaging/consume-state-store.js';
import { PopService } from '../broker/messaging/pop-service.js';
import { SendService } from '../broker/messaging/send-service.js';
import { TimerService } from '../broker/messaging/timer-service.js';
import { TransactionService } from '../broker/messaging/transaction-service.js';
import { ConsumerOffsetManager } from '../broker/metadata/consumer-offset-manager.js';
import { SubscriptionGroupManager } from '../broker/metadata/subscription-group-manager.js';
import { TopicConfigManager } from '../broker/metadata/topic-config-manager.js';
import { BROKER_SCHEMA } from '../broker/options.js';
import { createMessageStore } from '../broker/store/index.js';
import {
  compactMessages,
  compactSendEntries,
  messagesOf,
  sendEntriesOf,
} from '../common/compact-messages.js';
import { compactSendResults, sendResultCodes } from '../common/compact-send-results.js';
import { defaultsOf } from '../common/config/options.js';
import type { BrokerClient } from '../common/generated/sluice/v1/Broker.js';
import type { BrokerStatus__Output } from '../common/generated/sluice/v1/BrokerStatus.js';
import type { CallRequest__Output } from '../common/generated/sluice/v1/CallRequest.js';
import type { Empty } from '../common/generated/sluice/v1/Empty.js';
import type { PopMessagesRequest } from '../common/generated/sluice/v1/PopMessagesRequest.js';
import type { PopMessagesResponse__Output } from '../common/generated/sluice/v1/PopMessagesResponse.js';
import type {
  SendMessagesRequest,
  SendMessagesRequest__Output,
} from '../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse__Output } from '../common/generated/sluice/v1/SendMessagesResponse.js';
import type { StoredMessage } from '../common/generated/sluice/v1/StoredMessage.js';
import { callUnary, startGrpcServer } from '../common/grpc.js';
import { silentLogger } from '../common/logger.js';
import { offsetMessageIdWithPrefix } from '../common/offset-message-id.js';
import { sluiceProto } from '../common/proto.js';
import { BrokerCalls } from '../gateway/core/broker-calls.js';
import { brokerClient } from '../test/harness/clients.js';
import { startCluster } from '../test/harness/cluster.js';
import { makeTempDir } from '../test/harness/tmp.js';
import { BENCH_BROKER_CONFIG } from './broker-config.js';

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
/** Load-generating processes for send and pop+ack (one Node process cannot saturate the broker). */
const CLIENT_PROCS = env('BENCH_CLIENT_PROCS', 2);
/** Sends carry compact entries and ask for compact results, pops for compact messages, as the gateway does. */
const COMPACT = process.env.BENCH_COMPACT !== '0';
const TOPIC = 'bench_broker';
const QUEUES = 8;

interface Figure {
  name: string;
  messages: number;
  ms: number;
  latencies: number[];
  /** Broker process CPU time during the phase, µs (broker phases only). */
  brokerCpuMicros?: number;
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
  const ok = { code: 20000, message: 'OK', reason: '' };
  const popped = cannedMessages(POP_BATCH);
  // A SendMessages answer without storing: expands compact entries as the
  // broker does and answers in the broker's own encoding, so the ceiling pays
  // for both.
  const echoAnswer = (request: SendMessagesRequest__Output) => {
    const entries = sendEntriesOf(request);
    const results = entries.map((_, i) => ({
      status: ok,
      message_id: '0A000001000000000000000000000000',
      offset_message_id: offsetMessageIdWithPrefix('7F00000100002A9F', i),
      queue_id: i % QUEUES,
      queue_offset: i,
      physical_offset: i,
    }));
    const compact = request.compact_results ? compactSendResults(results) : undefined;
    return compact ? { compact } : { results };
  };
  // The broker's own encoder when asked, as for SendMessages.
  const popAnswer = (compact: boolean) =>
    compact ? { status: ok, compact: compactMessages(popped) } : { status: ok, messages: popped };
  const ackAnswer = (handles: readonly unknown[]) => ({ results: handles.map(() => ok) });
  type Call = ServerUnaryCall<
    {
      entries?: unknown[];
      receipt_handles?: unknown[];
      compact_results?: boolean;
      compact_messages?: boolean;
    },
    unknown
  >;
  // The broker's own transport settings (startGrpcServer), so the ceiling
  // differs from the broker only in doing no work.
  const handle = await startGrpcServer('127.0.0.1', 0, [], (server) =>
    server.addService(proto.grpc.sluice.v1.Broker.service, {
      SendMessages: (call: Call, cb: sendUnaryData<unknown>) =>
        cb(null, echoAnswer(call.request as SendMessagesRequest__Output)),
      Calls: (stream: ServerDuplexStream<CallRequest__Output, unknown>) => {
        stream.on('data', (req: CallRequest__Output) => {
          const id = req.id;
          if (req.send) stream.write({ id, send: echoAnswer(req.send) });
          else if (req.pop) stream.write({ id, pop: popAnswer(req.pop.compact_messages) });
          else if (req.ack) stream.write({ id, ack: ackAnswer(req.ack.receipt_handles) });
        });
        stream.on('end', () => stream.end());
      },
      PopMessages: (call: Call, cb: sendUnaryData<unknown>) =>
        cb(null, popAnswer(call.request.compact_messages === true)),
      AckMessages: (call: Call, cb: sendUnaryData<unknown>) =>
        cb(null, ackAnswer(call.request.receipt_handles ?? [])),
    }),
  );
  process.send?.({ port: handle.port });
}

interface ClientJob {
  addr: string;
  /** …-stream: over the Calls stream instead of unary calls. */
  kind: 'send' | 'send-stream' | 'pop' | 'pop-stream';
  total: number;
  name: string;
  group: string;
}

/** Child: runs one share of a load against addr and reports its Figure. */
async function runClient(job: ClientJob): Promise<void> {
  const client = brokerClient(job.addr);
  const f =
    job.kind === 'pop' || job.kind === 'pop-stream'
      ? await popAckLoad(client, job.total, job.name, job.group, job.kind === 'pop-stream')
      : await sendLoad(client, job.total, job.name, undefined, job.kind === 'send-stream');
  client.close();
  process.send?.(f);
}

/** Runs a load from CLIENT_PROCS processes at once; msgs/s is the sum over the wall time. */
async function distributed(job: Omit<ClientJob, 'total'>, total: number): Promise<Figure> {
  const start = performance.now();
  const share = Math.ceil(total / CLIENT_PROCS);
  const parts = await Promise.all(
    Array.from(
      { length: CLIENT_PROCS },
      () =>
        new Promise<Figure>((resolve, reject) => {
          const child = fork(fileURLToPath(import.meta.url), [
            '--client',
            JSON.stringify({ ...job, total: share }),
          ]);
          child.once('message', (f: Figure) => resolve(f));
          child.once('exit', (code) =>
            code ? reject(new Error(`client exited ${code}`)) : undefined,
          );
        }),
    ),
  );
  return {
    name: job.name,
    messages: parts.reduce((n, f) => n + f.messages, 0),
    ms: performance.now() - start,
    latencies: parts.flatMap((f) => f.latencies),
  };
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
  /** Send over the Calls stream instead of unary calls. */
  streamed = false,
) {
  const stream = streamed ? new BrokerCalls(client, 'bench') : undefined;
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
      const req: SendMessagesRequest = COMPACT
        ? { compact_entries: compactSendEntries(entries), compact_results: true }
        : { entries };
      const res = stream
        ? await stream.call('send', req, 30_000)
        : await callUnary<SendMessagesRequest, SendMessagesResponse__Output>(
            client,
            client.SendMessages,
            req,
            30_000,
          );
      latencies.push(performance.now() - t0);
      const codes = sendResultCodes(res);
      if (codes.length !== n) throw new Error(`${codes.length} results for ${n} entries`);
      failed += codes.filter((code) => code !== 20000).length;
    }
  };
  await Promise.all(Array.from({ length: SEND_IN_FLIGHT }, worker));
  stream?.close();
  if (failed > 0) throw new Error(`${failed} sends failed`);
  return { name, messages: total, ms: performance.now() - start, latencies } satisfies Figure;
}

async function popAckLoad(
  client: BrokerClient,
  total: number,
  name: string,
  group: string,
  /** Pop and ack over the Calls stream instead of unary calls. */
  streamed = false,
): Promise<Figure> {
  const stream = streamed ? new BrokerCalls(client, 'bench') : undefined;
  const latencies: number[] = [];
  let got = 0;
  let empty = 0;
  const start = performance.now();
  const worker = async () => {
    while (got < total && empty < 20) {
      const t0 = performance.now();
      const popReq: PopMessagesRequest = {
        consumer_group: group,
        topic: TOPIC,
        queue_id: -1,
        max_messages: POP_BATCH,
        invisible_ms: 60_000,
        max_wait_ms: 0,
        compact_messages: COMPACT,
      };
      const res = stream
        ? await stream.call('pop', popReq, 30_000)
        : await callUnary<PopMessagesRequest, PopMessagesResponse__Output>(
            client,
            client.PopMessages,
            popReq,
            30_000,
          );
      const messages = messagesOf(res);
      if (messages.length === 0) {
        empty++;
        continue;
      }
      got += messages.length;
      const ackReq = {
        consumer_group: group,
        topic: TOPIC,
        receipt_handles: messages.map((m) => m.receipt_handle),
      };
      const acked = stream
        ? await stream.call('ack', ackReq, 30_000)
        : await callUnary<typeof ackReq, { results: unknown[] }>(
            client,
            client.AckMessages,
            ackReq,
          );
      if (acked.results.length !== messages.length) throw new Error('ack answered short');
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: POP_CONSUMERS }, worker));
  stream?.close();
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
          compact_messages: COMPACT,
        },
        30_000,
      );
      const messages = messagesOf(res);
      const now = Date.now();
      for (const m of messages) {
        const due = Number(Buffer.from(m.message!.body).toString('utf8').trim());
        lateness.push(now - due);
        if (now < due) early++;
      }
      if (messages.length > 0) {
        await callUnary(client, client.AckMessages, {
          consumer_group: 'bench_timer',
          topic: `${TOPIC}_timer`,
          receipt_handles: messages.map((m) => m.receipt_handle),
        });
      }
    }
  };
  await Promise.all([consumer(), consumer(), consumer(), consumer()]);
  lateness.sort((a, b) => a - b);
  return { sent, received: lateness.length, early, lateness };
}

// ------------------------------------------------------------------ in process

/**
 * The broker's own send and pop+ack paths without gRPC (store, journal and
 * messaging services wired as in broker/main.ts): what the broker can do when
 * the transport is not the limit.
 */
async function inProcess(): Promise<Figure[]> {
  const tmp = makeTempDir('sluice-bench-');
  const options = {
    ...defaultsOf(BROKER_SCHEMA),
    storePathRootDir: tmp.path,
    mapedFileSizeCommitLog: 256 * 1024 * 1024,
    defaultTopicQueueNums: QUEUES,
  };
  const store = createMessageStore({
    storePathRootDir: tmp.path,
    mapedFileSizeCommitLog: options.mapedFileSizeCommitLog,
    flushDiskType: 'ASYNC_FLUSH',
  });
  await store.start();
  const states = new ConsumeStateStore({
    dir: join(tmp.path, 'popstate'),
    flushDiskType: 'ASYNC_FLUSH',
    flushIntervalMs: options.flushIntervalCommitLog,
    logger: silentLogger,
  });
  await states.open();
  const ctx: BrokerContext = {
    options,
    brokerAddr: '127.0.0.1:10911',
    store,
    topics: new TopicConfigManager(tmp.path, options),
    groups: new SubscriptionGroupManager(tmp.path, true, options.maxReconsumeTimes),
    offsets: new ConsumerOffsetManager(tmp.path),
    notifier: new ArrivalNotifier(),
    logger: silentLogger,
    clock: Date.now,
    perm: () => 6,
  };
  const timer = new TimerService(ctx, states);
  const transactions = new TransactionService(ctx, states);
  const send = new SendService(ctx, timer, transactions);
  const pop = new PopService(ctx, states);
  await ctx.topics.upsert({ topic_name: TOPIC, read_queue_nums: QUEUES, write_queue_nums: QUEUES });
  const body = Buffer.alloc(BODY_BYTES, 97);
  const entries = () =>
    Array.from({ length: SEND_BATCH }, () => ({
      message: { topic: TOPIC, body, tag: '', keys: [], properties: {} },
      queue_id: -1,
    })) as unknown as Parameters<SendService['send']>[0];
  const figures: Figure[] = [];
  try {
    let latencies: number[] = [];
    let start = performance.now();
    const total = SEND_MESSAGES;
    let next = 0;
    await Promise.all(
      Array.from({ length: SEND_IN_FLIGHT }, async () => {
        while (next < total) {
          next += SEND_BATCH;
          const t0 = performance.now();
          await send.send(entries());
          latencies.push(performance.now() - t0);
        }
      }),
    );
    figures.push({
      name: 'in-process send 128 (no gRPC)',
      messages: next,
      ms: performance.now() - start,
      latencies,
    });
    latencies = [];
    start = performance.now();
    let got = 0;
    await Promise.all(
      Array.from({ length: POP_CONSUMERS }, async () => {
        while (got < POP_MESSAGES) {
          const t0 = performance.now();
          const msgs = await pop.pop({
            group: 'g',
            topic: TOPIC,
            queueId: -1,
            max: POP_BATCH,
            invisibleMs: 60_000,
            waitMs: 0,
            filter: '',
          });
          if (msgs.length === 0) break;
          got += msgs.length;
          await pop.ack(
            'g',
            TOPIC,
            msgs.map((m) => m.receipt_handle ?? ''),
          );
          latencies.push(performance.now() - t0);
        }
      }),
    );
    figures.push({
      name: 'in-process pop+ack 32 (no gRPC)',
      messages: got,
      ms: performance.now() - start,
      latencies,
    });
  } finally {
    await states.close();
    await ctx.offsets.close();
    await store.close();
    tmp.remove();
  }
  return figures;
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const local = process.env.BENCH_IN_PROCESS === '0' ? [] : await inProcess();
  if (process.env.BENCH_IN_PROCESS === 'only') {
    for (const f of local) process.stdout.write(`${f.name}: ${rate(f).toFixed(0)} msgs/s\n`);
    return;
  }
  const echo = await startEcho();
  // BENCH_BROKER_ADDR: measure a broker started elsewhere (e.g. under --cpu-prof).
  const external = process.env.BENCH_BROKER_ADDR;
  const cluster = external
    ? undefined
    : await startCluster({
        brokers: [
          {
            config: { ...BENCH_BROKER_CONFIG, defaultTopicQueueNums: QUEUES },
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

    const brokerAddr = external ?? cluster!.brokers[0]!.addr;
    // Broker CPU time spent on a phase, µs (from GetBrokerStatus).
    const brokerCpu = async () =>
      Number(
        (await callUnary<Empty, BrokerStatus__Output>(broker, broker.GetBrokerStatus, {})).stats
          .cpuMicros,
      );
    const measured = async (job: Omit<ClientJob, 'total'>, total: number): Promise<Figure> => {
      const before = await brokerCpu();
      const f = await distributed(job, total);
      return { ...f, brokerCpuMicros: (await brokerCpu()) - before };
    };
    const echoSend = await distributed(
      { addr: echo.addr, kind: 'send', name: 'grpc-js echo (send)', group: '' },
      Math.min(SEND_MESSAGES, 320_000),
    );
    const send = await measured(
      { addr: brokerAddr, kind: 'send', name: 'send 128 × 1 KiB', group: '' },
      SEND_MESSAGES,
    );
    const echoSendStream = await distributed(
      { addr: echo.addr, kind: 'send-stream', name: 'grpc-js echo (send, stream)', group: '' },
      Math.min(SEND_MESSAGES, 320_000),
    );
    const sendStream = await measured(
      {
        addr: brokerAddr,
        kind: 'send-stream',
        name: 'send 128 × 1 KiB over the Calls stream',
        group: '',
      },
      SEND_MESSAGES,
    );
    const echoPop = await distributed(
      { addr: echo.addr, kind: 'pop', name: 'grpc-js echo (pop+ack)', group: 'g' },
      Math.min(POP_MESSAGES, 160_000),
    );
    const pop = await measured(
      { addr: brokerAddr, kind: 'pop', name: 'pop + ack 32', group: 'bench_pop' },
      POP_MESSAGES,
    );
    const echoPopStream = await distributed(
      { addr: echo.addr, kind: 'pop-stream', name: 'grpc-js echo (pop+ack, stream)', group: 'g' },
      Math.min(POP_MESSAGES, 160_000),
    );
    // Another group: it reads the same messages again from the start.
    const popStream = await measured(
      {
        addr: brokerAddr,
        kind: 'pop-stream',
        name: 'pop + ack 32 over the Calls stream',
        group: 'bench_pop_stream',
      },
      POP_MESSAGES,
    );
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
        'broker CPU µs/msg',
        'broker-bound msgs/s per core',
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
        f.brokerCpuMicros ? (f.brokerCpuMicros / f.messages).toFixed(2) : '',
        f.brokerCpuMicros ? ((1e6 * f.messages) / f.brokerCpuMicros).toFixed(0) : '',
      ]);
    };
    row(echoSend);
    row(send, echoSend);
    row(echoSendStream);
    row(sendStream, echoSendStream);
    row(echoPop);
    row(pop, echoPop);
    row(echoPopStream);
    row(popStream, echoPopStream);
    row(timers.sent);
    for (const f of local) row(f);
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
      '(2 shared cores: client, broker and echo server compete; expect noise. broker-bound msgs/s per core: the rate one core of broker CPU alone would carry at the CPU each message cost the broker in this run, with the load generators elsewhere)\n',
    );
  } finally {
    broker.close();
    echoClient.close();
    echo.stop();
    await cluster?.close();
  }
}

const clientArg = process.argv.indexOf('--client');
if (process.argv.includes('--echo-server')) {
  await runEchoServer();
} else if (clientArg > 0) {
  await runClient(JSON.parse(process.argv[clientArg + 1]!) as ClientJob);
} else {
  await main();
}
