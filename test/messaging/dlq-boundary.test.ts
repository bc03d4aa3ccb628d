/**
 * Redelivery counts and the dead-letter boundary (RocketMQ 5 semantics,
 * maxDeliveryAttempts): with maxReconsumeTimes = 16 a message is delivered at
 * most 16 times (attempts 1..16); when the 16th delivery runs out un-acked it
 * goes to %DLQ%{group} and there is no 17th delivery. A group's own
 * retry_max_times overrides the broker default; 0 is a setting too (one
 * delivery, no retry), not "unset".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { BrokerApi, body } from './broker-api.js';

const INVISIBLE_MS = 1_000;

/** Pops one message and never acks it, until nothing comes for `quietMs`; answers the attempts seen. */
async function deliverUntilQuiet(api: BrokerApi, group: string, topic: string, quietMs: number) {
  const seen: StoredMessage__Output[] = [];
  let lastAt = Date.now();
  while (Date.now() - lastAt < quietMs) {
    const got = await api.pop(group, topic, { max: 1, invisibleMs: INVISIBLE_MS, waitMs: 1_000 });
    if (got.length > 0) {
      seen.push(...got);
      lastAt = Date.now();
    }
  }
  return seen;
}

describe('redelivery count and DLQ boundary', () => {
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

  it('delivers attempts 1..16 (default maxReconsumeTimes) then dead-letters; no 17th delivery', async () => {
    await api.updateGroup({ group_name: 'g3', retry_max_times: 3, consume_enable: true });
    await api.updateGroup({ group_name: 'g0', retry_max_times: 0, consume_enable: true });
    await api.sendOk('dlq1', [{ body: Buffer.from('poison'), tag: 'X' }]);
    await api.sendOk('dlq3', [{ body: Buffer.from('poison3') }]);
    await api.sendOk('dlq0', [{ body: Buffer.from('poison0') }]);
    // The groups run side by side; the default group needs ~16 invisible periods.
    const [seen16, seen3, seen0] = await Promise.all([
      deliverUntilQuiet(api, 'g16', 'dlq1', 3 * INVISIBLE_MS),
      deliverUntilQuiet(api, 'g3', 'dlq3', 3 * INVISIBLE_MS),
      deliverUntilQuiet(api, 'g0', 'dlq0', 3 * INVISIBLE_MS),
    ]);
    expect(seen0.map((m) => m.delivery_attempt)).toEqual([1]);
    expect((await api.readAll('%DLQ%g0', 0)).map(body)).toEqual(['poison0']);
    expect(seen16.map((m) => m.delivery_attempt)).toEqual(
      Array.from({ length: 16 }, (_, i) => i + 1),
    );
    expect(new Set(seen16.map((m) => m.message!.message_id)).size).toBe(1);
    expect(seen3.map((m) => m.delivery_attempt)).toEqual([1, 2, 3]);

    const dlq = await waitFor('the dead letter', async () => {
      const msgs = await api.readAll('%DLQ%g16', 0);
      return msgs.length > 0 ? msgs : undefined;
    });
    expect(dlq).toHaveLength(1);
    expect(body(dlq[0]!)).toBe('poison');
    expect(dlq[0]!.reconsume_times).toBe(16);
    expect(dlq[0]!.message!.tag).toBe('X');
    expect(dlq[0]!.message!.message_id).toBe(seen16[0]!.message!.message_id);
    const dlq3 = await api.readAll('%DLQ%g3', 0);
    expect(dlq3.map(body)).toEqual(['poison3']);
    expect(dlq3[0]!.reconsume_times).toBe(3);
    // The retry topic carried attempts 2..16 (15 records).
    expect(await api.readAll('%RETRY%g16', 0)).toHaveLength(15);
    expect(Number((await api.status()).deadLetteredMessages)).toBe(3);
  });
});
