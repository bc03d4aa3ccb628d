/**
 * SendMessagesStream (the gateway's send path): requests on one stream are
 * answered by id exactly as SendMessages answers them, failures of a whole
 * request come back as the same SluiceError without breaking the stream, and
 * the gateway's end falls back to unary calls for a broker without the
 * stream, times out unanswered requests and fails what was in flight when
 * the stream breaks.
 */
import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compactSendEntries } from '../../common/compact-messages.js';
import { Code } from '../../common/errors.js';
import type { SendEntry } from '../../common/generated/sluice/v1/SendEntry.js';
import type { SendMessagesRequest } from '../../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse__Output } from '../../common/generated/sluice/v1/SendMessagesResponse.js';
import type { SendStreamResponse__Output } from '../../common/generated/sluice/v1/SendStreamResponse.js';
import { callUnary, startGrpcServer } from '../../common/grpc.js';
import { sluiceProto } from '../../common/proto.js';
import { SendStream, sendOverStream } from '../../gateway/core/send-stream.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { BrokerApi, OK } from './broker-api.js';

const entriesOf = (topic: string, bodies: Buffer[]): SendEntry[] =>
  bodies.map((body) => ({ message: { topic, body }, queue_id: 0 }));

describe('SendMessagesStream', () => {
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
    const stream = new SendStream(api.client, api.addr);
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
      stream.send({ entries: entriesOf('ss1', [Buffer.from('a'), Buffer.from('b')]) }, 5_000),
      stream.send({ entries: entriesOf('ss1', [Buffer.from('c'), Buffer.alloc(4096)]) }, 5_000),
      stream.send({ compact_entries: broken }, 5_000),
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

    const after = await stream.send({ entries: entriesOf('ss1', [Buffer.from('d')]) }, 5_000);
    expect(after.results.map((r) => r.status!.code)).toEqual([OK]);
    expect(stream.inFlight).toBe(0);
    stream.close();

    // Requests in flight together are stored in any order, as concurrent calls are.
    const stored = await api.readAll('ss1', 0);
    expect(stored.map((m) => m.message!.body.toString()).sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('a stopping broker ends its send streams after their answers: the stop is not held up, the next send fails over', async () => {
    const own = await startCluster({ brokers: [{}] });
    const ownApi = new BrokerApi(own.brokers[0]!.addr);
    try {
      const stream = new SendStream(ownApi.client, ownApi.addr);
      const sent = await stream.send({ entries: entriesOf('ss-stop', [Buffer.from('x')]) }, 5_000);
      expect(sent.results.map((r) => r.status!.code)).toEqual([OK]);
      // Graceful stop (SIGTERM): without the drain, the open stream would hold
      // the gRPC server's shutdown for its whole 2 s grace.
      const started = Date.now();
      await own.brokers[0]!.stop();
      expect(Date.now() - started).toBeLessThan(1_900);
      await expect(
        stream.send({ entries: entriesOf('ss-stop', [Buffer.from('y')]) }, 5_000),
      ).rejects.toMatchObject({ code: Code.HA_NOT_AVAILABLE, retriable: true });
    } finally {
      ownApi.close();
      await own.close();
    }
  });

  it('refuses a stream request that carries no SendMessagesRequest, by its id', async () => {
    const call = api.client.SendMessagesStream();
    const answer = new Promise<SendStreamResponse__Output>((resolve, reject) => {
      call.once('data', resolve);
      call.once('error', reject);
    });
    call.write({ id: 7 });
    const res = await answer;
    expect(res.id).toBe(7);
    expect(res.error?.code).toBe(Code.BAD_REQUEST);
    expect(res.response).toBeNull();
    call.cancel();
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
      const stream = new SendStream(client, 'old');
      const viaUnary = (req: SendMessagesRequest) =>
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
        sendOverStream(stream, viaUnary, req(2), 5_000),
        sendOverStream(stream, viaUnary, req(3), 5_000),
      ]);
      expect(stream.unsupported).toBe(true);
      expect(a.results).toHaveLength(2);
      expect(b.results).toHaveLength(3);
      // Later sends go unary at once.
      expect((await sendOverStream(stream, viaUnary, req(1), 5_000)).results).toHaveLength(1);
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
        SendMessagesStream: (s: ServerDuplexStream<unknown, unknown>) => {
          streams++;
          held.push(s);
          s.on('data', () => undefined);
        },
      }),
    );
    const client = new BrokerApi(`127.0.0.1:${silent.port}`).client;
    try {
      const stream = new SendStream(client, 'silent');
      const started = Date.now();
      await expect(stream.send({ entries: [] }, 200)).rejects.toMatchObject({
        code: Code.PROXY_TIMEOUT,
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
      expect(stream.inFlight).toBe(0);

      const inFlight = [stream.send({ entries: [] }, 30_000), stream.send({ entries: [] }, 30_000)];
      await waitFor('both requests in flight', () => held.length === 1 && stream.inFlight === 2);
      held[0]!.emit('error', { code: 14, details: 'going away' });
      for (const p of inFlight) {
        await expect(p).rejects.toMatchObject({ code: Code.HA_NOT_AVAILABLE, retriable: true });
      }
      expect(stream.unsupported).toBe(false);

      // The next send opens a new stream.
      const next = stream.send({ entries: [] }, 200);
      await expect(next).rejects.toMatchObject({ code: Code.PROXY_TIMEOUT });
      expect(streams).toBe(2);
      stream.close();
    } finally {
      client.close();
      await silent.close();
    }
  });
});
