/**
 * Transactions across a crash at the worst moments, forced in one process
 * over a real store (test/messaging/local-broker.ts): the commit decision is
 * journalled before the committed message is appended, so a crash between
 * the two, or between the append and the settlement, yields exactly one copy
 * and no check-back; a repeated EndTransaction is answered from durable
 * state. Also the default check-back limit (transactionCheckMax = 15).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closeLocalBrokers, type LocalBroker, openLocalBroker } from './local-broker.js';

const OK = 20000;
const INVALID_TRANSACTION_ID = 40008;

afterEach(closeLocalBrokers);

const end = (b: LocalBroker, transactionId: string, commit: boolean) =>
  b.transactions.end([
    { topic: 'tx', message_id: '', transaction_id: transactionId, commit, from_check: false },
  ]);

/** Opens a broker, sends one transactional message and starts its commit; crashes at `at`. */
async function crashDuringCommit(at: 'put' | 'appendBatch') {
  const b = await openLocalBroker({ fakeClock: Date.now(), start: true });
  await b.ctx.topics.upsert({ topic_name: 'tx', read_queue_nums: 1, write_queue_nums: 1, perm: 6 });
  const [half] = await b.sendOk('tx', [
    { body: Buffer.from('once'), transactional: true, producer_group: 'pg' },
  ]);
  const gate = b.gate(at);
  void end(b, half!.transaction_id!, true); // never answered: the broker dies first
  await gate.entered;
  await b.crash();
  const again = await openLocalBroker({ dir: b.dir, fakeClock: Date.now(), start: true });
  return { b: again, transactionId: half!.transaction_id! };
}

async function committedCopies(b: LocalBroker): Promise<string[]> {
  const read = await b.store.read('tx', 0, 0, 100);
  return read.records.map((r) => r.body.toString());
}

describe('transaction commit across a crash', () => {
  for (const at of ['put', 'appendBatch'] as const) {
    it(`crash after ${at === 'put' ? 'the journalled decision' : 'the append'}: one copy, no check-back`, async () => {
      const { b, transactionId } = await crashDuringCommit(at);
      expect(await committedCopies(b)).toEqual(['once']);
      expect(b.transactions.stats().open).toBe(0);
      b.clock.now += 3_600_000;
      expect(await b.transactions.orphans(100)).toEqual([]);
      // A repeated EndTransaction after the restart: same decision OK, the other refused.
      expect((await end(b, transactionId, true))[0]!.code).toBe(OK);
      expect((await end(b, transactionId, false))[0]!.code).toBe(INVALID_TRANSACTION_ID);
      expect(await committedCopies(b)).toEqual(['once']);
    });
  }

  it('answers a repeated commit or rollback from durable state after a restart', async () => {
    const b = await openLocalBroker({ fakeClock: Date.now(), start: true });
    await b.ctx.topics.upsert({
      topic_name: 'tx',
      read_queue_nums: 1,
      write_queue_nums: 1,
      perm: 6,
    });
    const [c, r] = await b.sendOk('tx', [
      { body: Buffer.from('c'), transactional: true },
      { body: Buffer.from('r'), transactional: true },
    ]);
    expect((await end(b, c!.transaction_id!, true))[0]!.code).toBe(OK);
    expect((await end(b, r!.transaction_id!, false))[0]!.code).toBe(OK);
    await b.crash();
    const again = await openLocalBroker({ dir: b.dir, fakeClock: Date.now(), start: true });
    const codes = await again.transactions.end([
      {
        topic: 'tx',
        message_id: '',
        transaction_id: c!.transaction_id!,
        commit: true,
        from_check: false,
      },
      {
        topic: 'tx',
        message_id: '',
        transaction_id: r!.transaction_id!,
        commit: false,
        from_check: false,
      },
      {
        topic: 'tx',
        message_id: '',
        transaction_id: c!.transaction_id!,
        commit: false,
        from_check: false,
      },
      {
        topic: 'tx',
        message_id: '',
        transaction_id: r!.transaction_id!,
        commit: true,
        from_check: false,
      },
      {
        topic: 'tx',
        message_id: '',
        transaction_id: 'NOT-A-TRANSACTION',
        commit: true,
        from_check: false,
      },
    ]);
    expect(codes.map((s) => s.code)).toEqual([
      OK,
      OK,
      INVALID_TRANSACTION_ID,
      INVALID_TRANSACTION_ID,
      INVALID_TRANSACTION_ID,
    ]);
    expect(await committedCopies(again)).toEqual(['c']);
  });
});

describe('check-back limit', () => {
  it('offers an undecided half 15 times by default, then discards it', async () => {
    const b = await openLocalBroker({ fakeClock: Date.now(), start: true });
    expect(b.ctx.options.transactionCheckMax).toBe(15);
    const { transactionTimeOut, transactionCheckInterval } = b.ctx.options;
    const [half] = await b.sendOk('tx', [{ body: Buffer.from('undecided'), transactional: true }]);
    const id = half!.transaction_id!;
    const stored = (await b.store.lookupById(undefined, id))!.storeTimestamp;
    b.clock.now = stored + transactionTimeOut - 1;
    expect(await b.transactions.orphans(100)).toEqual([]); // not before transactionTimeOut
    b.clock.now += 1;
    const checks: number[] = [];
    for (let i = 0; i < 20; i++) {
      const offered = (await b.transactions.orphans(100)).filter((o) => o.transaction_id === id);
      checks.push(...offered.map((o) => o.check_times!));
      expect(await b.transactions.orphans(100)).toEqual([]); // once per interval
      b.clock.now += transactionCheckInterval;
    }
    expect(checks).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(b.transactions.stats()).toMatchObject({ open: 0, discarded: 1 });
    expect((await end(b, id, true))[0]!.code).toBe(INVALID_TRANSACTION_ID);
    expect(await b.store.read('tx', 0, 0, 10).then((r) => r.records)).toEqual([]);
  });
});
