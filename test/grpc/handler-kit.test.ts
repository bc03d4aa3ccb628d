/**
 * The stream adapter of the gRPC gateway over a real grpc-js server and
 * client (in process): a ReceiveMessage stream carries exactly one Status,
 * also when its handler fails after it wrote OK and some messages; a server
 * fault is logged with the trace ids the call metadata names.
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errors } from '../../common/errors.js';
import type { MessagingServiceClient } from '../../common/generated/apache/rocketmq/v2/MessagingService.js';
import type { ReceiveMessageRequest__Output } from '../../common/generated/apache/rocketmq/v2/ReceiveMessageRequest.js';
import type { ReceiveMessageResponse } from '../../common/generated/apache/rocketmq/v2/ReceiveMessageResponse.js';
import { type GrpcServerHandle, startGrpcServer } from '../../common/grpc.js';
import { serverStream } from '../../gateway/grpc/handler-kit.js';
import { messagingProto } from '../../gateway/grpc/messaging-proto.js';
import { OK_STATUS } from '../../gateway/grpc/public-status.js';

/** What the handler does, chosen by the request's group name. */
const SCRIPTS: Record<string, (write: (r: ReceiveMessageResponse) => void) => Promise<void>> = {
  'fail-after-messages': async (write) => {
    write({ status: OK_STATUS });
    write({ message: { topic: { name: 't' }, body: Buffer.from('m1') } });
    throw errors.internal('the broker went away mid-stream');
  },
  'fail-at-once': async () => {
    throw errors.topicNotFound('t');
  },
  'server-fault': async () => {
    throw errors.internal('disk on fire');
  },
  ok: async (write) => {
    write({ status: OK_STATUS });
    write({ message: { topic: { name: 't' }, body: Buffer.from('m1') } });
    write({ delivery_timestamp: { seconds: 1, nanos: 0 } });
  },
};

describe('gRPC handler kit: server streams', () => {
  const logged: Record<string, unknown>[] = [];
  const logger = pino({ level: 'warn' }, { write: (l: string) => logged.push(JSON.parse(l)) });
  let server: GrpcServerHandle;
  let client: MessagingServiceClient;
  beforeAll(async () => {
    const proto = messagingProto();
    server = await startGrpcServer('127.0.0.1', 0, [proto.definition], (s) =>
      s.addService(proto.grpc.apache.rocketmq.v2.MessagingService.service, {
        ReceiveMessage: serverStream<ReceiveMessageRequest__Output, ReceiveMessageResponse>(
          logger,
          'ReceiveMessage',
          (req, _ctx, call) => SCRIPTS[req.group?.name ?? '']!((r) => call.write(r)),
        ),
      }),
    );
    client = new proto.grpc.apache.rocketmq.v2.MessagingService(
      `127.0.0.1:${server.port}`,
      credentials.createInsecure(),
    );
  });
  afterAll(async () => {
    client?.close();
    await server?.close(100);
  });

  const receive = async (group: string, metadata = new Metadata()) => {
    const out: { content?: string; status?: { code: string } }[] = [];
    for await (const r of client.ReceiveMessage({ group: { name: group } }, metadata, {
      deadline: Date.now() + 10_000,
    }))
      out.push(r);
    return out;
  };

  it('a failure after OK and messages ends the stream without a second Status', async () => {
    const got = await receive('fail-after-messages');
    expect(got.map((r) => r.content)).toEqual(['status', 'message']);
    expect(got[0]!.status!.code).toBe('OK');
  });

  it('a server fault is logged at warn with the trace ids of the call metadata', async () => {
    const md = new Metadata();
    md.set('traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    logged.length = 0;
    const got = await receive('server-fault', md);
    expect(got[0]!.status!.code).toBe('INTERNAL_ERROR');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      level: 40,
      method: 'ReceiveMessage',
      err: 'disk on fire',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      span_id: '00f067aa0ba902b7',
    });
    // A client's mistake (TOPIC_NOT_FOUND) is not the server's: not logged.
    await receive('fail-at-once');
    expect(logged).toHaveLength(1);
  });

  it('a failure before anything was written answers its Status', async () => {
    const got = await receive('fail-at-once');
    expect(got.map((r) => r.content)).toEqual(['status']);
    expect(got[0]!.status!.code).toBe('TOPIC_NOT_FOUND');
  });

  it('a handler that succeeds writes its answers unchanged', async () => {
    const got = await receive('ok');
    expect(got.map((r) => r.content)).toEqual(['status', 'message', 'delivery_timestamp']);
  });
});
