/**
 * The REST API end to end against real name server, broker and gateway
 * processes: every endpoint of DESIGN §3, both send modes, the error cases
 * with their statuses and codes, Idempotency-Key, SSE, pull + offsets, the
 * OpenAPI document, and graceful shutdown. The broker does not create topics
 * on first send here, so topics are created through PUT /v1/topics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeInvisibleTimeRequest } from '../../common/generated/sluice/v1/ChangeInvisibleTimeRequest.js';
import type { ChangeInvisibleTimeResponse__Output } from '../../common/generated/sluice/v1/ChangeInvisibleTimeResponse.js';
import type { Empty__Output } from '../../common/generated/sluice/v1/Empty.js';
import type { PopMessagesRequest } from '../../common/generated/sluice/v1/PopMessagesRequest.js';
import type { PopMessagesResponse__Output } from '../../common/generated/sluice/v1/PopMessagesResponse.js';
import type { WakePopsRequest } from '../../common/generated/sluice/v1/WakePopsRequest.js';
import { callUnary } from '../../common/grpc.js';
import { decodeReceiptHandle, encodeReceiptHandle } from '../../common/receipt-handle.js';
import { HaClient } from '../ha/ha-helpers.js';
import { brokerClient } from '../harness/clients.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { api } from './helpers.js';

const MAX_MESSAGE = 64 * 1024;
let c: Cluster;
let a: ReturnType<typeof api>;

async function topic(name: string): Promise<string> {
  const r = await a.put(`/v1/topics/${name}`, { readQueueNums: 2, writeQueueNums: 2 });
  expect(r.status, r.text).toBe(200);
  return name;
}

function expectProblem(
  r: { status: number; headers: Headers; json: any },
  status: number,
  code: number,
) {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.headers.get('content-type')).toContain('application/problem+json');
  expect(r.json.code).toBe(code);
  expect(r.json.status).toBe(status);
}

beforeAll(async () => {
  c = await startCluster({
    brokers: [
      {
        config: {
          autoCreateTopicEnable: false,
          // Undecided transactions come up for check-back quickly.
          transactionTimeOut: 300,
          transactionCheckInterval: 300,
          // Read/write separation: every pull that leaves something behind is "far behind".
          slaveReadEnable: true,
          accessMessageInMemoryMaxRatio: 0,
        },
      },
      { name: 'broker-a', id: 1, role: 'SLAVE', config: { haSyncMetadataInterval: 200 } },
    ],
    gateway: {
      config: {
        maxMessageSize: MAX_MESSAGE,
        maxRequestBytes: 256 * 1024,
        sseHeartbeatMs: 200,
        corsOrigins: 'https://app.example',
        shutdownDrainMs: 1_500,
      },
    },
  });
  a = api(c.http);
  await waitFor('gateway ready', async () => (await a.get('/readyz')).status === 200);
});

afterAll(async () => {
  await c?.close();
});

describe('send', () => {
  it('takes one JSON message, a batch (per-entry results), base64 and raw bodies with x-mq-* headers', async () => {
    const t = await topic('rest-send');
    const one = await a.post(`/v1/topics/${t}/messages`, {
      body: 'one',
      tag: 'A',
      keys: ['k-1'],
      properties: { p: '1' },
    });
    expect(one.status).toBe(200);
    expect(one.json.results[0]).toMatchObject({ status: 'OK', code: 20000, broker: 'broker-a' });

    const batch = await a.post(`/v1/topics/${t}/messages`, {
      messages: [
        { body: 'two' },
        { body: Buffer.from([0xff, 0, 1]).toString('base64'), bodyEncoding: 'base64' },
      ],
    });
    expect(batch.json.results).toHaveLength(2);
    expect(batch.json.results.every((r: any) => r.status === 'OK' && r.messageId)).toBe(true);

    const raw = await a.post(`/v1/topics/${t}/messages`, 'raw body', {
      'content-type': 'text/plain',
      'x-mq-tag': 'R',
      'x-mq-keys': 'rk1,rk2',
      'x-mq-property-color': 'red',
    });
    expect(raw.status).toBe(200);

    const got = await a.post(`/v1/topics/${t}/groups/g/receive`, { max: 32, waitSeconds: 2 });
    const byBody = Object.fromEntries(got.json.messages.map((m: any) => [m.body, m]));
    expect(Object.keys(byBody).sort()).toEqual(['/wAB', 'one', 'raw body', 'two']);
    expect(byBody['/wAB'].bodyEncoding).toBe('base64');
    expect(byBody.one).toMatchObject({
      tag: 'A',
      keys: ['k-1'],
      properties: { p: '1' },
      deliveryAttempt: 1,
    });
    expect(byBody['raw body']).toMatchObject({
      tag: 'R',
      keys: ['rk1', 'rk2'],
      properties: { color: 'red' },
    });
    const acked = await a.post(`/v1/topics/${t}/groups/g/ack`, {
      receiptHandles: got.json.messages.map((m: any) => m.receiptHandle),
    });
    expect(acked.json.results.every((r: any) => r.code === 20000)).toBe(true);
  });

  it('Idempotency-Key: a repeat returns the first result without storing again; concurrent duplicates store once', async () => {
    const t = await topic('rest-idem');
    const h = { 'idempotency-key': 'order-7' };
    const first = await a.post(`/v1/topics/${t}/messages`, { body: 'once' }, h);
    const again = await a.post(`/v1/topics/${t}/messages`, { body: 'once' }, h);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const concurrent = await Promise.all(
      Array.from({ length: 8 }, () =>
        a.post(`/v1/topics/${t}/messages`, { body: 'dup' }, { 'idempotency-key': 'dup-1' }),
      ),
    );
    expect(new Set(concurrent.map((r) => r.json.results[0].messageId)).size).toBe(1);
    const reused = await a.post(`/v1/topics/${t}/messages`, { body: 'different' }, h);
    expectProblem(reused, 400, 40000);
    // Raw mode: the body and the x-mq-* headers make the fingerprint.
    const rawKeyed = { 'content-type': 'text/plain', 'idempotency-key': 'raw-1', 'x-mq-tag': 'A' };
    const rawFirst = await a.post(`/v1/topics/${t}/messages`, 'raw once', rawKeyed);
    const rawAgain = await a.post(`/v1/topics/${t}/messages`, 'raw once', rawKeyed);
    expect(rawAgain.json).toEqual(rawFirst.json);
    expect(rawAgain.headers.get('idempotent-replayed')).toBe('true');
    expectProblem(await a.post(`/v1/topics/${t}/messages`, 'raw other', rawKeyed), 400, 40000);
    expectProblem(
      await a.post(`/v1/topics/${t}/messages`, 'raw once', { ...rawKeyed, 'x-mq-tag': 'B' }),
      400,
      40000,
    );
    const got = await a.post(`/v1/topics/${t}/groups/g/receive`, { max: 32, waitSeconds: 1 });
    expect(got.json.messages.map((m: any) => m.body).sort()).toEqual(['dup', 'once', 'raw once']);
  });

  it('refuses bad input with problem+json naming the field', async () => {
    const t = await topic('rest-bad');
    const malformed = await a.post(`/v1/topics/${t}/messages`, '{"body": ', {
      'content-type': 'application/json',
    });
    expectProblem(malformed, 400, 40000);
    const field = await a.post(`/v1/topics/${t}/messages`, {
      messages: [{ body: 'x' }, { body: 'y', bodyEncoding: 'hex' }],
    });
    expectProblem(field, 400, 40000);
    expect(field.json.field).toBe('messages.1.bodyEncoding');
    const unknown = await a.post(`/v1/topics/${t}/messages`, { body: 'x', tags: 'A' });
    expect(unknown.json.field).toBe('tags');
    expectProblem(await a.post('/v1/topics/bad%20name/messages', { body: 'x' }), 400, 40002);
    expectProblem(
      await a.post(`/v1/topics/${'t'.repeat(128)}/messages`, { body: 'x' }),
      400,
      40002,
    );
    expectProblem(await a.post(`/v1/topics/${t}/groups/bad$group/receive`, {}), 400, 40003);
    expectProblem(await a.post(`/v1/topics/${t}/groups/g/receive`, { max: 33 }), 400, 40000);
    expectProblem(await a.post(`/v1/topics/${t}/messages`, { body: '' }), 400, 41302);
    // Both ways of delaying at once: ambiguous, refused (40012 ILLEGAL_DELIVERY_TIME).
    expectProblem(
      await a.post(`/v1/topics/${t}/messages`, {
        body: 'x',
        deliveryTime: Date.now() + 60_000,
        delaySeconds: 5,
      }),
      400,
      40012,
    );
    expectProblem(
      await a.post(`/v1/topics/${t}/messages`, 'raw', {
        'content-type': 'text/plain',
        'x-mq-delay-seconds': 'soon',
      }),
      400,
      40000,
    );
  });

  it('refuses a body over maxMessageSize with 413 before a broker sees it, and a request over the limit', async () => {
    const t = await topic('rest-big');
    const big = 'x'.repeat(MAX_MESSAGE + 1);
    expectProblem(await a.post(`/v1/topics/${t}/messages`, { body: big }), 413, 41301);
    expectProblem(
      await a.post(`/v1/topics/${t}/messages`, big, { 'content-type': 'application/octet-stream' }),
      413,
      41301,
    );
    expectProblem(
      await a.post(`/v1/topics/${t}/messages`, { body: 'x'.repeat(300 * 1024) }),
      413,
      41300,
    );
    const none = await a.post(`/v1/topics/${t}/groups/g/receive`, {});
    expect(none.json.messages).toEqual([]);
  });

  it('answers 404 for an unknown topic when the broker does not auto-create', async () => {
    expectProblem(await a.post('/v1/topics/rest-nope/messages', { body: 'x' }), 404, 40402);
    expectProblem(await a.post('/v1/topics/rest-nope/groups/g/receive', {}), 404, 40402);
  });
});

describe('consume', () => {
  it('visibility: a new handle; 0 redelivers now; stale handles answer 409, forged ones 400', async () => {
    const t = await topic('rest-vis');
    await a.post(`/v1/topics/${t}/messages`, { body: 'v' });
    const got = await a.post(`/v1/topics/${t}/groups/g/receive`, { waitSeconds: 2 });
    const h1 = got.json.messages[0].receiptHandle;
    const vis = await a.post(`/v1/topics/${t}/groups/g/visibility`, {
      receiptHandle: h1,
      invisibleSeconds: 0,
    });
    expect(vis.status).toBe(200);
    expect(vis.json.receiptHandle).not.toBe(h1);
    const again = await a.post(`/v1/topics/${t}/groups/g/receive`, { waitSeconds: 5 });
    expect(again.json.messages[0]).toMatchObject({ body: 'v', deliveryAttempt: 2 });
    expectProblem(
      await a.post(`/v1/topics/${t}/groups/g/visibility`, {
        receiptHandle: h1,
        invisibleSeconds: 30,
      }),
      409,
      40013,
    );
    const forged = `${h1.split('.')[0]}.AAAAAAAAAAAAAAAAAAAAAA`;
    expectProblem(
      await a.post(`/v1/topics/${t}/groups/g/visibility`, {
        receiptHandle: forged,
        invisibleSeconds: 30,
      }),
      400,
      40013,
    );
    expectProblem(
      await a.post(`/v1/topics/${t}/groups/g/dead-letter`, { receiptHandle: 'garbage' }),
      400,
      40013,
    );
    // The gateway routes acks by the handle's broker name and leaves the MAC to
    // that broker; a forged handle naming a broker nobody knows is still
    // INVALID_RECEIPT_HANDLE, not "unavailable".
    const live = again.json.messages[0].receiptHandle;
    const forgedLive = `${live.split('.')[0]}.AAAAAAAAAAAAAAAAAAAAAA`;
    const nowhere = encodeReceiptHandle(
      { ...decodeReceiptHandle(live), brokerName: 'broker-nowhere' },
      'not-the-cluster-secret',
    );
    const ack = await a.post(`/v1/topics/${t}/groups/g/ack`, {
      receiptHandles: [forgedLive, nowhere, live, 'garbage'],
    });
    expect(ack.json.results.map((r: any) => r.code)).toEqual([40013, 40013, 20000, 40013]);
  });

  it('a handle whose invisible time ran out is stale: ack and visibility answer 409', async () => {
    const t = await topic('rest-expire');
    await a.post(`/v1/topics/${t}/messages`, { body: 'slow consumer' });
    const got = await a.post(`/v1/topics/${t}/groups/g/receive`, { waitSeconds: 2 });
    // Shorten its invisible time to 1 s, then let it run out: the message comes again.
    const vis = await a.post(`/v1/topics/${t}/groups/g/visibility`, {
      receiptHandle: got.json.messages[0].receiptHandle,
      invisibleSeconds: 1,
    });
    const expired = vis.json.receiptHandle;
    const again = await a.post(`/v1/topics/${t}/groups/g/receive`, { waitSeconds: 10 });
    expect(again.json.messages[0]).toMatchObject({ body: 'slow consumer', deliveryAttempt: 2 });
    const ack = await a.post(`/v1/topics/${t}/groups/g/ack`, { receiptHandles: [expired] });
    expect(ack.status).toBe(200);
    expect(ack.json.results[0]).toMatchObject({ code: 40013, status: 'INVALID_RECEIPT_HANDLE' });
    expectProblem(
      await a.post(`/v1/topics/${t}/groups/g/visibility`, {
        receiptHandle: expired,
        invisibleSeconds: 30,
      }),
      409,
      40013,
    );
    const fresh = await a.post(`/v1/topics/${t}/groups/g/ack`, {
      receiptHandles: [again.json.messages[0].receiptHandle],
    });
    expect(fresh.json.results[0].code).toBe(20000);
  });

  it('dead-letter moves a received message to %DLQ%group now', async () => {
    const t = await topic('rest-dlq');
    await a.post(`/v1/topics/${t}/messages`, { body: 'poison' });
    const got = await a.post(`/v1/topics/${t}/groups/g/receive`, { waitSeconds: 2 });
    const r = await a.post(`/v1/topics/${t}/groups/g/dead-letter`, {
      receiptHandle: got.json.messages[0].receiptHandle,
    });
    expect(r.status, r.text).toBe(200);
    expect(r.json.deadLetterTopic).toBe('%DLQ%g');
    const ack = await a.post(`/v1/topics/${t}/groups/g/ack`, {
      receiptHandles: [got.json.messages[0].receiptHandle],
    });
    expect(ack.json.results[0].code).toBe(40013);
  });

  it('a waiting long poll answers as soon as a message arrives', async () => {
    const t = await topic('rest-poll');
    const started = Date.now();
    const pending = a.post(`/v1/topics/${t}/groups/g/receive`, { waitSeconds: 20 });
    await new Promise((r) => setTimeout(r, 300));
    const sentAt = Date.now();
    await a.post(`/v1/topics/${t}/messages`, { body: 'late' });
    const got = await pending;
    expect(got.json.messages[0].body).toBe('late');
    expect(Date.now() - sentAt).toBeLessThan(1_500);
    const empty = Date.now();
    const none = await a.post(`/v1/topics/${t}/groups/g2/receive`, {
      waitSeconds: 0.5,
      filter: { expression: 'Nope' },
    });
    expect(none.json.messages).toEqual([]);
    expect(Date.now() - empty).toBeGreaterThanOrEqual(400);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('streams messages as server-sent events with heartbeats', async () => {
    const t = await topic('rest-sse');
    const ac = new AbortController();
    const res = await fetch(`${c.http}/v1/topics/${t}/groups/g/stream?autoAck=true`, {
      signal: ac.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const read = async (until: (s: string) => boolean) => {
      while (!until(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    };
    await read((s) => s.includes(': heartbeat'));
    await a.post(`/v1/topics/${t}/messages`, { body: 'streamed' });
    await read((s) => s.includes('event: message'));
    const event = text.split('\n\n').find((e) => e.includes('event: message'))!;
    const data = event
      .split('\n')
      .find((l) => l.startsWith('data: '))!
      .slice('data: '.length);
    expect(event).toMatch(/^id: \S+$/m);
    expect(JSON.parse(data)).toMatchObject({ body: 'streamed', deliveryAttempt: 1 });
    ac.abort();
    expectProblem(await a.get('/v1/topics/rest-nope/groups/g/stream'), 404, 40402);
  });
});

describe('pull and offsets', () => {
  it('pulls a queue from an offset and commits and reads group offsets', async () => {
    const t = await topic('rest-pull');
    const sent = await a.post(`/v1/topics/${t}/messages`, {
      messages: [{ body: 'p0' }, { body: 'p1' }, { body: 'p2' }],
    });
    const q = sent.json.results[0].queueId;
    const pulled = await a.post(`/v1/topics/${t}/groups/reader/pull`, {
      queueId: q,
      offset: 0,
      max: 32,
    });
    expect(pulled.status, pulled.text).toBe(200);
    expect(pulled.json.broker).toBe('broker-a');
    expect(pulled.json.messages.length).toBeGreaterThan(0);
    expect(pulled.json.messages[0].receiptHandle).toBeUndefined();
    const next = pulled.json.nextOffset;
    expect(next).toBe(pulled.json.messages.at(-1).offset + 1);
    const waitStart = Date.now();
    const empty = await a.post(`/v1/topics/${t}/groups/reader/pull`, {
      queueId: q,
      offset: next,
      waitSeconds: 0.3,
    });
    expect(empty.json.messages).toEqual([]);
    expect(Date.now() - waitStart).toBeGreaterThanOrEqual(250);
    const put = await a.put(`/v1/topics/${t}/groups/reader/offsets`, {
      offsets: [
        { queueId: q, offset: next },
        { queueId: 99, offset: 0 },
      ],
    });
    expect(put.json.results.map((r: any) => r.code)).toEqual([20000, 40000]);
    const offsets = await a.get(`/v1/topics/${t}/groups/reader/offsets`);
    expect(offsets.json.offsets).toContainEqual({ broker: 'broker-a', queueId: q, offset: next });
    expectProblem(await a.post(`/v1/topics/${t}/groups/reader/pull`, { queueId: 0 }), 400, 40000);
  });
});

describe('read/write separation', () => {
  it("follows the master's pull advice: a far-behind reader's next pull is served by the slave", async () => {
    const r = await a.put('/v1/topics/rest-pull-slave', { readQueueNums: 1, writeQueueNums: 1 });
    expect(r.status, r.text).toBe(200);
    const t = 'rest-pull-slave';
    const sent = await a.post(`/v1/topics/${t}/messages`, {
      messages: Array.from({ length: 6 }, (_, i) => ({ body: `r${i}` })),
    });
    expect(sent.json.results.every((x: any) => x.code === 20000)).toBe(true);
    const slave = new HaClient(c.brokers[1]!.addr);
    try {
      await waitFor('slave has the messages', async () => {
        const got = await slave.pull(t, 0, 0, 32).catch(() => undefined);
        return got?.messages.length === 6 || undefined;
      });
    } finally {
      slave.close();
    }
    const pull = (offset: number) =>
      a.post(`/v1/topics/${t}/groups/reader-rw/pull`, { queueId: 0, offset, max: 2 });
    const first = await pull(0);
    expect(first.status, first.text).toBe(200);
    expect(first.json).toMatchObject({ broker: 'broker-a', brokerId: 0 });
    expect(first.json.messages.map((m: any) => m.body)).toEqual(['r0', 'r1']);
    const second = await pull(first.json.nextOffset);
    expect(second.status, second.text).toBe(200);
    expect(second.json).toMatchObject({ broker: 'broker-a', brokerId: 1 });
    expect(second.json.messages.map((m: any) => m.body)).toEqual(['r2', 'r3']);
  });
});

describe('broker contract the receive path relies on', () => {
  it('WakePops ends a waiting pop (also one woken before it arrived); a released delivery does not count as an attempt', async () => {
    const t = await topic('rest-wake');
    const b = brokerClient(c.brokers[0]!.addr);
    try {
      const pop = (attemptId: string, waitMs: number) =>
        callUnary<PopMessagesRequest, PopMessagesResponse__Output>(
          b,
          b.PopMessages,
          {
            consumer_group: 'wake',
            topic: t,
            queue_id: -1,
            max_messages: 8,
            invisible_ms: 60_000,
            max_wait_ms: waitMs,
            filter: { type: 'TAG', expression: '*' },
            attempt_id: attemptId,
          },
          waitMs + 5_000,
        );
      const wake = (ids: string[]) =>
        callUnary<WakePopsRequest, Empty__Output>(b, b.WakePops, { attempt_ids: ids });
      let started = Date.now();
      const waiting = pop('w-1', 20_000);
      await new Promise((r) => setTimeout(r, 200));
      await wake(['w-1']);
      expect((await waiting).messages).toEqual([]);
      expect(Date.now() - started).toBeLessThan(5_000);
      await wake(['w-2']);
      started = Date.now();
      expect((await pop('w-2', 20_000)).messages).toEqual([]);
      expect(Date.now() - started).toBeLessThan(5_000);

      await a.post(`/v1/topics/${t}/messages`, { body: 'handed back' });
      const first = (await pop('', 5_000)).messages;
      expect(first.map((m) => m.delivery_attempt)).toEqual([1]);
      const released = await callUnary<
        ChangeInvisibleTimeRequest,
        ChangeInvisibleTimeResponse__Output
      >(b, b.ChangeInvisibleTime, {
        consumer_group: 'wake',
        topic: t,
        entries: [{ receipt_handle: first[0]!.receipt_handle, invisible_ms: 0, release: true }],
      });
      expect(released.results[0]!.status!.code).toBe(20000);
      const again = await waitFor('handed back message', async () => {
        const m = (await pop('', 1_000)).messages;
        return m.length > 0 ? m : undefined;
      });
      expect(again.map((m) => [m.message?.message_id, m.delivery_attempt])).toEqual([
        [first[0]!.message?.message_id, 1],
      ]);
    } finally {
      b.close();
    }
  });
});

describe('transactions', () => {
  const receiveAll = async (t: string, group: string, waitSeconds: number) => {
    const r = await a.post(`/v1/topics/${t}/groups/${group}/receive`, { max: 32, waitSeconds });
    expect(r.status, r.text).toBe(200);
    return r.json.messages as any[];
  };

  it('commit makes a half message receivable; a rolled-back one never arrives', async () => {
    const t = await topic('rest-tx');
    const send = async (body: string) => {
      const sent = await a.post(`/v1/topics/${t}/messages`, { body, transactional: true });
      expect(sent.status, sent.text).toBe(200);
      const r = sent.json.results[0];
      expect(r.transactionId).toBeTruthy();
      return r;
    };
    const kept = await send('kept');
    const dropped = await send('dropped');
    // Half messages are invisible until decided.
    expect(await receiveAll(t, 'g', 0.3)).toEqual([]);

    const commit = await a.post(`/v1/transactions/${kept.transactionId}/commit`, {
      topic: t,
      messageId: kept.messageId,
    });
    expect(commit.status, commit.text).toBe(200);
    expect(commit.json).toMatchObject({
      code: 20000,
      transactionId: kept.transactionId,
      broker: 'broker-a',
    });
    const rollback = await a.post(`/v1/transactions/${dropped.transactionId}/rollback`, {
      topic: t,
      messageId: dropped.messageId,
      broker: dropped.broker,
    });
    expect(rollback.status, rollback.text).toBe(200);

    const got = await waitFor('committed message', async () => {
      const m = await receiveAll(t, 'g', 1);
      return m.length > 0 ? m : undefined;
    });
    expect(got.map((m) => m.body)).toEqual(['kept']);
    // Let time pass: the rolled-back one must not turn up (nor be offered for check-back).
    expect(await receiveAll(t, 'g', 1.5)).toEqual([]);
    expect((await a.get(`/v1/transactions/orphans?topic=${t}`)).json.transactions).toEqual([]);
    // A decision must name the message.
    const bad = await a.post('/v1/transactions/x/rollback', { topic: t });
    expectProblem(bad, 400, 40000);
  });

  it('check-back over REST: an undecided transaction is listed for its producer, who then commits it', async () => {
    const t = await topic('rest-tx-check');
    const other = await topic('rest-tx-other');
    const sent = await a.post(`/v1/topics/${t}/messages`, {
      body: 'undecided',
      transactional: true,
    });
    const r = sent.json.results[0];
    await a.post(`/v1/topics/${other}/messages`, { body: 'elsewhere', transactional: true });
    const listed = await waitFor('orphan listed', async () => {
      const x = await a.get(`/v1/transactions/orphans?topic=${t}&max=10`);
      expect(x.status, x.text).toBe(200);
      return x.json.transactions.length > 0 ? x.json.transactions : undefined;
    });
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      transactionId: r.transactionId,
      messageId: r.messageId,
      topic: t,
      broker: 'broker-a',
      message: { body: 'undecided', messageId: r.messageId },
    });
    expect(listed[0].checkTimes).toBeGreaterThanOrEqual(1);
    const commit = await a.post(`/v1/transactions/${listed[0].transactionId}/commit`, {
      topic: t,
      messageId: listed[0].messageId,
      broker: listed[0].broker,
    });
    expect(commit.status, commit.text).toBe(200);
    const got = await waitFor('committed after check-back', async () => {
      const m = await receiveAll(t, 'g', 1);
      return m.length > 0 ? m : undefined;
    });
    expect(got.map((m) => m.body)).toEqual(['undecided']);
    expectProblem(await a.get('/v1/transactions/orphans?topic=rest-nope'), 404, 40402);
    expectProblem(await a.get('/v1/transactions/orphans'), 400, 40000);
  });
});

describe('admin and query', () => {
  it('cluster, topics, route, group progress, message by id and by key; topics can be deleted', async () => {
    const t = await topic('rest-admin');
    const cluster = await a.get('/v1/cluster');
    expect(cluster.json.clusters).toEqual({ DefaultCluster: ['broker-a'] });
    expect(cluster.json.brokers[0].addrs['0']).toBe(c.brokers[0]!.addr);
    expect((await a.get('/v1/topics')).json.topics).toContain(t);
    const route = await a.get(`/v1/topics/${t}/route`);
    expect(route.json.queues[0]).toMatchObject({
      broker: 'broker-a',
      readQueueNums: 2,
      writeQueueNums: 2,
      perm: 6,
    });

    const sent = await a.post(`/v1/topics/${t}/messages`, { body: 'find me', keys: ['order-9'] });
    const id = sent.json.results[0].messageId;
    const byId = await waitFor('message by id', async () => {
      const r = await a.get(`/v1/messages/${id}?topic=${t}`);
      return r.status === 200 ? r : undefined;
    });
    expect(byId.json).toMatchObject({ messageId: id, body: 'find me' });
    const byKey = await waitFor('message by key', async () => {
      const r = await a.get(`/v1/topics/${t}/messages?key=order-9`);
      return r.json?.messages?.length ? r : undefined;
    });
    expect(byKey.json.messages[0].messageId).toBe(id);
    expectProblem(await a.get(`/v1/messages/NOPE0000?topic=${t}`), 404, 40401);

    const got = await a.post(`/v1/topics/${t}/groups/prog/receive`, { waitSeconds: 2 });
    await a.post(`/v1/topics/${t}/groups/prog/ack`, {
      receiptHandles: [got.json.messages[0].receiptHandle],
    });
    await a.put(`/v1/topics/${t}/groups/prog/offsets`, { offsets: [{ queueId: 0, offset: 0 }] });
    const progress = await a.get(`/v1/groups/prog/progress?topic=${t}`);
    expect(progress.status, progress.text).toBe(200);
    expect(progress.json.queues.length).toBeGreaterThan(0);
    expectProblem(await a.get('/v1/groups/nobody-here/progress'), 404, 40403);

    expect((await a.del(`/v1/topics/${t}`)).status).toBe(204);
    await waitFor('topic gone', async () => !(await a.get('/v1/topics')).json.topics.includes(t));
    expectProblem(await a.get(`/v1/topics/${t}/route`), 404, 40402);
  });
});

describe('operations', () => {
  it('serves an OpenAPI 3.1 document with every route, /docs, /metrics, /healthz, /readyz and CORS', async () => {
    const doc = (await a.get('/openapi.json')).json;
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBeTruthy();
    const ops = Object.entries(doc.paths).flatMap(([p, m]: [string, any]) =>
      Object.keys(m).map((x) => `${x.toUpperCase()} ${p}`),
    );
    for (const op of [
      'POST /v1/topics/{topic}/messages',
      'POST /v1/topics/{topic}/groups/{group}/receive',
      'POST /v1/topics/{topic}/groups/{group}/ack',
      'POST /v1/topics/{topic}/groups/{group}/visibility',
      'POST /v1/topics/{topic}/groups/{group}/dead-letter',
      'POST /v1/topics/{topic}/groups/{group}/pull',
      'PUT /v1/topics/{topic}/groups/{group}/offsets',
      'GET /v1/topics/{topic}/groups/{group}/stream',
      'POST /v1/transactions/{transactionId}/commit',
      'POST /v1/transactions/{transactionId}/rollback',
      'GET /v1/transactions/orphans',
      'GET /v1/cluster',
      'GET /v1/topics',
      'PUT /v1/topics/{topic}',
      'DELETE /v1/topics/{topic}',
      'GET /v1/topics/{topic}/route',
      'GET /v1/groups/{group}/progress',
      'GET /v1/messages/{id}',
      'GET /v1/topics/{topic}/messages',
      'GET /openapi.json',
      'GET /docs',
      'GET /healthz',
      'GET /readyz',
      'GET /metrics',
    ]) {
      expect(ops).toContain(op);
    }
    for (const op of Object.values(doc.paths).flatMap((m: any) => Object.values(m)) as any[]) {
      expect(op.responses).toBeTruthy();
      expect(op.summary).toBeTruthy();
    }
    expect(doc.components.schemas.SendMessage.properties.bodyEncoding.enum).toEqual([
      'utf8',
      'base64',
    ]);
    const docs = await a.get('/docs');
    expect(docs.headers.get('content-type')).toContain('text/html');
    expect(docs.text).toContain('/v1/topics/{topic}/groups/{group}/receive');
    const metrics = await a.get('/metrics');
    expect(metrics.text).toContain('sluice_gateway_http_requests_total');
    expect((await a.get('/healthz')).json).toEqual({ status: 'ok' });
    expect((await a.get('/readyz')).json).toEqual({ ready: true, namesrv: true, broker: true });
    const pre = await fetch(`${c.http}/v1/topics/x/messages`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'idempotency-key,x-mq-tag',
      },
    });
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expectProblem(await a.get('/v1/nothing'), 404, 40400);
  });

  it('shuts down gracefully: not ready during the drain while still serving, then a waiting long poll gets its answer and the process exits 0', async () => {
    const t = await topic('rest-bye');
    const idle = await topic('rest-bye-idle');
    const waiting = () =>
      a.get('/metrics').then((m) => /sluice_gateway_long_polls_waiting [2-9]/.test(m.text));
    const pending = a.post(`/v1/topics/${t}/groups/g/receive`, { waitSeconds: 20 });
    const empty = a.post(`/v1/topics/${idle}/groups/g/receive`, { waitSeconds: 20 });
    await waitFor('long polls waiting', waiting);
    const gw = c.gateway!;
    const exited = gw.child.waitExit();
    const termAt = Date.now();
    gw.child.kill('SIGTERM').catch(() => undefined);
    // Drain: /readyz says no at once, yet requests are still served and the poll still waits.
    await waitFor('not ready', async () => (await a.get('/readyz')).status === 503);
    const during = await a.post(`/v1/topics/${t}/messages`, { body: 'during drain' });
    expect(during.status, during.text).toBe(200);
    const got = await pending;
    expect(got.status).toBe(200);
    expect(got.json.messages.map((m: any) => m.body)).toEqual(['during drain']);
    // After the drain the other poll answers at once with what it has (nothing).
    const none = await empty;
    expect(none.status).toBe(200);
    expect(none.json.messages).toEqual([]);
    expect(Date.now() - termAt).toBeGreaterThanOrEqual(1_400);
    expect(Date.now() - termAt).toBeLessThan(15_000);
    expect(await exited).toBe(0);
  });
});
