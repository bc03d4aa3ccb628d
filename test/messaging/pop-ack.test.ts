/**
 * Pop / ack / change-invisible against a real broker: HMAC receipt handles,
 * redelivery through %RETRY%{group} with deliveryAttempt + 1 (never before
 * the invisible time), tag filters on new messages and on retries, explicit
 * dead-lettering, and consumer progress.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messagesOf } from '../../common/compact-messages.js';
import { decodeReceiptHandle, encodeReceiptHandle } from '../../common/receipt-handle.js';
import { brokerStats } from '../harness/clients.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { BrokerApi, body, OK, popAtLeast } from './broker-api.js';

describe('pop / ack / change-invisible', () => {
  let c: Cluster;
  let api: BrokerApi;
  beforeAll(async () => {
    c = await startCluster({ brokers: [{}] });
    api = new BrokerApi(c.brokers[0]!.addr);
  });
  afterAll(async () => {
    api?.close();
    await c?.close();
  });

  it('acks settle a message for good; a second ack is stale and a forged handle is refused', async () => {
    await api.sendOk('pa1', [{ body: Buffer.from('one') }, { body: Buffer.from('two') }]);
    const got = await popAtLeast(api, 'g', 'pa1', 2);
    expect(got.map(body).sort()).toEqual(['one', 'two']);
    expect(got.every((m) => m.delivery_attempt === 1 && m.receipt_handle.length > 0)).toBe(true);
    const handles = got.map((m) => m.receipt_handle);
    expect((await api.ack('g', 'pa1', handles)).map((s) => s.code)).toEqual([OK, OK]);

    const again = await api.ack('g', 'pa1', [handles[0]!]);
    expect(again[0]!.code).toBe(40013);
    expect(again[0]!.reason).toBe('RECEIPT_HANDLE_EXPIRED');

    // Same fields, wrong key: the signature does not match.
    const forged = encodeReceiptHandle(decodeReceiptHandle(handles[1]!), 'not-the-secret');
    const refused = await api.ack('g', 'pa1', [forged, 'garbage']);
    expect(refused.map((s) => s.code)).toEqual([40013, 40013]);
    expect(refused[0]!.reason).toBe('');

    expect(await api.pop('g', 'pa1', { waitMs: 0 })).toEqual([]);
  });

  it('a compact pop answer carries the same messages as a full one', async () => {
    await api.sendOk(
      'pa-compact',
      [
        { body: Buffer.from('plain') },
        {
          body: Buffer.from('héllo ✓'),
          tag: 'TagA',
          keys: ['k1', 'k2'],
          properties: { p: 'v', ünï: 'çödé' },
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        },
        { body: Buffer.alloc(0), keys: ['k1'], properties: { p: 'v' } },
      ],
      0, // one queue: each answer holds several messages (single ones go as `messages`)
    );
    const forms: { compact: boolean; sawCompact?: boolean }[] = [
      { compact: true },
      { compact: false },
    ];
    const popped = await Promise.all(
      forms.map(async (f) => {
        const got = await popAtLeast(api, `gc-${f.compact}`, 'pa-compact', 3, {
          compact: f.compact,
          onAnswer: (res) => {
            if (res.messages.length > 0 || res.compact) f.sawCompact = res.compact !== null;
          },
        });
        return got
          .map((m) => ({ ...m, receipt_handle: '' }))
          .sort((a, b) => a.physical_offset - b.physical_offset);
      }),
    );
    expect(forms.map((f) => f.sawCompact)).toEqual([true, false]);
    expect(popped[0]).toHaveLength(3);
    expect(popped[0]).toEqual(popped[1]);
    expect(popped[0]!.map(body)).toEqual(['plain', 'héllo ✓', '']);

    // Pulls answer in the same two forms, queue by queue.
    for (const queueId of new Set(popped[0]!.map((m) => m.queue_id))) {
      const pull = (compact: boolean) =>
        api.pull({
          topic: 'pa-compact',
          queue_id: queueId,
          offset: 0,
          max_messages: 32,
          compact_messages: compact,
        });
      const [compact, full] = await Promise.all([pull(true), pull(false)]);
      expect(compact.compact).not.toBeNull();
      expect(compact.messages).toEqual([]);
      expect(full.compact).toBeNull();
      expect(full.messages.length).toBeGreaterThan(0);
      expect(messagesOf(compact)).toEqual(full.messages);
      expect(compact.next_offset).toBe(full.next_offset);
    }
    // A one-message answer goes as `messages` even when compact was asked for.
    const one = await api.pull({
      topic: 'pa-compact',
      queue_id: 0,
      offset: 0,
      max_messages: 1,
      compact_messages: true,
    });
    expect(one.compact).toBeNull();
    expect(one.messages.map(body)).toEqual(['plain']);
  });

  it('a long-poll pop the client cancels stops waiting on the broker and takes nothing', async () => {
    const waiting = async () => Number((await brokerStats(c.brokers[0]!.addr)).longPollsWaiting);
    await api.sendOk('pa-cancel', [{ body: Buffer.from('seed') }]);
    const [seed] = await popAtLeast(api, 'g', 'pa-cancel', 1);
    await api.ack('g', 'pa-cancel', [seed!.receipt_handle]);
    expect(await waiting()).toBe(0);

    const call = api.client.PopMessages(
      {
        consumer_group: 'g',
        topic: 'pa-cancel',
        queue_id: -1,
        max_messages: 1,
        invisible_ms: 60_000,
        max_wait_ms: 20_000,
      },
      { deadline: Date.now() + 30_000 },
      () => undefined,
    );
    await waitFor('the pop to wait on the broker', async () => (await waiting()) > 0);
    const cancelledAt = Date.now();
    call.cancel();
    await waitFor('the broker to stop waiting', async () => (await waiting()) === 0);
    expect(Date.now() - cancelledAt).toBeLessThan(5_000);

    // The cancelled pop took nothing: the next message is a first delivery now.
    await api.sendOk('pa-cancel', [{ body: Buffer.from('after') }]);
    const got = await api.pop('g', 'pa-cancel', { waitMs: 2_000 });
    expect(got.map(body)).toEqual(['after']);
    expect(got[0]!.delivery_attempt).toBe(1);
    await api.ack('g', 'pa-cancel', [got[0]!.receipt_handle]);
  });

  it('redelivers after the invisible time through %RETRY% with deliveryAttempt + 1, never before', async () => {
    await api.sendOk('pa2', [{ body: Buffer.from('again'), keys: ['k1'], properties: { p: 'v' } }]);
    const [first] = await popAtLeast(api, 'g', 'pa2', 1, { invisibleMs: 1_000 });
    const poppedAt = Date.now();
    expect(first!.delivery_attempt).toBe(1);
    expect(await api.pop('g', 'pa2', { waitMs: 300 })).toEqual([]);

    const second = await popAtLeast(api, 'g', 'pa2', 1, { invisibleMs: 1_000 }, 10_000);
    const gotAt = Date.now();
    expect(gotAt - poppedAt).toBeGreaterThanOrEqual(1_000 - 50);
    expect(second).toHaveLength(1);
    const m = second[0]!;
    expect(body(m)).toBe('again');
    expect(m.delivery_attempt).toBe(2);
    expect(m.reconsume_times).toBe(1);
    expect(m.message!.message_id).toBe(first!.message!.message_id);
    expect(m.message!.topic).toBe('pa2');
    expect(m.message!.keys).toEqual(['k1']);
    expect(m.message!.properties).toEqual({ p: 'v' });
    // The redelivery was read from the group's retry topic.
    expect(decodeReceiptHandle(m.receipt_handle).topic).toBe('%RETRY%g');
    // The first handle is stale now; the second acks.
    expect((await api.ack('g', 'pa2', [first!.receipt_handle]))[0]!.code).toBe(40013);
    expect((await api.ack('g', 'pa2', [m.receipt_handle]))[0]!.code).toBe(OK);
    expect(await api.pop('g', 'pa2', { waitMs: 1_500, invisibleMs: 1_000 })).toEqual([]);
  });

  it('change-invisible hands out a new handle; 0 makes the message visible at once', async () => {
    await api.sendOk('pa3', [{ body: Buffer.from('x') }]);
    const [m] = await popAtLeast(api, 'g', 'pa3', 1, { invisibleMs: 60_000 });
    const changed = await api.changeInvisible('g', 'pa3', m!.receipt_handle, 5_000);
    expect(changed.status!.code).toBe(OK);
    expect(changed.receipt_handle).not.toBe(m!.receipt_handle);
    expect(decodeReceiptHandle(changed.receipt_handle).invisibleMs).toBe(5_000);
    expect((await api.changeInvisible('g', 'pa3', m!.receipt_handle, 1_000)).status!.code).toBe(
      40013,
    );

    const now = await api.changeInvisible('g', 'pa3', changed.receipt_handle, 0);
    expect(now.status!.code).toBe(OK);
    const t0 = Date.now();
    const back = await popAtLeast(api, 'g', 'pa3', 1, {}, 5_000);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(back[0]!.delivery_attempt).toBe(2);
    expect((await api.ack('g', 'pa3', [back[0]!.receipt_handle]))[0]!.code).toBe(OK);
  });

  it('filters by tag (new messages and retries) and settles what the filter skips', async () => {
    await api.sendOk('pa4', [
      { body: Buffer.from('a1'), tag: 'A' },
      { body: Buffer.from('b1'), tag: 'B' },
      { body: Buffer.from('c1'), tag: 'C' },
      { body: Buffer.from('a2'), tag: 'A' },
    ]);
    const got = await popAtLeast(
      api,
      'gf',
      'pa4',
      3,
      { filter: 'A || C', invisibleMs: 1_000 },
      3_000,
    );
    expect(got.map(body).sort()).toEqual(['a1', 'a2', 'c1']);
    // Let them run out: redeliveries come from %RETRY%gf and still obey the filter.
    const retried = await popAtLeast(
      api,
      'gf',
      'pa4',
      1,
      { filter: 'A', invisibleMs: 5_000 },
      6_000,
    );
    const more = await api.pop('gf', 'pa4', { filter: 'A', waitMs: 1_500, invisibleMs: 5_000 });
    const all = [...retried, ...more];
    expect(all.map(body).sort()).toEqual(['a1', 'a2']);
    expect(all.every((m) => m.delivery_attempt === 2)).toBe(true);
    // B was filtered out for this group (settled), and c1's retry did not match 'A'.
    expect(await api.pop('gf', 'pa4', { filter: '*', waitMs: 300 })).toEqual([]);
    // Another group sees everything.
    expect((await popAtLeast(api, 'other', 'pa4', 4, {}, 3_000)).map(body).sort()).toEqual([
      'a1',
      'a2',
      'b1',
      'c1',
    ]);
  });

  it('forwards a message to %DLQ%{group} on request', async () => {
    await api.sendOk('pa5', [{ body: Buffer.from('bad'), tag: 'T' }]);
    const [m] = await popAtLeast(api, 'gd', 'pa5', 1, { invisibleMs: 1_000 });
    expect((await api.forwardToDlq('gd', 'pa5', m!.receipt_handle)).code).toBe(OK);
    // Settled: not redelivered after the invisible time.
    expect(await api.pop('gd', 'pa5', { waitMs: 1_800, invisibleMs: 1_000 })).toEqual([]);
    const dlq = await api.readAll('%DLQ%gd', 0);
    expect(dlq).toHaveLength(1);
    expect(body(dlq[0]!)).toBe('bad');
    expect(dlq[0]!.message!.message_id).toBe(m!.message!.message_id);
    expect(dlq[0]!.message!.tag).toBe('T');
    expect(dlq[0]!.message!.topic).toBe('pa5');
  });

  it('reports consumer progress per queue: offsets, lag and in-flight', async () => {
    await api.updateTopic({ topic_name: 'pa6', read_queue_nums: 2, write_queue_nums: 2, perm: 6 });
    await api.sendOk(
      'pa6',
      Array.from({ length: 10 }, (_, i) => ({ body: Buffer.from(String(i)) })),
    );
    const got = await popAtLeast(api, 'gp', 'pa6', 4, { max: 4 }, 3_000);
    expect(got).toHaveLength(4);
    await api.ack('gp', 'pa6', [got[0]!.receipt_handle]);
    const rows = (await api.progress('gp', 'pa6')).filter((q) => q.topic === 'pa6');
    expect(rows.map((r) => r.queue_id).sort()).toEqual([0, 1]);
    expect(rows.reduce((n, r) => n + r.broker_offset, 0)).toBe(10);
    expect(rows.reduce((n, r) => n + Number(r.in_flight), 0)).toBe(3);
    expect(rows.reduce((n, r) => n + Number(r.lag), 0)).toBe(
      10 - rows.reduce((n, r) => n + r.consumer_offset, 0),
    );
    expect(rows.reduce((n, r) => n + Number(r.lag), 0)).toBeGreaterThanOrEqual(9);
  });
});
