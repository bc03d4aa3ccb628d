/**
 * Unit tests of the pieces that make pop/timer/transaction state durable:
 * offset runs, the journal record format (golden bytes), and the store's
 * replay, torn-tail handling and compaction.
 */
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QueueState } from '../../broker/messaging/consume-state.js';
import {
  decodeStateRecord,
  encodeStateRecord,
  RecordType,
  validateStateRecord,
} from '../../broker/messaging/consume-state-record.js';
import { ConsumeStateStore, toRuns } from '../../broker/messaging/consume-state-store.js';
import { InvisibleIndex } from '../../broker/messaging/invisible-index.js';
import { OffsetRuns } from '../../broker/messaging/offset-runs.js';
import { TimerIndex } from '../../broker/messaging/timer-index.js';
import { parseDelayLevels } from '../../broker/messaging/timer-service.js';
import { silentLogger } from '../../common/logger.js';
import { makeTempDir } from '../harness/tmp.js';

describe('OffsetRuns', () => {
  it('merges adjacent and overlapping runs and answers membership', () => {
    const r = new OffsetRuns();
    r.add(5);
    r.add(7);
    expect(r.toArray()).toEqual([
      [5, 6],
      [7, 8],
    ]);
    r.add(6);
    expect(r.toArray()).toEqual([[5, 8]]);
    r.addRange(10, 20);
    r.addRange(8, 10);
    expect(r.toArray()).toEqual([[5, 20]]);
    r.addRange(30, 40);
    r.addRange(15, 35);
    expect(r.toArray()).toEqual([[5, 40]]);
    expect(r.has(4)).toBe(false);
    expect(r.has(5)).toBe(true);
    expect(r.has(39)).toBe(true);
    expect(r.has(40)).toBe(false);
    expect(r.nextAbsent(7)).toBe(40);
    expect(r.nextAbsent(2)).toBe(2);
    expect(r.nextPresent(1)).toBe(5);
    expect(r.nextPresent(41)).toBeUndefined();
    expect(r.takeRunAt(5)).toBe(40);
    expect(r.runCount).toBe(0);
  });

  it('keeps one run per gap, however many offsets', () => {
    const r = new OffsetRuns();
    for (let i = 0; i < 100_000; i++) if (i % 1000 !== 0) r.add(i);
    expect(r.runCount).toBe(100);
    expect(r.size).toBe(99_900);
  });

  it('turns offsets into runs', () => {
    expect(toRuns([4, 1, 2, 3, 9, 9, 10])).toEqual([
      [1, 5],
      [9, 11],
    ]);
    expect(toRuns([])).toEqual([]);
  });
});

describe('QueueState', () => {
  it('moves base over settled offsets in any order and forgets settled in-flight entries', () => {
    const s = new QueueState('g', 't', 0, 10);
    const entry = (offset: number) => ({
      offset,
      physicalOffset: offset * 100,
      popTime: 1,
      invisibleMs: 1000,
      attempt: 1,
      messageGroup: '',
      fifo: false,
    });
    s.applyPut(entry(10));
    s.applyPut(entry(11));
    s.applySettle(11, 12);
    expect(s.base).toBe(10);
    expect(s.isOpen(11)).toBe(false);
    s.applySettle(10, 11);
    expect(s.base).toBe(12);
    expect(s.inflight.size).toBe(0);
    s.applyPut(entry(5)); // below base: ignored
    expect(s.inflight.size).toBe(0);
  });
});

describe('consume-state record', () => {
  it('encodes PUT, SETTLE and RESET to the documented bytes (golden)', () => {
    const put = encodeStateRecord({
      type: RecordType.PUT,
      group: 'g',
      topic: 't',
      queueId: 2,
      entries: [
        {
          offset: 7,
          physicalOffset: 4096,
          popTime: 1_700_000_000_000,
          invisibleMs: 30_000,
          attempt: 3,
          messageGroup: 'mg',
          fifo: true,
        },
      ],
    });
    expect(put.toString('hex')).toBe(
      [
        '0000003a', // size 58
        '3ed983be', // crc32 of bytes [8, 58)
        '01', // PUT
        '000167', // group "g"
        '000174', // topic "t"
        '00000002', // queue 2
        '00000001', // one entry
        '401c000000000000', // offset 7
        '40b0000000000000', // physical 4096
        '4278bcfe56800000', // pop time
        '00007530', // invisible 30000
        '0003', // attempt 3
        '01', // fifo
        '0002', // group length
        '6d67', // "mg"
      ].join(''),
    );
    const settle = encodeStateRecord({
      type: RecordType.SETTLE,
      group: 'g',
      topic: 't',
      queueId: 0,
      runs: [[1, 3]],
    });
    expect(settle.subarray(8).toString('hex')).toBe(
      // type | "g" | "t" | queue 0 | one run | start 1.0 | end 3.0
      `02${'000167'}${'000174'}${'00000000'}${'00000001'}${'3ff0000000000000'}${'4008000000000000'}`,
    );
    const reset = encodeStateRecord({
      type: RecordType.RESET,
      group: 'g',
      topic: 't',
      queueId: 0,
      base: 5,
    });
    expect(reset.subarray(8).toString('hex')).toBe(
      `03${'000167'}${'000174'}${'00000000'}${'4014000000000000'}`,
    );
    for (const buf of [put, settle, reset]) {
      expect(validateStateRecord(buf, 0)).toBeUndefined();
      expect(encodeStateRecord(decodeStateRecord(buf, 0).record).equals(buf)).toBe(true);
    }
  });

  it('refuses a torn or corrupted record', () => {
    const buf = encodeStateRecord({
      type: RecordType.RESET,
      group: 'grp',
      topic: 'top',
      queueId: 1,
      base: 9,
    });
    expect(validateStateRecord(buf.subarray(0, buf.length - 1), 0)).toBe('truncated record');
    const bad = Buffer.from(buf);
    bad[bad.length - 1] ^= 0xff;
    expect(validateStateRecord(bad, 0)).toBe('crc mismatch');
  });
});

describe('ConsumeStateStore', () => {
  const dirs: Array<{ remove(): void }> = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.remove();
  });
  const open = async (dir: string, compactBytes?: number) => {
    const s = new ConsumeStateStore({
      dir,
      flushDiskType: 'ASYNC_FLUSH',
      flushIntervalMs: 100,
      compactBytes,
      logger: silentLogger,
    });
    await s.open();
    return s;
  };
  const entry = (offset: number, attempt = 1) => ({
    offset,
    physicalOffset: offset * 10,
    popTime: 1000 + offset,
    invisibleMs: 5000,
    attempt,
    messageGroup: '',
    fifo: false,
  });

  it('replays the journal after a crash (no close) and cuts a torn tail', async () => {
    const tmp = makeTempDir();
    dirs.push(tmp);
    const a = await open(tmp.path);
    const st = a.obtain('g', 't', 0, () => 100);
    await a.put(st, [entry(100), entry(101), entry(102)]);
    await a.settleOffsets(st, [100, 102]);
    await a.put(st, [entry(101, 2)]);
    // No close(): the process "dies" here. Append garbage as a torn record.
    await a.release();
    const journal = readdirSync(tmp.path).find((n) => n.startsWith('journal-'))!;
    appendFileSync(join(tmp.path, journal), Buffer.from([0, 0, 0, 200, 1, 2, 3]));
    const b = await open(tmp.path);
    const st2 = b.get('g', 't', 0)!;
    expect(st2.base).toBe(101);
    expect([...st2.inflight.keys()]).toEqual([101]);
    expect(st2.inflight.get(101)!.attempt).toBe(2);
    expect(st2.isSettled(102)).toBe(true);
    // The torn tail was cut; new records append cleanly after it.
    await b.settleOffsets(st2, [101]);
    await b.release();
    const c = await open(tmp.path);
    expect(c.get('g', 't', 0)!.base).toBe(103);
    await c.close();
  });

  it('journals thousands of records queued in one turn (more buffers than IOV_MAX) and replays them all', async () => {
    const tmp = makeTempDir();
    dirs.push(tmp);
    const a = await open(tmp.path);
    const st = a.obtain('g', 't', 2, () => 0);
    // 3,000 records queued in one turn of the event loop: one flush of 3,000 buffers.
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 3000; i++) writes.push(a.put(st, [entry(i)]));
    await Promise.all(writes);
    await a.release();
    const b = await open(tmp.path);
    const st2 = b.get('g', 't', 2)!;
    expect(st2.inflight.size).toBe(3000);
    expect(st2.inflight.has(0)).toBe(true);
    expect(st2.inflight.has(2999)).toBe(true);
    await b.close();
  });

  it('compacts into a snapshot and deletes old journals without losing state', async () => {
    const tmp = makeTempDir();
    dirs.push(tmp);
    const a = await open(tmp.path, 4096);
    const st = a.obtain('g', 't', 1, () => 0);
    for (let i = 0; i < 400; i++) {
      await a.put(st, [entry(i)]);
      if (i % 2 === 0) await a.settleOffsets(st, [i]);
    }
    await a.flush();
    await a.release();
    const files = readdirSync(tmp.path);
    expect(files).toContain('snapshot.json');
    expect(files.filter((n) => n.startsWith('journal-')).length).toBeLessThanOrEqual(2);
    const snap = JSON.parse(readFileSync(join(tmp.path, 'snapshot.json'), 'utf8'));
    expect(snap.seq).toBeGreaterThan(0);
    const b = await open(tmp.path);
    const st2 = b.get('g', 't', 1)!;
    expect(st2.base).toBe(1);
    expect(st2.inflight.size).toBe(200);
    expect(st2.isSettled(398)).toBe(true);
    expect(st2.inflight.has(399)).toBe(true);
    // A clean close leaves only the snapshot: the next start replays nothing.
    await b.close();
    expect(readdirSync(tmp.path).filter((n) => n.startsWith('journal-'))).toEqual([]);
    const c = await open(tmp.path);
    expect(c.get('g', 't', 1)!.inflight.size).toBe(200);
    await c.close();
  });

  it('SYNC_FLUSH resolves writes after fdatasync, sharing it between concurrent changes', async () => {
    const tmp = makeTempDir();
    dirs.push(tmp);
    const s = new ConsumeStateStore({
      dir: tmp.path,
      flushDiskType: 'SYNC_FLUSH',
      flushIntervalMs: 100,
      logger: silentLogger,
    });
    await s.open();
    const st = s.obtain('g', 't', 0, () => 0);
    await Promise.all(Array.from({ length: 200 }, (_, i) => s.put(st, [entry(i)])));
    const journal = readdirSync(tmp.path).find((n) => n.startsWith('journal-'))!;
    expect(statSync(join(tmp.path, journal)).size).toBeGreaterThan(200 * 40);
    writeFileSync(join(tmp.path, 'unrelated'), 'x');
    await s.release();
    const again = await open(tmp.path);
    expect(again.get('g', 't', 0)!.inflight.size).toBe(200);
    await again.close();
  });
});

describe('TimerIndex', () => {
  it('never answers a timer before its due time and keeps bucket order', () => {
    const ix = new TimerIndex();
    const base = 1_700_000_000_000;
    for (let i = 0; i < 1000; i++)
      ix.add({ offset: i, physicalOffset: i, dueAt: base + (i % 10) * 37 });
    let taken = 0;
    for (let t = base - 50; t <= base + 400; t += 7) {
      for (const e of ix.takeDue(t, 1_000_000)) {
        expect(e.dueAt).toBeLessThanOrEqual(t);
        taken++;
      }
    }
    expect(taken).toBe(1000);
    expect(ix.size).toBe(0);
  });

  it('limits a batch and continues with the rest', () => {
    const ix = new TimerIndex();
    for (let i = 0; i < 50; i++) ix.add({ offset: i, physicalOffset: i, dueAt: 1000 });
    expect(ix.takeDue(5000, 20)).toHaveLength(20);
    expect(ix.takeDue(5000, 100)).toHaveLength(30);
  });

  it('parses RocketMQ delay levels', () => {
    const levels = parseDelayLevels('1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h');
    expect(levels).toHaveLength(18);
    expect(levels[0]).toBe(1000);
    expect(levels[17]).toBe(7_200_000);
    expect(() => parseDelayLevels('1s 5x')).toThrow();
  });
});

describe('InvisibleIndex', () => {
  it('takes entries once their invisible time ran out and forgets removed ones', () => {
    const ix = new InvisibleIndex();
    const st = new QueueState('g', 't', 0, 0);
    const mk = (offset: number, popTime: number) => ({
      offset,
      physicalOffset: 0,
      popTime,
      invisibleMs: 1000,
      attempt: 1,
      messageGroup: '',
      fifo: false,
    });
    const a = mk(1, 10_000);
    const b = mk(2, 10_050);
    const c = mk(3, 10_500);
    ix.add(st, a);
    ix.add(st, b);
    ix.add(st, c);
    ix.remove(b);
    expect(ix.takeDue(10_999, 10)).toEqual([]);
    expect(ix.takeDue(11_000, 10).map(([, e]) => e.offset)).toEqual([1]);
    expect(ix.takeDue(11_499, 10)).toEqual([]);
    expect(ix.takeDue(11_500, 10).map(([, e]) => e.offset)).toEqual([3]);
    expect(ix.size).toBe(0);
  });
});
