/**
 * Transactions: half messages are invisible until committed, rollback
 * discards, undecided ones are offered for check-back after
 * transactionTimeOut (every transactionCheckInterval), at most
 * transactionCheckMax times, then discarded and logged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { BrokerApi, body, OK, popAtLeast } from './broker-api.js';

describe('transactions', () => {
  let c: Cluster;
  let api: BrokerApi;
  beforeAll(async () => {
    c = await startCluster({
      brokers: [
        {
          config: {
            transactionTimeOut: 600,
            transactionCheckInterval: 300,
            transactionCheckMax: 3,
          },
        },
      ],
    });
    api = new BrokerApi(c.brokers[0]!.addr);
  });
  afterAll(async () => {
    api?.close();
    await c?.close();
  });

  it('keeps a half message invisible until commit; rollback discards', async () => {
    await api.sendOk('tx1', [{ body: Buffer.from('warm') }]);
    expect(await popAtLeast(api, 'g', 'tx1', 1)).toHaveLength(1);
    const sent = await api.sendOk('tx1', [
      { body: Buffer.from('commit-me'), transactional: true, producer_group: 'pg', keys: ['k'] },
      { body: Buffer.from('roll-me-back'), transactional: true, producer_group: 'pg' },
    ]);
    expect(sent.every((r) => r.transaction_id.length > 0)).toBe(true);
    expect(await api.pop('g', 'tx1', { waitMs: 500 })).toEqual([]);
    // Pull cannot see it either.
    expect((await api.readAll('tx1', sent[0]!.queue_id)).map(body)).not.toContain('commit-me');

    const ended = await api.endTransactions([
      {
        topic: 'tx1',
        message_id: sent[0]!.message_id,
        transaction_id: sent[0]!.transaction_id,
        commit: true,
      },
      {
        topic: 'tx1',
        message_id: sent[1]!.message_id,
        transaction_id: sent[1]!.transaction_id,
        commit: false,
      },
    ]);
    expect(ended.map((s) => s.code)).toEqual([OK, OK]);
    const got = await popAtLeast(api, 'g', 'tx1', 1);
    expect(got.map(body)).toEqual(['commit-me']);
    expect(got[0]!.message!.message_id).toBe(sent[0]!.message_id);
    expect(got[0]!.message!.keys).toEqual(['k']);
    expect(await api.pop('g', 'tx1', { waitMs: 500 })).toEqual([]);

    // Repeating the same decision is OK; a different one, or an unknown id, is refused.
    const again = await api.endTransactions([
      { topic: 'tx1', transaction_id: sent[0]!.transaction_id, commit: true },
      { topic: 'tx1', transaction_id: sent[1]!.transaction_id, commit: true },
      { topic: 'tx1', transaction_id: 'nope', commit: true },
    ]);
    expect(again.map((s) => s.code)).toEqual([OK, 40008, 40008]);
    expect(Number((await api.status()).transactionsCommitted)).toBeGreaterThanOrEqual(1);
  });

  it('offers undecided halves for check-back at most transactionCheckMax times, then discards them', async () => {
    const [half] = await api.sendOk('tx2', [
      { body: Buffer.from('undecided'), transactional: true, producer_group: 'pg2' },
    ]);
    const sentAt = Date.now();
    // Not offered before transactionTimeOut.
    expect((await api.orphans()).map((o) => o.transaction_id)).not.toContain(half!.transaction_id);
    const checks: number[] = [];
    await waitFor(
      'three check-backs',
      async () => {
        const o = (await api.orphans()).find((x) => x.transaction_id === half!.transaction_id);
        if (o) {
          if (checks.length === 0) expect(Date.now() - sentAt).toBeGreaterThanOrEqual(600);
          checks.push(o.check_times);
          expect(body(o.message!)).toBe('undecided');
          expect(o.message!.message!.topic).toBe('tx2');
          expect(o.message!.message!.producer_group).toBe('pg2');
        }
        return checks.length >= 3;
      },
      10_000,
      50,
    );
    expect(checks).toEqual([1, 2, 3]);
    await waitFor(
      'the half to be discarded',
      async () => Number((await api.status()).transactionsDiscarded) >= 1,
    );
    expect((await api.orphans()).map((o) => o.transaction_id)).not.toContain(half!.transaction_id);
    const late = await api.endTransactions([
      { topic: 'tx2', transaction_id: half!.transaction_id, commit: true },
    ]);
    expect(late[0]!.code).toBe(40008);
    expect(c.brokers[0]!.lines.join('\n')).toMatch(/transaction discarded/);
    expect(await api.pop('g', 'tx2', { waitMs: 300 }).catch(() => [])).toEqual([]);
  });

  it('refuses a transactional message with a delivery time', async () => {
    const res = await api.send('tx3', [
      { body: Buffer.from('x'), transactional: true, delivery_timestamp_ms: Date.now() + 5_000 },
    ]);
    expect(res[0]!.status!.code).toBe(40014);
  });
});
