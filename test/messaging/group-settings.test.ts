/**
 * Small settings with sharp edges: a message group decides the queue even
 * when the sender names one; a group's retry_max_times of 0 is a setting (a
 * single delivery), not "unset"; the broker warns when receipt handles are
 * signed with the built-in default secret.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BROKER_SCHEMA } from '../../broker/options.js';
import { closeLocalBrokers, openLocalBroker } from './local-broker.js';

afterEach(closeLocalBrokers);

describe('queue choice', () => {
  it('a message group wins over an explicit queue_id', async () => {
    const b = await openLocalBroker();
    await b.ctx.topics.upsert({
      topic_name: 'qg',
      read_queue_nums: 8,
      write_queue_nums: 8,
      perm: 6,
    });
    const [plain] = await b.sendOk('qg', [{ body: Buffer.from('x') }]);
    const entry = (queue_id: number, message_group: string) => ({
      message: {
        topic: 'qg',
        body: Buffer.from('m'),
        tag: '',
        keys: [],
        properties: {},
        message_id: '',
        message_group,
        delivery_timestamp_ms: 0,
        delay_level: 0,
        transactional: false,
        producer_group: '',
        born_timestamp_ms: 0,
        born_host: '',
        traceparent: '',
        tracestate: '',
      },
      queue_id,
    });
    const results = await b.send.send([
      entry(-1, 'order-42'),
      entry(0, 'order-42'),
      entry(7, 'order-42'),
      entry(5, ''),
    ]);
    const groupQueue = results[0]!.queue_id;
    expect(results.slice(0, 3).map((r) => r.queue_id)).toEqual([
      groupQueue,
      groupQueue,
      groupQueue,
    ]);
    expect(results[3]!.queue_id).toBe(5); // no group: the named queue
    expect(plain!.queue_id).toBeGreaterThanOrEqual(0);
  });
});

describe('retry_max_times', () => {
  it('0 is kept and means one delivery, then the DLQ; unset means the broker default', async () => {
    const b = await openLocalBroker({ fakeClock: 1_000_000 });
    expect(
      (await b.ctx.groups.upsert({ group_name: 'once', retry_max_times: 0 })).retry_max_times,
    ).toBe(0);
    expect((await b.ctx.groups.upsert({ group_name: 'dflt' })).retry_max_times).toBe(
      b.ctx.options.maxReconsumeTimes,
    );
    // An update that leaves it out keeps it.
    expect(
      (await b.ctx.groups.upsert({ group_name: 'once', consume_enable: true })).retry_max_times,
    ).toBe(0);
    await b.sendOk('rm', [{ body: Buffer.from('only once') }]);
    const popped = await b.pop.pop({
      group: 'once',
      topic: 'rm',
      queueId: -1,
      max: 32,
      invisibleMs: 1_000,
      waitMs: 0,
      filter: '*',
    });
    expect(popped).toHaveLength(1);
    b.clock.now += 2_000;
    await b.revive.pass();
    expect(
      (await b.store.read('%DLQ%once', 0, 0, 10)).records.map((r) => r.body.toString()),
    ).toEqual(['only once']);
    expect((await b.store.read('%RETRY%once', 0, 0, 10)).records).toEqual([]);
  });
});

describe('receiptHandleSecret', () => {
  const warnings = async (secret?: string) => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    await openLocalBroker({ logger, options: secret ? { receiptHandleSecret: secret } : {} });
    return lines.filter((l) => l.includes('receiptHandleSecret'));
  };

  it('warns at start when it is the built-in default, not otherwise', async () => {
    expect(BROKER_SCHEMA.receiptHandleSecret.default).toBeTruthy();
    expect(await warnings()).toHaveLength(1);
    expect(await warnings('a-real-secret')).toHaveLength(0);
  });
});
