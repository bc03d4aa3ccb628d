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
    expect(firstBackAt).toBeGreaterThanOrEqual(poppedAt + INVISIBLE_MS);
    expect(back.map(body).sort()).toEqual(unacked.map(body).sort());
    expect(back.every((m) => m.delivery_attempt === 2)).toBe(true);
    expect(await api.pop('g', 'rs1', { max: 64, waitMs: 800 })).toEqual([]);
    await api.ack(
      'g',
      'rs1',
      back.map((m) => m.receipt_handle),
    );
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
