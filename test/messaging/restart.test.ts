/**
 * Restart cases: the broker is SIGKILLed with messages in flight, timers
 * pending, half transactions open and offsets committed. After the restart
 * nothing acknowledged is lost, nothing acked is redelivered and nothing is
 * delivered early. A clean stop (snapshot, no journal) keeps the same state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { BrokerApi, body, OK, popAtLeast } from './broker-api.js';

const INVISIBLE_MS = 6_000;

describe('SIGKILL and restart', () => {
  let c: Cluster;
  let api: BrokerApi;
  beforeAll(async () => {
    c = await startCluster({
      brokers: [{ config: { transactionTimeOut: 1_000, transactionCheckInterval: 500 } }],
    });
    api = new BrokerApi(c.brokers[0]!.addr);
  });
  afterAll(async () => {
    api?.close();
    await c?.close();
  });

  it('keeps in-flight, acked, timer, transaction and offset state across kill -9', async () => {
    // In flight: 40 popped, 20 acked (and the acks answered) just before the kill.
    await api.updateTopic({ topic_name: 'rs1', read_queue_nums: 2, write_queue_nums: 2, perm: 6 });
    await api.sendOk(
      'rs1',
      Array.from({ length: 40 }, (_, i) => ({ body: Buffer.from(`m${i}`) })),
    );
    // Each message's invisible time starts with the pop call that took it: between these two.
    const popStartedAt = Date.now();
    const popped = await popAtLeast(api, 'g', 'rs1', 40, { invisibleMs: INVISIBLE_MS });
    const poppedAt = Date.now();
    expect(popped).toHaveLength(40);
    const acked = popped.filter((m) => Number(body(m).slice(1)) % 2 === 0);
    const unacked = popped.filter((m) => Number(body(m).slice(1)) % 2 === 1);
    expect(
      (
        await api.ack(
          'g',
          'rs1',
          acked.map((m) => m.receipt_handle),
        )
      ).every((s) => s.code === OK),
    ).toBe(true);
    // Not popped at all yet: 10 more, which must simply be there after the restart.
    await api.sendOk(
      'rs1',
      Array.from({ length: 10 }, (_, i) => ({ body: Buffer.from(`late${i}`) })),
    );

    // Timers pending.
    await api.sendOk('rs2', [{ body: Buffer.from('warm') }]);
    const due = Date.now() + 4_000;
    await api.sendOk(
      'rs2',
      Array.from({ length: 50 }, (_, i) => ({
        body: Buffer.from(`t${i}`),
        delivery_timestamp_ms: due,
      })),
    );

    // Half transactions open.
    await api.sendOk('rs3', [{ body: Buffer.from('warm') }]);
    const halves = await api.sendOk('rs3', [
      { body: Buffer.from('to-commit'), transactional: true, producer_group: 'pg' },
      { body: Buffer.from('orphan'), transactional: true, producer_group: 'pg' },
    ]);

    // Offsets committed.
    expect(
      (await api.updateOffsets('pullg', [{ topic: 'rs1', queue_id: 0, offset: 7 }]))[0]!.code,
    ).toBe(OK);

    await c.brokers[0]!.kill('SIGKILL');
    await c.brokers[0]!.start();
    const restartedAt = Date.now();
    expect(restartedAt - poppedAt).toBeLessThan(INVISIBLE_MS - 1_000); // the "not before" check below is meaningful

    // Un-acked messages are still invisible: only the never-popped ones come now.
    const early = await api.pop('g', 'rs1', { max: 100, waitMs: 300, invisibleMs: 30_000 });
    expect(early.map(body).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `late${i}`).sort());
    await api.ack(
      'g',
      'rs1',
      early.map((m) => m.receipt_handle),
    );

    // Committed offsets and open transactions survived.
    expect((await api.offsets('pullg', 'rs1')).find((o) => o.queue_id === 0)!.offset).toBe(7);
    const ended = await api.endTransactions([
      {
        topic: 'rs3',
        message_id: halves[0]!.message_id,
        transaction_id: halves[0]!.transaction_id,
        commit: true,
      },
    ]);
    expect(ended[0]!.code).toBe(OK);
    const committed = await popAtLeast(api, 'g', 'rs3', 2, {}, 5_000);
    expect(committed.map(body).sort()).toEqual(['to-commit', 'warm']);
    const orphan = await waitFor('the open half to be offered for check-back', async () =>
      (await api.orphans()).find((o) => o.transaction_id === halves[1]!.transaction_id),
    );
    expect(orphan.check_times).toBe(1);
    expect(body(orphan.message!)).toBe('orphan');

    // Timers: none before the due time, all of them after it.
    const timerMsgs: Array<{ m: StoredMessage__Output; at: number }> = [];
    while (timerMsgs.length < 51 && Date.now() < due + 5_000) {
      const got = await api.pop('g', 'rs2', { max: 64, waitMs: 500 });
      for (const m of got) timerMsgs.push({ m, at: Date.now() });
      if (got.length > 0)
        await api.ack(
          'g',
          'rs2',
          got.map((m) => m.receipt_handle),
        );
    }
    const timers = timerMsgs.filter((x) => body(x.m).startsWith('t'));
    expect(timers).toHaveLength(50);
    expect(timers.every((x) => x.at >= due)).toBe(true);
    expect(Math.max(...timers.map((x) => x.at - due))).toBeLessThan(1_000);

    // The un-acked come back when their time runs out (attempt 2); the acked never do.
    const back: StoredMessage__Output[] = [];
    let firstBackAt = 0;
    while (Date.now() < poppedAt + INVISIBLE_MS + 4_000 && back.length < 20) {
      const got = await api.pop('g', 'rs1', { max: 64, waitMs: 500, invisibleMs: 30_000 });
      if (got.length > 0 && firstBackAt === 0) firstBackAt = Date.now();
      back.push(...got);
    }
    expect(firstBackAt).toBeGreaterThanOrEqual(popStartedAt + INVISIBLE_MS);
    expect(back.map(body).sort()).toEqual(unacked.map(body).sort());
    expect(back.every((m) => m.delivery_attempt === 2)).toBe(true);
    expect(await api.pop('g', 'rs1', { max: 64, waitMs: 800 })).toEqual([]);
    await api.ack(
      'g',
      'rs1',
      back.map((m) => m.receipt_handle),
    );
  });

  it('after a downtime longer than the invisible time: each in-flight message once per attempt', async () => {
    // Concurrent deliveries (attempt 1), a retry in flight (attempt 2, read from
    // %RETRY%gk), FIFO deliveries, a half transaction and a pull commit: all
    // of it across a kill -9 that lasts longer than the invisible time.
    await api.updateTopic({ topic_name: 'rk1', read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
    await api.updateTopic({ topic_name: 'rk2', read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
    await api.updateTopic({ topic_name: 'rk3', read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
    await api.updateGroup({
      group_name: 'gkf',
      consume_enable: true,
      consume_message_orderly: true,
    });
    // (The pop racing the first revive pass is forced deterministically in races.test.ts.)
    const N = 200;
    await api.sendOk(
      'rk1',
      Array.from({ length: N }, (_, i) => ({ body: Buffer.from(`k${i}`) })),
    );
    await api.sendOk('rk2', [{ body: Buffer.from('r0') }]);
    const firstTry = await popAtLeast(api, 'gk', 'rk2', 1, { invisibleMs: 1_000 });
    expect(firstTry.map((m) => m.delivery_attempt)).toEqual([1]);
    const secondTry = await popAtLeast(api, 'gk', 'rk2', 1, { invisibleMs: 3_000 }, 8_000);
    expect(secondTry.map((m) => m.delivery_attempt)).toEqual([2]);
    const popped: StoredMessage__Output[] = [];
    while (popped.length < N) {
      const got = await api.pop('gk', 'rk1', { max: 1024, invisibleMs: 3_000, waitMs: 500 });
      expect(got.length).toBeGreaterThan(0);
      popped.push(...got);
    }
    expect(popped).toHaveLength(N);
    await api.sendOk('rk3', [
      { body: Buffer.from('f-a1'), message_group: 'A' },
      { body: Buffer.from('f-a2'), message_group: 'A' },
      { body: Buffer.from('f-b1'), message_group: 'B' },
    ]);
    const fifo = await api.pop('gkf', 'rk3', { max: 10, invisibleMs: 3_000, waitMs: 1_000 });
    expect(fifo.map(body)).toEqual(['f-a1', 'f-b1']);
    await api.sendOk('rk4', [{ body: Buffer.from('warm') }]);
    const [half, committedHalf] = await api.sendOk('rk4', [
      { body: Buffer.from('to-roll-back'), transactional: true, producer_group: 'pg' },
      { body: Buffer.from('committed'), transactional: true, producer_group: 'pg' },
    ]);
    const commit = { topic: 'rk4', transaction_id: committedHalf!.transaction_id, commit: true };
    expect((await api.endTransactions([commit]))[0]!.code).toBe(OK);
    const pulled = await api.pull({
      topic: 'rk1',
      queue_id: 0,
      offset: 0,
      max_messages: 4,
      consumer_group: 'pullk',
      commit_offset: 4,
    });
    expect(pulled.messages).toHaveLength(4);

    await c.brokers[0]!.kill('SIGKILL');
    // Letting time pass is the point here: the broker is down past every invisible time.
    await new Promise((r) => setTimeout(r, 3_500));
    await c.brokers[0]!.start();

    // Pop at once, while the first revive pass may still be running.
    const seen: StoredMessage__Output[] = [];
    const acks: number[] = [];
    const deadline = Date.now() + 8_000;
    while (Date.now() < deadline && seen.length < N + 1) {
      const got = [
        ...(await api.pop('gk', 'rk1', { max: 1024, waitMs: 300 })),
        ...(await api.pop('gk', 'rk2', { max: 32, waitMs: 0 })),
      ];
      seen.push(...got);
      if (got.length > 0) {
        for (const s of await api.ack(
          'gk',
          'rk1',
          got.filter((m) => m.message!.topic === 'rk1').map((m) => m.receipt_handle),
        ))
          acks.push(s.code);
        for (const s of await api.ack(
          'gk',
          'rk2',
          got.filter((m) => m.message!.topic === 'rk2').map((m) => m.receipt_handle),
        ))
          acks.push(s.code);
      }
    }
    expect(seen.map((m) => `${body(m)}#${m.delivery_attempt}`).sort()).toEqual(
      [...popped.map((m) => `${body(m)}#2`), 'r0#3'].sort(),
    );
    expect(acks.every((code) => code === OK)).toBe(true);
    expect(await api.pop('gk', 'rk1', { max: 32, waitMs: 300 })).toEqual([]);
    // Exactly one retry record per message and attempt.
    const retries = (await api.readAll('%RETRY%gk', 0)).map(
      (m) => `${body(m)}#${m.reconsume_times}`,
    );
    expect(retries.sort()).toEqual([...popped.map((m) => `${body(m)}#1`), 'r0#1', 'r0#2'].sort());

    // FIFO: redelivered in place with attempt 2, and A's next only after the ack.
    const again = await popAtLeast(api, 'gkf', 'rk3', 2, { invisibleMs: 30_000 }, 5_000);
    expect(again.map((m) => `${body(m)}#${m.delivery_attempt}`).sort()).toEqual([
      'f-a1#2',
      'f-b1#2',
    ]);
    expect(await api.pop('gkf', 'rk3', { waitMs: 300 })).toEqual([]);
    await api.ack(
      'gkf',
      'rk3',
      again.map((m) => m.receipt_handle),
    );
    expect((await popAtLeast(api, 'gkf', 'rk3', 1, {}, 3_000)).map(body)).toEqual(['f-a2']);

    // A rollback after the restart discards the half; the commit answered before
    // the kill is answered the same when the producer repeats it, and no other way.
    const ended = await api.endTransactions([
      { topic: 'rk4', transaction_id: half!.transaction_id, commit: false },
      commit,
      { ...commit, commit: false },
    ]);
    expect(ended.map((s) => s.code)).toEqual([OK, OK, 40008]);
    expect((await popAtLeast(api, 'gk', 'rk4', 2, {}, 3_000)).map(body).sort()).toEqual([
      'committed',
      'warm',
    ]);
    expect(await api.pop('gk', 'rk4', { waitMs: 300 })).toEqual([]);

    // The offset committed through pull survived.
    expect((await api.offsets('pullk', 'rk1')).find((o) => o.queue_id === 0)!.offset).toBe(4);
  });

  it('keeps the state across a clean stop too (snapshot instead of journal)', async () => {
    await api.sendOk(
      'rs4',
      Array.from({ length: 4 }, (_, i) => ({ body: Buffer.from(`c${i}`) })),
    );
    const popped = await popAtLeast(api, 'g', 'rs4', 4, { invisibleMs: 4_000 });
    const poppedAt = Date.now();
    await api.ack('g', 'rs4', [popped[0]!.receipt_handle]);
    await c.brokers[0]!.restart();
    expect(await api.pop('g', 'rs4', { waitMs: 200 })).toEqual([]);
    const back = await popAtLeast(api, 'g', 'rs4', 3, {}, 8_000);
    expect(Date.now()).toBeGreaterThanOrEqual(poppedAt + 4_000);
    expect(back.map(body).sort()).toEqual(popped.slice(1).map(body).sort());
    expect(c.brokers[0]!.lines.join('\n')).toMatch(/consume state recovered/);
  });
});
