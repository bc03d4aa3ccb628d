/**
 * Send (batches, per-entry results, queue choice, properties), pull (long
 * polling, tag filters, clustering and broadcasting offsets, reset by time)
 * and queries (by id, key, queue offset).
 */
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compactSendEntries } from '../../common/compact-messages.js';
import { COMPACT_SEND_ENTRIES_FROM, sendEntries } from '../../common/compact-send-results.js';
import type { SendEntry } from '../../common/generated/sluice/v1/SendEntry.js';
import type { SendMessagesRequest } from '../../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse__Output } from '../../common/generated/sluice/v1/SendMessagesResponse.js';
import { callUnary, startGrpcServer } from '../../common/grpc.js';
import { sluiceProto } from '../../common/proto.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { BrokerApi, body, OK, popAtLeast } from './broker-api.js';

function javaHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

describe('send, pull and queries', () => {
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

  it('answers each entry of a batch on its own', async () => {
    const res = await api.send('sp1', [
      { body: Buffer.from('fine') },
      { body: Buffer.alloc(4096) },
      { body: Buffer.from('reserved'), properties: { __secret: 'x' } },
      { body: Buffer.from('bad tag'), tag: 'a||b' },
      { body: Buffer.from('also fine'), tag: 'T' },
      { body: Buffer.from('system'), topic: 'rmq_sys_wheel_timer' },
    ]);
    expect(res.map((r) => r.status!.code)).toEqual([OK, 41301, 40007, 40004, OK, 40002]);
    expect(res[0]!.message_id).toMatch(/^[0-9A-F]{32}$/);
    expect(res[0]!.offset_message_id).not.toBe('');
  });

  it('stores compact entries exactly as it stores entries; refuses malformed columns, storing nothing', async () => {
    const entries = (tag: string): SendEntry[] =>
      ['a', 'ünï', '', 'b', 'c', 'd', 'e', 'f', 'g'].map((b, i) => ({
        message: {
          topic: 'sp-compact',
          body: Buffer.from(b),
          tag,
          keys: [`key-${i}`],
          properties: { color: i % 2 ? 'red' : 'blue' },
          message_group: '',
          born_timestamp_ms: 1_764_000_000_000 + i,
          born_host: '10.0.0.9:4000',
        },
        queue_id: 0,
      }));
    const rpc = (req: SendMessagesRequest) =>
      callUnary<SendMessagesRequest, SendMessagesResponse__Output>(
        api.client,
        api.client.SendMessages,
        req,
      );
    let calls = 0;
    const viaCompact = await sendEntries((req) => {
      calls++;
      expect(req.compact_entries).toBeDefined();
      return rpc(req);
    }, entries('C'));
    expect(calls).toBe(1);
    expect(viaCompact.map((r) => r.status!.code)).toEqual(Array(9).fill(OK));
    const full = (await rpc({ entries: entries('F') })).results;
    expect(full.map((r) => r.status!.code)).toEqual(Array(9).fill(OK));

    const stored = await api.readAll('sp-compact', 0);
    expect(stored).toHaveLength(18);
    const fields = (m: (typeof stored)[number]) => {
      const { body: b, topic, keys, properties, born_timestamp_ms, born_host } = m.message!;
      return { body: b.toString(), topic, keys, properties, born_timestamp_ms, born_host };
    };
    expect(stored.slice(0, 9).map(fields)).toEqual(stored.slice(9).map(fields));
    expect(stored.map((m) => m.message!.tag)).toEqual([
      ...Array(9).fill('C'),
      ...Array(9).fill('F'),
    ]);
    expect(stored[1]!.message!.body.toString()).toBe('ünï');
    expect(stored.slice(0, 9).map((m) => m.message!.message_id)).toEqual(
      viaCompact.map((r) => r.message_id),
    );

    const broken = compactSendEntries(entries('X'))!;
    broken.body_lengths[0]! += 1;
    await expect(rpc({ compact_entries: broken })).rejects.toMatchObject({ code: 40000 });
    expect(await api.readAll('sp-compact', 0)).toHaveLength(18);
  });

  it('a broker that ignores compact entries gets the batch again as entries', async () => {
    // A broker from before compact_entries: it reads `entries` only.
    const seen: number[] = [];
    const old = await startGrpcServer('127.0.0.1', 0, [], (server) =>
      server.addService(sluiceProto().grpc.sluice.v1.Broker.service, {
        SendMessages: (
          call: ServerUnaryCall<{ entries: SendEntry[] }, unknown>,
          cb: sendUnaryData<unknown>,
        ) => {
          seen.push(call.request.entries.length);
          cb(null, {
            results: call.request.entries.map((_, i) => ({
              status: { code: OK, message: 'OK' },
              message_id: `ID${i}`,
            })),
          });
        },
      }),
    );
    const client = new BrokerApi(`127.0.0.1:${old.port}`).client;
    try {
      const send = (n: number) =>
        sendEntries(
          (req) =>
            callUnary<SendMessagesRequest, SendMessagesResponse__Output>(
              client,
              client.SendMessages,
              req,
            ),
          Array.from({ length: n }, (_, i) => ({
            message: { topic: 't', body: Buffer.from(`m${i}`) },
            queue_id: -1,
          })),
        );
      const results = await send(COMPACT_SEND_ENTRIES_FROM);
      expect(seen).toEqual([0, COMPACT_SEND_ENTRIES_FROM]);
      expect(results.map((r) => r.message_id)).toEqual(
        Array.from({ length: COMPACT_SEND_ENTRIES_FROM }, (_, i) => `ID${i}`),
      );
      // Smaller batches go as entries at once.
      seen.length = 0;
      expect(await send(2)).toHaveLength(2);
      expect(seen).toEqual([2]);
    } finally {
      client.close();
      await old.close();
    }
  });

  it('spreads messages round robin over the queues; a message group pins one queue', async () => {
    await api.updateTopic({ topic_name: 'sp2', read_queue_nums: 4, write_queue_nums: 4, perm: 6 });
    const rr = await api.sendOk(
      'sp2',
      Array.from({ length: 8 }, () => ({ body: Buffer.from('r') })),
    );
    const counts = [0, 0, 0, 0];
    for (const r of rr) counts[r.queue_id]!++;
    expect(counts).toEqual([2, 2, 2, 2]);
    // In runs: consecutive entries share a queue and its consecutive offsets,
    // so a queue's messages lie together in the commitlog.
    const first = rr[0]!.queue_id;
    expect(rr.map((r) => r.queue_id)).toEqual(
      Array.from({ length: 8 }, (_, i) => (first + Math.floor(i / 2)) % 4),
    );
    for (let i = 1; i < 8; i += 2) {
      expect(rr[i]!.queue_offset).toBe(rr[i - 1]!.queue_offset + 1);
    }
    // Single sends go on round the queues where the batch left off.
    const singles: number[] = [];
    for (let i = 0; i < 4; i++) {
      singles.push((await api.sendOk('sp2', [{ body: Buffer.from('s') }]))[0]!.queue_id);
    }
    expect(singles).toEqual([0, 1, 2, 3].map((i) => (first + i) % 4));
    const grouped = await api.sendOk(
      'sp2',
      Array.from({ length: 6 }, () => ({ body: Buffer.from('g'), message_group: 'order-42' })),
    );
    const expected = Math.abs(javaHash('order-42')) % 4;
    expect(grouped.every((r) => r.queue_id === expected)).toBe(true);
    // Offsets in the pinned queue follow send order.
    const offsets = grouped.map((r) => r.queue_offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  });

  it('keeps tag, keys, properties and message group; finds messages by id, key and queue offset', async () => {
    const [r] = await api.sendOk('sp3', [
      {
        body: Buffer.from('payload'),
        tag: 'TagA',
        keys: ['order-1', 'user-7'],
        properties: { color: 'blue' },
        message_group: 'grp',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      },
    ]);
    const check = (m: (typeof byId)[number]) => {
      expect(body(m)).toBe('payload');
      expect(m.message!.tag).toBe('TagA');
      expect(m.message!.keys).toEqual(['order-1', 'user-7']);
      expect(m.message!.properties).toEqual({ color: 'blue' });
      expect(m.message!.message_group).toBe('grp');
      expect(m.message!.traceparent).toMatch(/^00-0af7/);
    };
    const byId = await api.queryById('sp3', r!.message_id);
    expect(byId).toHaveLength(1);
    check(byId[0]!);
    const byOffsetId = await api.queryById('sp3', r!.offset_message_id);
    expect(byOffsetId[0]!.message!.message_id).toBe(r!.message_id);
    const byKey = await api.queryByKey('sp3', 'user-7');
    expect(byKey.map((m) => m.message!.message_id)).toEqual([r!.message_id]);
    const byOffset = await api.queryByOffset('sp3', r!.queue_id, r!.queue_offset);
    check(byOffset[0]!);
    expect(await api.queryByOffset('sp3', r!.queue_id, r!.queue_offset + 1)).toEqual([]);
  });

  it('long-polls a pull: it answers as soon as a message arrives', async () => {
    await api.updateTopic({ topic_name: 'sp4', read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
    const pending = api.pull({ topic: 'sp4', queue_id: 0, offset: 0, max_wait_ms: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    const sentAt = Date.now();
    await api.sendOk('sp4', [{ body: Buffer.from('wake') }]);
    const res = await pending;
    expect(res.messages.map(body)).toEqual(['wake']);
    expect(Date.now() - sentAt).toBeLessThan(1_000);
    expect(res.next_offset).toBe(1);
    // Nothing more: an empty pull with a short wait answers MESSAGE_NOT_FOUND.
    const empty = await api.pull({ topic: 'sp4', queue_id: 0, offset: 1, max_wait_ms: 100 });
    expect(empty.status!.code).toBe(40401);
  });

  it('filters a pull by tag (hash in the consume queue, then the string)', async () => {
    await api.updateTopic({ topic_name: 'sp5', read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
    await api.sendOk('sp5', [
      { body: Buffer.from('1'), tag: 'A' },
      { body: Buffer.from('2'), tag: 'B' },
      { body: Buffer.from('3'), tag: 'C' },
      { body: Buffer.from('4') },
      { body: Buffer.from('5'), tag: 'A' },
    ]);
    const res = await api.pull({
      topic: 'sp5',
      queue_id: 0,
      offset: 0,
      filter: { expression: 'A || C' },
    });
    expect(res.messages.map(body)).toEqual(['1', '3', '5']);
    expect(res.next_offset).toBe(5);
  });

  it('shares group offsets between clustering consumers and keeps per-consumer offsets when broadcasting', async () => {
    await api.updateTopic({ topic_name: 'sp6', read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
    await api.sendOk(
      'sp6',
      Array.from({ length: 6 }, (_, i) => ({ body: Buffer.from(String(i)) })),
    );
    // Clustering: consumer 1 reads 3 and commits; consumer 2 continues from the group's offset.
    const c1 = await api.pull({
      consumer_group: 'cl',
      topic: 'sp6',
      queue_id: 0,
      from_stored_offset: true,
      max_messages: 3,
    });
    expect(c1.messages.map(body)).toEqual(['0', '1', '2']);
    await api.pull({
      consumer_group: 'cl',
      topic: 'sp6',
      queue_id: 0,
      offset: 3,
      commit_offset: 3,
      max_messages: 1,
    });
    const c2 = await api.pull({
      consumer_group: 'cl',
      topic: 'sp6',
      queue_id: 0,
      from_stored_offset: true,
    });
    expect(c2.messages.map(body)).toEqual(['3', '4', '5']);
    expect((await api.offsets('cl', 'sp6')).find((o) => o.queue_id === 0)!.offset).toBe(3);

    // Broadcasting: each consumer has its own offset and reads everything.
    const bc = (client: string, offset: number, commit = -1) =>
      api.pull({
        consumer_group: 'bc',
        topic: 'sp6',
        queue_id: 0,
        broadcast: true,
        client_id: client,
        from_stored_offset: offset < 0,
        offset: Math.max(0, offset),
        commit_offset: commit,
      });
    expect((await bc('a', -1)).messages).toHaveLength(6);
    await bc('a', 6, 6);
    expect((await bc('a', -1)).messages).toHaveLength(0);
    expect((await bc('b', -1)).messages.map(body)).toEqual(['0', '1', '2', '3', '4', '5']);
    expect((await api.offsets('bc', 'sp6', 'a'))[0]!.offset).toBe(6);
    expect(await api.offsets('bc', 'sp6', 'b')).toEqual([]);
    // A group that does not allow broadcasting refuses it.
    await api.updateGroup({
      group_name: 'nobc',
      consume_enable: true,
      consume_broadcast_enable: false,
    });
    await expect(
      api.pull({
        consumer_group: 'nobc',
        topic: 'sp6',
        queue_id: 0,
        broadcast: true,
        client_id: 'x',
      }),
    ).rejects.toMatchObject({ code: 40300 });
  });

  it('resets a group to a point in time, for pull and pop consumers', async () => {
    await api.updateTopic({ topic_name: 'sp7', read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
    await api.sendOk(
      'sp7',
      Array.from({ length: 5 }, (_, i) => ({ body: Buffer.from(`old${i}`) })),
    );
    await new Promise((r) => setTimeout(r, 30));
    const t = Date.now();
    await new Promise((r) => setTimeout(r, 30));
    await api.sendOk(
      'sp7',
      Array.from({ length: 5 }, (_, i) => ({ body: Buffer.from(`new${i}`) })),
    );
    const popped = await popAtLeast(api, 'rs', 'sp7', 10);
    await api.ack(
      'rs',
      'sp7',
      popped.map((m) => m.receipt_handle),
    );
    expect(await api.pop('rs', 'sp7', { waitMs: 0 })).toEqual([]);

    const reset = await api.resetOffsetByTime('rs', 'sp7', t);
    expect(reset).toEqual([{ topic: 'sp7', queue_id: 0, offset: 5 }]);
    const again = await popAtLeast(api, 'rs', 'sp7', 5);
    expect(again.map(body)).toEqual(['new0', 'new1', 'new2', 'new3', 'new4']);
    expect(
      (
        await api.pull({
          consumer_group: 'rs',
          topic: 'sp7',
          queue_id: 0,
          from_stored_offset: true,
          max_messages: 1,
        })
      ).messages.map(body),
    ).toEqual(['new0']);
  });
});
