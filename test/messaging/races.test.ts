/**
 * Interleavings the broker must survive, forced deterministically in one
 * process over a real store (test/messaging/local-broker.ts): a pop during
 * the first revive pass after a restart, an offset reset during a pop's read,
 * and an arrival between a long poll's read and its wait.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeReceiptHandle } from '../../common/receipt-handle.js';
import { closeLocalBrokers, type LocalBroker, openLocalBroker } from './local-broker.js';

const OK = 20000;
const EXPIRED = 40013;

afterEach(closeLocalBrokers);

const pop = (
  b: LocalBroker,
  topic: string,
  o: { max?: number; waitMs?: number; filter?: string; invisibleMs?: number } = {},
) =>
  b.pop.pop({
    group: 'g',
    topic,
    queueId: -1,
    max: o.max ?? 32,
    invisibleMs: o.invisibleMs ?? 60_000,
    waitMs: o.waitMs ?? 0,
    filter: o.filter ?? '*',
  });

describe('revive pass right after a restart', () => {
  it('does not hand out offsets being revived; one retry record per attempt; acks work', async () => {
    const first = await openLocalBroker({ fakeClock: 1_000_000 });
    const dir = first.dir;
    await first.ctx.topics.upsert({
      topic_name: 'rv',
      read_queue_nums: 1,
      write_queue_nums: 1,
      perm: 6,
    });
    await first.sendOk(
      'rv',
      Array.from({ length: 5 }, (_, i) => ({ body: Buffer.from(`m${i}`) })),
    );
    const popped = await pop(first, 'rv', { invisibleMs: 5_000 });
    expect(popped).toHaveLength(5);
    await first.crash();

    // Down past the invisible time: after the restart every delivery is due at once.
    const b = await openLocalBroker({ dir, fakeClock: 1_000_000 + 60_000 });
    const readAt = b.gate('readAt');
    const pass = b.revive.pass(); // the first pass, paused while it reads the records
    await readAt.entered;
    // A pop now re-reads the queue from its base: the revived offsets are not free.
    expect(await pop(b, 'rv')).toEqual([]);
    readAt.opened();
    await pass;

    const retries = await pop(b, 'rv', { max: 32 });
    expect(retries.map((m) => m.delivery_attempt)).toEqual([2, 2, 2, 2, 2]);
    expect(retries.every((m) => decodeReceiptHandle(m.receipt_handle!).topic === '%RETRY%g')).toBe(
      true,
    );
    const acks = await b.pop.ack(
      'g',
      'rv',
      retries.map((m) => m.receipt_handle!),
    );
    expect(acks.map((a) => a.code)).toEqual([OK, OK, OK, OK, OK]);
    // Exactly one retry record per message, and nothing left to revive.
    const retryQueue = await b.store.read('%RETRY%g', 0, 0, 100);
    expect(retryQueue.records.map((r) => r.reconsumeTimes)).toEqual([1, 1, 1, 1, 1]);
    b.clock.now += 120_000;
    expect(await b.revive.pass()).toBe(0);
    expect((await b.store.read('%RETRY%g', 0, 0, 100)).records).toHaveLength(5);
    expect(b.pop.invisible.size).toBe(0);
  });

  it('refuses a late ack of a delivery that is being revived', async () => {
    const b = await openLocalBroker({ fakeClock: 5_000_000 });
    await b.sendOk('rv2', [{ body: Buffer.from('x') }]);
    const [m] = await pop(b, 'rv2', { invisibleMs: 1_000 });
    b.clock.now += 2_000;
    const readAt = b.gate('readAt');
    const pass = b.revive.pass();
    await readAt.entered;
    const late = await b.pop.ack('g', 'rv2', [m!.receipt_handle!]);
    expect(late[0]!.code).toBe(EXPIRED);
    readAt.opened();
    await pass;
    const again = await pop(b, 'rv2');
    expect(again.map((x) => x.delivery_attempt)).toEqual([2]);
    expect((await b.pop.ack('g', 'rv2', [again[0]!.receipt_handle!]))[0]!.code).toBe(OK);
  });

  it('does not settle an offset that an offset reset handed out again meanwhile', async () => {
    const b = await openLocalBroker({ fakeClock: 7_000_000 });
    await b.sendOk('rv3', [{ body: Buffer.from('y') }]);
    await pop(b, 'rv3', { invisibleMs: 1_000 });
    b.clock.now += 2_000;
    const readAt = b.gate('readAt');
    const pass = b.revive.pass();
    await readAt.entered;
    await b.pop.resetOffset('g', 'rv3', 0, 0);
    readAt.opened();
    await pass;
    // The reset wins: the message is offered again from the queue, and its ack holds.
    const again = await pop(b, 'rv3');
    expect(again.map((x) => decodeReceiptHandle(x.receipt_handle!).topic)).toContain('rv3');
    const handle = again.find((x) => decodeReceiptHandle(x.receipt_handle!).topic === 'rv3')!;
    expect((await b.pop.ack('g', 'rv3', [handle.receipt_handle!]))[0]!.code).toBe(OK);
  });
});

describe('offset reset during a pop', () => {
  it('waits for the reading pop; the next pop starts at the reset point', async () => {
    const b = await openLocalBroker();
    await b.ctx.topics.upsert({
      topic_name: 'rs',
      read_queue_nums: 1,
      write_queue_nums: 1,
      perm: 6,
    });
    await b.sendOk(
      'rs',
      Array.from({ length: 10 }, (_, i) => ({ body: Buffer.from(`m${i}`) })),
    );
    const first = await pop(b, 'rs', { max: 5 });
    await b.pop.ack(
      'g',
      'rs',
      first.map((m) => m.receipt_handle!),
    );
    const read = b.gate('read');
    const racing = pop(b, 'rs', { max: 32 });
    await read.entered; // the pop has read offsets 5..9 and not yet taken them
    let resetDone = false;
    const reset = b.pop.resetOffset('g', 'rs', 0, 0).then(() => {
      resetDone = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(resetDone).toBe(false); // queued behind the pop
    read.opened();
    expect((await racing).map((m) => m.queue_offset)).toEqual([5, 6, 7, 8, 9]);
    await reset;
    const after = await pop(b, 'rs', { max: 32 });
    expect(after.map((m) => m.queue_offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('UpdateConsumerOffsets-style resets of a FIFO queue wait for its pop too', async () => {
    const b = await openLocalBroker();
    await b.ctx.topics.upsert({
      topic_name: 'rsf',
      read_queue_nums: 1,
      write_queue_nums: 1,
      perm: 6,
    });
    await b.ctx.groups.upsert({ group_name: 'g', consume_message_orderly: true });
    await b.sendOk(
      'rsf',
      Array.from({ length: 6 }, (_, i) => ({ body: Buffer.from(`m${i}`), message_group: `G${i}` })),
    );
    const first = await pop(b, 'rsf', { max: 3 });
    await b.pop.ack(
      'g',
      'rsf',
      first.map((m) => m.receipt_handle!),
    );
    const read = b.gate('read');
    const racing = pop(b, 'rsf', { max: 32 });
    await read.entered;
    const reset = b.pop.resetOffset('g', 'rsf', 0, 0);
    read.opened();
    await racing;
    await reset;
    const after = await pop(b, 'rsf', { max: 32 });
    expect(after.map((m) => m.queue_offset)).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('long poll and an arrival during its read', () => {
  /** Starts a poll, lands a wanted message while its read is paused (already answered), then lets it go. */
  const arriveDuringRead = async <T>(b: LocalBroker, topic: string, poll: () => Promise<T>) => {
    const read = b.gate('read');
    const started = Date.now();
    const p = poll();
    await read.entered;
    await b.sendOk(topic, [{ body: Buffer.from('wanted'), tag: 'A' }]);
    read.opened();
    const result = await p;
    return { result, ms: Date.now() - started };
  };
  const bodies = (ms: Array<{ message: { body: Buffer } | null }>) =>
    ms.map((m) => Buffer.from(m.message!.body).toString());

  it('a filtered pull wakes at once', async () => {
    const b = await openLocalBroker();
    await b.ctx.topics.upsert({
      topic_name: 'lp1',
      read_queue_nums: 1,
      write_queue_nums: 1,
      perm: 6,
    });
    await b.sendOk('lp1', [{ body: Buffer.from('other'), tag: 'B' }]);
    const { result, ms } = await arriveDuringRead(b, 'lp1', () =>
      b.pull.pull({
        topic: 'lp1',
        queue_id: 0,
        offset: 0,
        max_messages: 32,
        max_wait_ms: 5_000,
        filter: { type: 'TAG', expression: 'A' },
        consumer_group: '',
        commit_offset: -1,
        from_stored_offset: false,
        compact_messages: false,
        broadcast: false,
        client_id: '',
      }),
    );
    expect(bodies(result.messages as never)).toEqual(['wanted']);
    expect(ms).toBeLessThan(2_000);
  });

  /**
   * A pop reads its queues, then waits for its journal writes (here: the
   * settlement of the offset its filter skipped) before it answers or waits.
   * A message landing then must wake it.
   */
  const arriveBeforeWait = async <T>(b: LocalBroker, topic: string, poll: () => Promise<T>) => {
    const settle = b.gate('settle');
    const started = Date.now();
    const p = poll();
    await settle.entered;
    await b.sendOk(topic, [{ body: Buffer.from('wanted'), tag: 'A' }]);
    settle.opened();
    const result = await p;
    return { result, ms: Date.now() - started };
  };

  it('a filtered concurrent pop wakes at once', async () => {
    const b = await openLocalBroker();
    await b.ctx.topics.upsert({
      topic_name: 'lp2',
      read_queue_nums: 1,
      write_queue_nums: 1,
      perm: 6,
    });
    await b.sendOk('lp2', [{ body: Buffer.from('other'), tag: 'B' }]);
    const { result, ms } = await arriveBeforeWait(b, 'lp2', () =>
      pop(b, 'lp2', { waitMs: 5_000, filter: 'A' }),
    );
    expect(bodies(result as never)).toEqual(['wanted']);
    expect(ms).toBeLessThan(2_000);
  });

  it('a filtered FIFO pop wakes at once', async () => {
    const b = await openLocalBroker();
    await b.ctx.groups.upsert({ group_name: 'gf', consume_message_orderly: true });
    await b.ctx.topics.upsert({
      topic_name: 'lp3',
      read_queue_nums: 1,
      write_queue_nums: 1,
      perm: 6,
    });
    await b.sendOk('lp3', [{ body: Buffer.from('other'), tag: 'B' }]);
    const { result, ms } = await arriveBeforeWait(b, 'lp3', () =>
      b.pop.pop({
        group: 'gf',
        topic: 'lp3',
        queueId: -1,
        max: 32,
        invisibleMs: 60_000,
        waitMs: 5_000,
        filter: 'A',
      }),
    );
    expect(bodies(result as never)).toEqual(['wanted']);
    expect(ms).toBeLessThan(2_000);
  });
});
