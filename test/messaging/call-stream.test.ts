/**
 * The Calls stream (the gateway's send, pop, ack and change-invisible path):
 * requests on one stream are answered by id exactly as the unary calls
 * answer them, failures of a whole request come back as the same SluiceError
 * without breaking the stream, and the gateway's end falls back to unary
 * calls for a broker without the stream, times out unanswered requests and
 * fails what was in flight when the stream breaks.
 */
import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compactSendEntries, messagesOf } from '../../common/compact-messages.js';
import { Code } from '../../common/errors.js';
import type { CallResponse__Output } from '../../common/generated/sluice/v1/CallResponse.js';
import type { SendEntry } from '../../common/generated/sluice/v1/SendEntry.js';
import type { SendMessagesRequest } from '../../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse__Output } from '../../common/generated/sluice/v1/SendMessagesResponse.js';
import { callUnary, startGrpcServer } from '../../common/grpc.js';
import { sluiceProto } from '../../common/proto.js';
import { BrokerCalls, overCalls } from '../../gateway/core/broker-calls.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { BrokerApi, OK } from './broker-api.js';

const entriesOf = (topic: string, bodies: Buffer[]): SendEntry[] =>
  bodies.map((body) => ({ message: { topic, body }, queue_id: 0 }));

describe('Calls stream', () => {
  let c: Cluster;
  let api: BrokerApi;
  beforeAll(async () => {
    c = await startCluster({ brokers: [{ config: { maxMessageSize: 2048 } }] });
    api = new BrokerApi(c.brokers[0]!.addr);
  });
  afterAll(async () => {
    api?.close();
    await c?.close();
  });

  it('answers each request by id as SendMessages would; a refused request leaves the stream working', async () => {
    const stream = new BrokerCalls(api.client, api.addr);
    const broken = compactSendEntries(
      entriesOf(
        'ss1',
        Array.from({ length: 8 }, (_, i) => Buffer.from(`x${i}`)),
      ),
    )!;
    broken.body_lengths[0]! += 1;
    // In flight together on one stream: a fine batch, one with a body over
    // maxMessageSize (answered per entry), one with malformed columns (refused whole).
    const [fine, mixed, refused] = await Promise.allSettled([
      stream.call(
        'send',
        { entries: entriesOf('ss1', [Buffer.from('a'), Buffer.from('b')]) },
        5_000,
      ),
      stream.call(
        'send',
        { entries: entriesOf('ss1', [Buffer.from('c'), Buffer.alloc(4096)]) },
        5_000,
      ),
      stream.call('send', { compact_entries: broken }, 5_000),
    ]);
    expect(fine.status).toBe('fulfilled');
    const fineResults = (fine as PromiseFulfilledResult<SendMessagesResponse__Output>).value
      .results;
    expect(fineResults.map((r) => r.status!.code)).toEqual([OK, OK]);
    expect(fineResults[0]!.message_id).toMatch(/^[0-9A-F]{32}$/);
    const mixedResults = (mixed as PromiseFulfilledResult<SendMessagesResponse__Output>).value
      .results;
    expect(mixedResults.map((r) => r.status!.code)).toEqual([OK, Code.MESSAGE_BODY_TOO_LARGE]);
    expect(refused.status).toBe('rejected');
    expect((refused as PromiseRejectedResult).reason).toMatchObject({
      name: 'SluiceError',
      code: Code.BAD_REQUEST,
    });
    // Same unary refusal, same code: the stream carries the unary semantics.
    await expect(
      callUnary(api.client, api.client.SendMessages, { compact_entries: broken }),
    ).rejects.toMatchObject({ code: Code.BAD_REQUEST });

    const after = await stream.call(
      'send',
      { entries: entriesOf('ss1', [Buffer.from('d')]) },
      5_000,
    );
    expect(after.results.map((r) => r.status!.code)).toEqual([OK]);
    expect(stream.inFlight).toBe(0);
    stream.close();

    // Requests in flight together are stored in any order, as concurrent calls are.
    const stored = await api.readAll('ss1', 0);
    expect(stored.map((m) => m.message!.body.toString()).sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('a stopping broker ends its call streams after their answers: the stop is not held up, the next send fails over', async () => {
    const own = await startCluster({ brokers: [{}] });
    const ownApi = new BrokerApi(own.brokers[0]!.addr);
    try {
      const stream = new BrokerCalls(ownApi.client, ownApi.addr);
      const sent = await stream.call(
        'send',
        { entries: entriesOf('ss-stop', [Buffer.from('x')]) },
        5_000,
      );
      expect(sent.results.map((r) => r.status!.code)).toEqual([OK]);
      // Graceful stop (SIGTERM): without the drain, the open stream would hold
      // the gRPC server's shutdown for its whole 2 s grace.
      const started = Date.now();
      await own.brokers[0]!.stop();
      expect(Date.now() - started).toBeLessThan(1_900);
      await expect(
        stream.call('send', { entries: entriesOf('ss-stop', [Buffer.from('y')]) }, 5_000),
      ).rejects.toMatchObject({ code: Code.HA_NOT_AVAILABLE, retriable: true });
    } finally {
      ownApi.close();
      await own.close();
    }
  });

  it('pops, changes invisible time and acks on the stream as the unary calls do', async () => {
    await api.sendOk('cs-pop', [{ body: Buffer.from('p1') }, { body: Buffer.from('p2') }], 0);
    const stream = new BrokerCalls(api.client, api.addr);
    const popped = await stream.call(
      'pop',
      {
        consumer_group: 'cs-g',
        topic: 'cs-pop',
        queue_id: -1,
        max_messages: 32,
        invisible_ms: 30_000,
        max_wait_ms: 0,
        filter: { type: 'TAG', expression: '*' },
        compact_messages: true,
      },
      5_000,
    );
    expect(popped.status?.code).toBe(OK);
    const messages = messagesOf(popped);
    expect(messages.map((m) => m.message!.body.toString()).sort()).toEqual(['p1', 'p2']);
    const [first, second] = messages;
    // A new handle for the first; the stale one is refused afterwards, as unary.
    const changed = await stream.call(
      'change_invisible',
      {
        consumer_group: 'cs-g',
        topic: 'cs-pop',
        entries: [{ receipt_handle: first!.receipt_handle, invisible_ms: 20_000 }],
      },
      5_000,
    );
    expect(changed.results[0]!.status!.code).toBe(OK);
    const renewed = changed.results[0]!.receipt_handle;
    expect(renewed).not.toBe(first!.receipt_handle);
    const acked = await stream.call(
      'ack',
      {
        consumer_group: 'cs-g',
        topic: 'cs-pop',
        receipt_handles: [renewed, second!.receipt_handle, first!.receipt_handle],
      },
      5_000,
    );
    const unary = await api.ack('cs-g', 'cs-pop', [first!.receipt_handle]);
    expect(acked.results.map((r) => r.code)).toEqual([OK, OK, unary[0]!.code]);
    expect(unary[0]!.code).not.toBe(OK);
    // Both acked: nothing comes back, even past a short invisible time.
    expect(await api.pop('cs-g', 'cs-pop', { invisibleMs: 10_000 })).toEqual([]);
    stream.close();
  });

  it('refuses, by its id, a stream request that carries no call', async () => {
    const call = api.client.Calls();
    const answer = new Promise<CallResponse__Output>((resolve, reject) => {
      call.once('data', resolve);
      call.once('error', reject);
    });
    call.write({ id: 7 });
    const res = await answer;
    expect([res.id, res.error?.code, res.result]).toEqual([7, Code.BAD_REQUEST, undefined]);
    call.cancel();
  });

  it('carries long polls: one answers when a message arrives, WakePops ends one, neither holds up the calls behind it', async () => {
    const stream = new BrokerCalls(api.client, api.addr);
    const waitingPop = (topic: string, attemptId: string, waitMs: number) =>
      stream.call(
        'pop',
        {
          consumer_group: 'cs-wait',
          topic,
          queue_id: -1,
          max_messages: 4,
          invisible_ms: 30_000,
          max_wait_ms: waitMs,
          filter: { type: 'TAG', expression: '*' },
          attempt_id: attemptId,
          compact_messages: true,
        },
        waitMs + 5_000,
      );
    for (const topic of ['cs-wait-a', 'cs-wait-b']) {
      await api.sendOk(topic, [{ body: Buffer.from('warm') }]);
      expect(await api.pop('cs-wait', topic)).toHaveLength(1);
    }
    // More long polls than the stream's in-flight budget (64): sends and pops
    // behind them are still read and answered at once.
    const idle = Array.from({ length: 80 }, (_, i) => waitingPop('cs-wait-b', `idle-${i}`, 20_000));
    const arrival = waitingPop('cs-wait-a', 'arrival', 20_000);
    await waitFor('long polls in flight', () => stream.inFlight === 81);
    const started = Date.now();
    const sent = await stream.call(
      'send',
      { entries: entriesOf('cs-wait-a', [Buffer.from('a1')]) },
      5_000,
    );
    expect(sent.results[0]!.status!.code).toBe(OK);
    expect(messagesOf(await arrival).map((m) => m.message!.body.toString())).toEqual(['a1']);
    expect(Date.now() - started).toBeLessThan(5_000);
    // Woken by attempt id: they answer empty long before their 20 s.
    await callUnary(api.client, api.client.WakePops, {
      attempt_ids: Array.from({ length: 80 }, (_, i) => `idle-${i}`),
    });
    for (const res of await Promise.all(idle)) expect(messagesOf(res)).toEqual([]);
    expect(Date.now() - started).toBeLessThan(10_000);
    stream.close();
  });

  it('cancels the long polls of a stream that goes: a message sent afterwards is not taken by them', async () => {
    await api.sendOk('cs-gone', [{ body: Buffer.from('warm') }]);
    expect(await api.pop('cs-gone', 'cs-gone')).toHaveLength(1);
    const call = api.client.Calls();
    call.on('error', () => undefined);
    call.write({
      id: 1,
      pop: {
        consumer_group: 'cs-gone',
        topic: 'cs-gone',
        queue_id: -1,
        max_messages: 1,
        invisible_ms: 60_000,
        max_wait_ms: 20_000,
        filter: { type: 'TAG', expression: '*' },
      },
    });
    // The broker counts a pop waiting on the topic and on its retry topic.
    const waiting = async () => Number((await api.status()).longPollsWaiting);
    await waitFor('the pop waits on the broker', async () => (await waiting()) > 0);
    call.cancel();
    await waitFor('the pop is cancelled with its stream', async () => (await waiting()) === 0);
    await api.sendOk('cs-gone', [{ body: Buffer.from('after') }]);
    const got = await api.pop('cs-gone', 'cs-gone', { waitMs: 2_000 });
    expect(got.map((m) => m.message!.body.toString())).toEqual(['after']);
  });

  it('falls back to unary SendMessages for a broker without the stream', async () => {
    const unary: number[] = [];
    const old = await startGrpcServer('127.0.0.1', 0, [], (server) =>
      server.addService(sluiceProto().grpc.sluice.v1.Broker.service, {
        SendMessages: (
          call: ServerUnaryCall<{ entries: SendEntry[] }, unknown>,
          cb: sendUnaryData<unknown>,
        ) => {
          unary.push(call.request.entries.length);
          cb(null, {
            results: call.request.entries.map(() => ({ status: { code: OK, message: 'OK' } })),
          });
        },
      }),
    );
    const client = new BrokerApi(`127.0.0.1:${old.port}`).client;
    try {
      const stream = new BrokerCalls(client, 'old');
      const viaUnary = (req: SendMessagesRequest): Promise<SendMessagesResponse__Output> =>
        callUnary<SendMessagesRequest, SendMessagesResponse__Output>(
          client,
          client.SendMessages,
          req,
        );
      const req = (n: number): SendMessagesRequest => ({
        entries: entriesOf(
          't',
          Array.from({ length: n }, () => Buffer.from('m')),
        ),
      });
      // Two in flight when the stream is refused: both go again as unary calls.
      const [a, b] = await Promise.all([
        overCalls(stream, 'send', viaUnary, req(2), 5_000),
        overCalls(stream, 'send', viaUnary, req(3), 5_000),
      ]);
      expect(stream.unsupported).toBe(true);
      expect(a.results).toHaveLength(2);
      expect(b.results).toHaveLength(3);
      // Later sends go unary at once.
      expect((await overCalls(stream, 'send', viaUnary, req(1), 5_000)).results).toHaveLength(1);
      expect(unary.sort()).toEqual([1, 2, 3]);
    } finally {
      client.close();
      await old.close();
    }
  });

  it('times out an unanswered request; fails the ones in flight when the stream breaks, then opens a new one', async () => {
    let streams = 0;
    const held: ServerDuplexStream<unknown, unknown>[] = [];
    const silent = await startGrpcServer('127.0.0.1', 0, [], (server) =>
      server.addService(sluiceProto().grpc.sluice.v1.Broker.service, {
        // Reads requests and never answers them; the test breaks streams at will.
        Calls: (s: ServerDuplexStream<unknown, unknown>) => {
          streams++;
          held.push(s);
          s.on('data', () => undefined);
        },
      }),
    );
    const client = new BrokerApi(`127.0.0.1:${silent.port}`).client;
    try {
      const stream = new BrokerCalls(client, 'silent');
      const started = Date.now();
      await expect(stream.call('send', { entries: [] }, 200)).rejects.toMatchObject({
        code: Code.PROXY_TIMEOUT,
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
      expect(stream.inFlight).toBe(0);

      const inFlight = [
        stream.call('send', { entries: [] }, 30_000),
        stream.call('send', { entries: [] }, 30_000),
      ];
      await waitFor('both requests in flight', () => held.length === 1 && stream.inFlight === 2);
      held[0]!.emit('error', { code: 14, details: 'going away' });
      for (const p of inFlight) {
        await expect(p).rejects.toMatchObject({ code: Code.HA_NOT_AVAILABLE, retriable: true });
      }
      expect(stream.unsupported).toBe(false);

      // The next send opens a new stream.
      const next = stream.call('send', { entries: [] }, 200);
      await expect(next).rejects.toMatchObject({ code: Code.PROXY_TIMEOUT });
      expect(streams).toBe(2);
      stream.close();
    } finally {
      client.close();
      await silent.close();
    }
  });
});
