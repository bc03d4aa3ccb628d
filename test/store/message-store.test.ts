import {
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { CommitLog } from '../../broker/store/commitlog.js';
import { BLANK_MAGIC, validateRecord } from '../../broker/store/commitlog-record.js';
import {
  type AppendResult,
  DELETED_TOPICS_FILE,
  type DispatchEvent,
  type MessageStore,
  parseTopicTombstones,
  SysFlag,
} from '../../broker/store/index.js';
import { createMessageStore } from '../../broker/store/message-store.js';
import { Code, isSluiceError } from '../../common/errors.js';
import { waitFor } from '../harness/wait.js';
import { message, readAll, SMALL, type TempStore, tempStore } from './helpers.js';

let tmp: TempStore[] = [];
let stores: MessageStore[] = [];

/** A started store in a fresh temp dir (closed and removed after the test). */
async function setup(
  ...args: Parameters<TempStore['open']>
): Promise<{ store: MessageStore; dir: string }> {
  const t = tempStore();
  tmp.push(t);
  const store = t.open(...args);
  stores.push(store);
  await store.start();
  return { store, dir: t.dir };
}

afterEach(async () => {
  for (const s of stores) await s.close();
  for (const t of tmp) t.remove();
  stores = [];
  tmp = [];
});

async function expectCode(p: Promise<unknown>, code: number): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isSluiceError(err, code), `expected code ${code}, got ${String(err)}`).toBe(true);
}

describe('message store: append and read', () => {
  it('assigns gap-free queue offsets and reads every record back intact across segments', async () => {
    const { store, dir: root } = await setup();
    const sent = [];
    for (let b = 0; b < 20; b++) {
      const batch = Array.from({ length: 25 }, (_, i) =>
        message({ queueId: i % 3, body: Buffer.alloc(900, b * 25 + i), keys: [`k${b * 25 + i}`] }),
      );
      const results = await store.appendBatch(batch);
      sent.push(...batch.map((m, i) => ({ m, r: results[i]! })));
    }
    for (let q = 0; q < 3; q++) {
      const mine = sent.filter((s) => s.m.queueId === q);
      expect(mine.map((s) => s.r.queueOffset)).toEqual(mine.map((_, i) => i));
      const records = await readAll(store, 'T', q);
      expect(records).toHaveLength(mine.length);
      records.forEach((rec, i) => {
        expect(rec.queueOffset).toBe(i);
        expect(rec.physicalOffset).toBe(mine[i]!.r.physicalOffset);
        expect(rec.body.equals(mine[i]!.m.body)).toBe(true);
        expect(rec.messageId).toBe(mine[i]!.m.messageId);
        expect(rec.offsetMessageId).toBe(mine[i]!.r.offsetMessageId);
      });
      expect(store.maxOffset('T', q)).toBe(mine.length);
    }
    // 500 records of ~1 KiB over 64 KiB segments: every full segment is closed by a blank record.
    const dir = join(root, 'commitlog');
    const files = readdirSync(dir).sort();
    expect(files.length).toBeGreaterThan(5);
    expect(files[1]).toBe('00000000000000065536');
    for (const f of files.slice(0, -1)) {
      expect(statSync(join(dir, f)).size).toBe(64 * 1024);
      const bytes = readFileSync(join(dir, f));
      // Walk the records: they end with one blank reaching the segment end.
      let p = 0;
      while (bytes.readUInt32BE(p + 4) !== BLANK_MAGIC) p += bytes.readInt32BE(p);
      expect(p + bytes.readInt32BE(p)).toBe(64 * 1024);
    }
    // No record spans a segment.
    for (const { r } of sent) {
      expect(Math.floor(r.physicalOffset / 65536)).toBe(
        Math.floor((r.physicalOffset + r.size - 1) / 65536),
      );
    }
  });

  it('writes large bodies straight from the caller (no copy) with the same bytes as small ones', async () => {
    const { store } = await setup({ mapedFileSizeCommitLog: 256 * 1024 });
    const sizes = [10, 5000, 4095, 4096, 70_000, 3, 20_000, 20_000, 1];
    const batch = sizes.map((n, i) => message({ body: Buffer.alloc(n, i + 1), keys: [`z${i}`] }));
    const results = [...(await store.appendBatch(batch)), ...(await store.appendBatch(batch))];
    const records = await readAll(store, 'T', 0);
    expect(records.map((r) => r.body.length)).toEqual([...sizes, ...sizes]);
    records.forEach((r, i) => {
      expect(r.body.equals(batch[i % sizes.length]!.body)).toBe(true);
      expect(r.physicalOffset).toBe(results[i]!.physicalOffset);
    });
    // Every record passes the full CRC validation where it lies.
    for (let at = 0; at < store.maxPhysicalOffset(); ) {
      const raw = await store.readRaw(at, 1 << 20);
      for (let p = 0; p < raw.length; p += raw.readInt32BE(p)) {
        if (raw.readUInt32BE(p + 4) === BLANK_MAGIC) continue;
        expect(validateRecord(raw, p, raw.length - p, at + p)).toBeUndefined();
      }
      at += raw.length;
    }
  });

  it('keeps call order and gap-free offsets for concurrent appends', async () => {
    const { store } = await setup();
    const pending = Array.from({ length: 200 }, (_, i) =>
      store.appendBatch([message({ body: Buffer.from(`m${i}`) })]),
    );
    const results = await Promise.all(pending);
    expect(results.map((r) => r[0]!.queueOffset)).toEqual(results.map((_, i) => i));
    const phys = results.map((r) => r[0]!.physicalOffset);
    expect([...phys].sort((a, b) => a - b)).toEqual(phys);
    const records = await readAll(store, 'T', 0);
    expect(records.map((r) => r.body.toString())).toEqual(results.map((_, i) => `m${i}`));
  });

  it('filters by tag: hash in the consume queue, string re-checked, nextOffset past skipped entries', async () => {
    const { store } = await setup({ mapedFileSizeCommitLog: 4 * 1024 * 1024 });
    const tags = ['A', 'B', 'C', 'Aa', 'BB']; // "Aa" and "BB" share a Java hash code
    await store.appendBatch(Array.from({ length: 50 }, (_, i) => message({ tag: tags[i % 5]! })));
    const a = await store.read('T', 0, 0, 100, { tags: new Set(['A']) });
    expect(a.records.map((r) => r.queueOffset)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45]);
    expect(a.nextOffset).toBe(50);
    // "BB" matches the hash of "Aa": it is taken from the consume queue, dropped on the string
    // re-check, and counted as scanned. Fewer records than asked is fine; nextOffset moves on.
    const aa = await store.read('T', 0, 0, 3, { tags: new Set(['Aa']) });
    expect(aa.records.map((r) => [r.tag, r.queueOffset])).toEqual([
      ['Aa', 3],
      ['Aa', 8],
    ]);
    expect(aa.nextOffset).toBe(9);
    const rest = await store.read('T', 0, aa.nextOffset, 100, { tags: new Set(['Aa']) });
    expect(rest.records.map((r) => r.queueOffset)).toEqual([13, 18, 23, 28, 33, 38, 43, 48]);
    const all = await store.read('T', 0, 0, 10, { tags: new Set(['*']) });
    expect(all.records).toHaveLength(10);
    const none = await store.read('T', 0, 0, 10, { tags: new Set(['Z']) });
    expect(none.records).toHaveLength(0);
    expect(none.nextOffset).toBe(50);
  });

  it('caps the entries one filtered read scans', async () => {
    const { store } = await setup({
      mapedFileSizeCommitLog: 8 * 1024 * 1024,
      mapedFileSizeConsumeQueue: 20 * 1000,
    });
    for (let b = 0; b < 6; b++) {
      await store.appendBatch(
        Array.from({ length: 1000 }, () => message({ tag: 'noise', body: Buffer.alloc(10) })),
      );
    }
    await store.appendBatch([message({ tag: 'wanted' })]);
    const first = await store.read('T', 0, 0, 10, { tags: new Set(['wanted']) });
    expect(first.records).toHaveLength(0);
    expect(first.nextOffset).toBe(4096);
    const second = await store.read('T', 0, first.nextOffset, 10, { tags: new Set(['wanted']) });
    expect(second.records.map((r) => r.queueOffset)).toEqual([6000]);
    expect(second.nextOffset).toBe(6001);
  });

  it('answers reads outside [min, max) without failing', async () => {
    const { store } = await setup();
    expect(await store.read('nope', 0, 5, 10)).toEqual({
      records: [],
      nextOffset: 0,
      minOffset: 0,
      maxOffset: 0,
    });
    await store.appendBatch([message(), message()]);
    const beyond = await store.read('T', 0, 9, 10);
    expect(beyond).toMatchObject({ records: [], nextOffset: 2, maxOffset: 2 });
    const below = await store.read('T', 0, -5, 1);
    expect(below.records[0]?.queueOffset).toBe(0);
  });

  it('refuses invalid batches whole, with the error a caller can act on', async () => {
    const { store } = await setup({ maxMessageSize: 1024 });
    await expectCode(
      store.appendBatch([message(), message({ body: Buffer.alloc(2000) })]),
      Code.MESSAGE_BODY_TOO_LARGE,
    );
    await expectCode(
      store.appendBatch([message({ properties: { bad: 'x\u0001y' } })]),
      Code.ILLEGAL_MESSAGE_PROPERTY_KEY,
    );
    await expectCode(store.appendBatch([message({ topic: '../etc' })]), Code.ILLEGAL_TOPIC);
    await expectCode(store.appendBatch([message({ tag: 'a\u0002' })]), Code.ILLEGAL_MESSAGE_TAG);
    expect(store.maxOffset('T', 0)).toBe(0);
    expect(store.maxPhysicalOffset()).toBe(0);
    const [r] = await store.appendBatch([message()]);
    expect(r!.queueOffset).toBe(0);
  });

  it('rolls a failed write back: the append fails, offsets are reused, the log stays whole', async () => {
    const { store } = await setup();
    await store.appendBatch([message(), message()]);
    // A disk error cannot be caused on demand here: make the segment's next write fail.
    const { commitlog } = store as unknown as { commitlog: CommitLog };
    const segment = commitlog.segments[0]!;
    const realWrite = segment.write.bind(segment);
    segment.write = async (bufs, pos, bytes) => {
      segment.write = realWrite;
      await realWrite(bufs, pos, Math.floor(bytes / 2)); // half lands on disk, then EIO
      throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
    };
    const failed = store.appendBatch([message({ body: Buffer.alloc(3000) })]);
    const queued = store.appendBatch([message()]);
    await expectCode(failed, Code.INTERNAL_ERROR);
    await expectCode(queued, Code.INTERNAL_ERROR);
    const before = store.maxPhysicalOffset();
    const [next] = await store.appendBatch([message({ body: Buffer.from('after') })]);
    expect(next!.queueOffset).toBe(2);
    expect(next!.physicalOffset).toBe(before);
    const records = await readAll(store, 'T', 0);
    expect(records.map((r) => r.queueOffset)).toEqual([0, 1, 2]);
    expect(records[2]!.body.toString()).toBe('after');
  });

  it('writes small batches on the event loop, big ones through the thread pool; a write that blocks the loop sends writes to the thread pool', async () => {
    // One segment holds it all (the big batch is 80 × ~4 KiB, over SYNC_WRITE_MAX_BYTES).
    const { store } = await setup({ mapedFileSizeCommitLog: 4 * 1024 * 1024 });
    await store.appendBatch([message()]);
    const { commitlog } = store as unknown as { commitlog: CommitLog };
    const segment = commitlog.segments[0]!;
    const realWrite = segment.write.bind(segment);
    const onLoop: boolean[] = [];
    let stallNext = false;
    segment.write = (bufs, pos, bytes, now) => {
      onLoop.push(now === true);
      const p = realWrite(bufs, pos, bytes, now);
      if (stallNext) {
        stallNext = false;
        // As a write held up by dirty-page throttling would.
        const until = performance.now() + 8;
        while (performance.now() < until);
      }
      return p;
    };
    await store.appendBatch([message({ body: Buffer.from('small') })]);
    await store.appendBatch(
      Array.from({ length: 80 }, () => message({ body: Buffer.alloc(4000, 0x61) })),
    );
    expect(onLoop).toEqual([true, false]);
    stallNext = true;
    await store.appendBatch([message({ body: Buffer.from('stalls') })]);
    await store.appendBatch([message({ body: Buffer.from('after the stall') })]);
    expect(onLoop).toEqual([true, false, true, false]);
    const bodies = (await readAll(store, 'T', 0)).map((r) => r.body.toString());
    expect(bodies.at(-2)).toBe('stalls');
    expect(bodies.at(-1)).toBe('after the stall');
    expect(bodies).toHaveLength(84);
  });

  it('fails a batch spanning two segments whole when its second write fails: none of it stays in the log', async () => {
    const t = tempStore();
    tmp.push(t);
    let store = t.open();
    await store.start();
    await store.appendBatch([message(), message()]);
    const batchStart = store.maxPhysicalOffset();
    const { commitlog } = store as unknown as { commitlog: CommitLog };
    // A disk error cannot be caused on demand: the second segment's first write fails.
    const segmentForWrite = commitlog.segmentForWrite.bind(commitlog);
    commitlog.segmentForWrite = (offset) => {
      const seg = segmentForWrite(offset);
      if (seg.start > 0) {
        commitlog.segmentForWrite = segmentForWrite;
        seg.write = async () => {
          throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
        };
      }
      return seg;
    };
    // 30 × ~3 KiB from segment 0 into segment 1 (64 KiB segments): two writes.
    const failed = store.appendBatch(
      Array.from({ length: 30 }, () => message({ body: Buffer.alloc(3000, 0xee) })),
    );
    const queued = store.appendBatch([message({ body: Buffer.from('queued') })]);
    expect(commitlog.segments).toHaveLength(2);
    await expectCode(failed, Code.INTERNAL_ERROR);
    await expectCode(queued, Code.INTERNAL_ERROR);
    expect(store.maxPhysicalOffset()).toBe(batchStart);
    const [next] = await store.appendBatch([message({ body: Buffer.from('after') })]);
    expect(next).toMatchObject({ queueOffset: 2, physicalOffset: batchStart });
    await store.close();
    // Rebuilt from the commitlog alone, the queue must say the same.
    rmSync(join(t.dir, 'consumequeue'), { recursive: true });
    store = t.open();
    stores.push(store);
    await store.start();
    const records = await readAll(store, 'T', 0);
    expect(records.map((r) => r.queueOffset)).toEqual([0, 1, 2]);
    expect(records[2]!.body.toString()).toBe('after');
    expect(store.maxPhysicalOffset()).toBe(next!.physicalOffset + next!.size);
  });

  it('emits a dispatch event per stored message, with the tag code', async () => {
    const { store } = await setup();
    const events: DispatchEvent[] = [];
    const off = store.onDispatch((e) => events.push(e));
    const [r1, r2] = await store.appendBatch([
      message({ tag: 'TagA' }),
      message({ topic: 'timer', queueId: 2, tagsCode: 1_800_000_000_000n }),
    ]);
    expect(events).toEqual([
      {
        topic: 'T',
        queueId: 0,
        queueOffset: 0,
        physicalOffset: r1!.physicalOffset,
        tagsCode: 2_598_919n,
        storeTimestamp: r1!.storeTimestamp,
      },
      {
        topic: 'timer',
        queueId: 2,
        queueOffset: 0,
        physicalOffset: r2!.physicalOffset,
        tagsCode: 1_800_000_000_000n,
        storeTimestamp: r2!.storeTimestamp,
      },
    ]);
    off();
    await store.appendBatch([message()]);
    expect(events).toHaveLength(2);
    expect(store.queueIds('timer')).toEqual([2]);
  });

  it('keeps prepared and rolled-back transaction records out of consume queues', async () => {
    const { store } = await setup();
    const [prepared, commit, rollback, normal] = await store.appendBatch([
      message({ sysFlag: SysFlag.TRANSACTION_PREPARED, body: Buffer.from('half') }),
      message({ sysFlag: SysFlag.TRANSACTION_COMMIT, body: Buffer.from('commit') }),
      message({ sysFlag: SysFlag.TRANSACTION_ROLLBACK, body: Buffer.from('rollback') }),
      message({ body: Buffer.from('normal') }),
    ]);
    expect(prepared!.queueOffset).toBe(0);
    expect(commit!.queueOffset).toBe(0);
    expect(normal!.queueOffset).toBe(1);
    const records = await readAll(store, 'T', 0);
    expect(records.map((r) => r.body.toString())).toEqual(['commit', 'normal']);
    expect((await store.readAt(prepared!.physicalOffset))?.body.toString()).toBe('half');
    expect((await store.readAt(rollback!.physicalOffset))?.sysFlag).toBe(
      SysFlag.TRANSACTION_ROLLBACK,
    );
  });
});

describe('message store: lookups', () => {
  it('finds records by key, by client id (index) and by offset id (no index)', async () => {
    const { store, dir } = await setup();
    const batch = Array.from({ length: 300 }, (_, i) =>
      message({ keys: [`order-${i % 50}`, `user-${i}`], body: Buffer.from(`b${i}`) }),
    );
    const results = await store.appendBatch(batch);
    await store.flush();
    // maxIndexNum is 256 in tests: the index rolled over several files.
    expect(readdirSync(join(dir, 'index')).length).toBeGreaterThan(1);

    const byKey = await store.lookupByKey('T', 'order-7', 100);
    expect(byKey.map((r) => r.body.toString())).toEqual([
      'b257',
      'b207',
      'b157',
      'b107',
      'b57',
      'b7',
    ]);
    expect(await store.lookupByKey('T', 'order-7', 2)).toHaveLength(2);
    expect(await store.lookupByKey('other', 'order-7', 10)).toEqual([]);
    expect((await store.lookupByKey('T', 'user-299', 10))[0]?.queueOffset).toBe(299);

    const byId = await store.lookupById('T', batch[123]!.messageId);
    expect(byId?.physicalOffset).toBe(results[123]!.physicalOffset);

    const byOffsetId = await store.lookupById(undefined, results[200]!.offsetMessageId);
    expect(byOffsetId?.body.toString()).toBe('b200');
    // A message without a client id has no id entry in the index: the offset id still finds it.
    const [anonymous] = await store.appendBatch([
      message({ messageId: '', body: Buffer.from('anon') }),
    ]);
    expect(anonymous!.messageId).toBe(anonymous!.offsetMessageId);
    const found = await store.lookupById('T', anonymous!.offsetMessageId);
    expect(found?.body.toString()).toBe('anon');
    expect(found?.messageId).toBe(anonymous!.offsetMessageId);
    expect(await store.lookupById(undefined, '7F00000100002A9F00000000DEADBEEF')).toBeUndefined();
    expect(await store.readAt(results[5]!.physicalOffset + 1)).toBeUndefined();
  });

  it('finds the offset for a time and the store time of an offset (injected clock)', async () => {
    let now = 1_000_000;
    const { store } = await setup({}, { clock: () => now });
    for (let i = 0; i < 10; i++) {
      now = 1_000_000 + i * 1000;
      await store.appendBatch([message(), message()]);
    }
    expect(await store.storeTimestampAt('T', 0, 4)).toBe(1_002_000);
    expect(await store.storeTimestampAt('T', 0, 99)).toBeUndefined();
    expect(await store.offsetByTime('T', 0, 0)).toBe(0);
    expect(await store.offsetByTime('T', 0, 1_002_000)).toBe(4);
    expect(await store.offsetByTime('T', 0, 1_002_001)).toBe(6);
    expect(await store.offsetByTime('T', 0, 9_999_999)).toBe(20);
  });

  it('deletes a topic: queues and files gone, other topics untouched', async () => {
    const { store, dir } = await setup();
    await store.appendBatch([message({ topic: 'gone' }), message({ topic: 'kept' })]);
    await store.flush();
    await store.deleteTopic('gone');
    expect(store.maxOffset('gone', 0)).toBe(0);
    expect(store.queueIds('gone')).toEqual([]);
    expect(readdirSync(join(dir, 'consumequeue'))).toEqual(['kept']);
    expect((await readAll(store, 'kept', 0)).length).toBe(1);
  });

  it('continues the queue offsets of a re-created topic after the deleted one and never serves its old records', async () => {
    const { store } = await setup();
    const old = await store.appendBatch([
      message({ topic: 'again', queueId: 0, keys: ['k-again'] }),
      ...Array.from({ length: 2 }, () => message({ topic: 'again', queueId: 0 })),
      ...Array.from({ length: 2 }, () => message({ topic: 'again', queueId: 1 })),
    ]);
    await store.deleteTopic('again');
    const fresh = await store.appendBatch([
      message({ topic: 'again', queueId: 0, keys: ['k-again'] }),
      message({ topic: 'again', queueId: 0 }),
      message({ topic: 'again', queueId: 1 }),
      message({ topic: 'again', queueId: 2 }), // a queue the deleted topic did not have
    ]);
    expect(fresh.map((r) => r.queueOffset)).toEqual([3, 4, 2, 0]);
    // A consumer starting at 0 is moved to the new records; none of the old ones comes back.
    const fromZero = await store.read('again', 0, 0, 100);
    expect(fromZero).toMatchObject({ minOffset: 3, maxOffset: 5, nextOffset: 5 });
    expect(fromZero.records.map((r) => [r.queueOffset, r.messageId])).toEqual([
      [3, fresh[0]!.messageId],
      [4, fresh[1]!.messageId],
    ]);
    const oldIds = new Set(old.map((r) => r.messageId));
    for (const q of [0, 1, 2]) {
      const got = await store.read('again', q, 0, 100);
      expect(got.records.some((r) => oldIds.has(r.messageId))).toBe(false);
    }
    expect((await store.readQueueEntries('again', 1, 0, 10)).entries).toHaveLength(1);
    // Lookups by key and id see only the new generation.
    const byKey = await store.lookupByKey('again', 'k-again', 10);
    expect(byKey.map((r) => r.messageId)).toEqual([fresh[0]!.messageId]);
    expect(await store.lookupById('again', old[0]!.messageId)).toBeUndefined();
    expect(await store.lookupById('again', old[0]!.offsetMessageId)).toBeUndefined();
    expect(await store.lookupById(undefined, old[0]!.offsetMessageId)).toBeUndefined();
    expect((await store.lookupById('again', fresh[0]!.messageId))?.physicalOffset).toBe(
      fresh[0]!.physicalOffset,
    );
    expect((await store.lookupById(undefined, fresh[0]!.offsetMessageId))?.messageId).toBe(
      fresh[0]!.messageId,
    );
    // The raw read by physical offset still reaches the old record (retention decides).
    expect((await store.readAt(old[0]!.physicalOffset))?.messageId).toBe(old[0]!.messageId);
    // Deleted again: the second deletion continues after both generations.
    await store.deleteTopic('again');
    const [third] = await store.appendBatch([message({ topic: 'again', queueId: 0 })]);
    expect(third!.queueOffset).toBe(5);
  });
});

describe('message store: resources', () => {
  /** Descriptors this process holds on files under `dir`. */
  function openFilesUnder(dir: string): number {
    let n = 0;
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) n++;
      } catch {
        // closed meanwhile (the readdir's own descriptor)
      }
    }
    return n;
  }

  /** Waits until at most `bound` descriptors are open under `dir` (closes of evicted ones run in the background). */
  async function expectOpenAtMost(dir: string, bound: number): Promise<void> {
    let open = 0;
    await waitFor(
      `at most ${bound} open files`,
      () => {
        open = openFilesUnder(dir);
        return open <= bound;
      },
      2000,
      5,
    ).catch(() => undefined);
    expect(open).toBeLessThanOrEqual(bound);
  }

  it('keeps open descriptors bounded over many queues, index files and segments, reopening on demand', async () => {
    const t = tempStore();
    tmp.push(t);
    // SMALL sizes: 64-entry consume queue files, 256-entry index files, 64 KiB segments.
    const maxOpenFiles = 12;
    // Beyond the bound: the segment and index file being filled, the checkpoint.
    const bound = maxOpenFiles + 3;
    let store = t.open({ maxOpenFiles });
    await store.start();
    const sent = [];
    for (let b = 0; b < 20; b++) {
      sent.push(
        ...(await store.appendBatch(
          Array.from({ length: 200 }, (_, i) =>
            message({ topic: `t${i % 10}`, queueId: i % 4, keys: [`k${b}-${i}`] }),
          ),
        )),
      );
    }
    await store.flush();
    const stats = store.stats();
    expect(stats.commitlogSegments).toBeGreaterThan(5);
    expect(readdirSync(join(t.dir, 'index')).length).toBeGreaterThan(20);
    await expectOpenAtMost(t.dir, bound);
    // Every queue and old index file is still readable (descriptors reopened on demand).
    let read = 0;
    for (let topic = 0; topic < 10; topic++) {
      for (let q = 0; q < 4; q++) read += (await readAll(store, `t${topic}`, q)).length;
    }
    expect(read).toBe(sent.length);
    expect((await store.lookupByKey('t3', 'k0-3', 5))[0]?.physicalOffset).toBe(
      sent[3]!.physicalOffset,
    );
    await expectOpenAtMost(t.dir, bound);
    await store.close();
    expect(openFilesUnder(t.dir)).toBe(0);
    // A restart opens only what it needs, within the bound.
    store = t.open({ maxOpenFiles });
    stores.push(store);
    await store.start();
    await expectOpenAtMost(t.dir, bound);
    expect((await readAll(store, 't9', 3)).length).toBe(200);
  });
});

describe('message store: consume queue memory', () => {
  it('holds no entry buffers for queues that are idle after a burst', async () => {
    const { store } = await setup({
      mapedFileSizeCommitLog: 16 * 1024 * 1024,
      mapedFileSizeConsumeQueue: 20 * 100_000,
      maxIndexNum: 200_000,
      maxHashSlotNum: 20_000,
    });
    // 20 queues × 3,400 entries: each queue passes the 64 KiB write threshold once.
    for (let b = 0; b < 34; b++) {
      await store.appendBatch(
        Array.from({ length: 2000 }, (_, i) =>
          message({ topic: `m${i % 10}`, queueId: Math.floor(i / 10) % 2 }),
        ),
      );
    }
    await store.flush();
    const { queues } = store as unknown as {
      queues: { all(): Iterable<{ active?: Buffer; inflight?: Buffer; spare?: Buffer }> };
    };
    let held = 0;
    let count = 0;
    for (const cq of queues.all()) {
      count++;
      held += (cq.active?.length ?? 0) + (cq.inflight?.length ?? 0) + (cq.spare?.length ?? 0);
    }
    expect(count).toBe(20);
    expect(held).toBe(0);
    expect(store.maxOffset('m3', 1)).toBe(3400);
  });
});

describe('message store: replication hooks', () => {
  it("gives a slave the master's queues of a deleted and re-created topic, whenever it learns of the deletion", async () => {
    const { store: master, dir: masterDir } = await setup();
    const copy = async (to: MessageStore) => {
      while (to.maxPhysicalOffset() < master.maxPhysicalOffset()) {
        const from = to.maxPhysicalOffset();
        await to.appendRaw(from, await master.readRaw(from, 5_000));
      }
    };
    const tombstones = () =>
      parseTopicTombstones(
        JSON.parse(readFileSync(join(masterDir, 'config', DELETED_TOPICS_FILE), 'utf8')),
      );
    const old = await master.appendBatch(
      Array.from({ length: 8 }, (_, i) => message({ topic: 'D', queueId: i % 2 })),
    );
    // `late` replicated the old records before the deletion, `early` learns of it first.
    const { store: firstLate, dir: lateDir } = await setup();
    let late = firstLate;
    await copy(late);
    await master.deleteTopic('D');
    const fresh = await master.appendBatch(
      Array.from({ length: 6 }, (_, i) => message({ topic: 'D', queueId: i % 2 })),
    );
    expect(fresh[0]!.queueOffset).toBe(4);
    await copy(late);
    expect(late.minOffset('D', 0)).toBe(0); // not told yet: the old entries are there
    expect(await late.applyDeletedTopics(tombstones())).toBe(1);
    expect(await late.applyDeletedTopics(tombstones())).toBe(0); // idempotent
    await late.close();
    late = createMessageStore({ storePathRootDir: lateDir, ...SMALL }); // the old entries stay hidden
    stores.push(late);
    await late.start();

    const t = tempStore();
    tmp.push(t);
    let early = t.open();
    await early.start();
    expect(await early.applyDeletedTopics(tombstones())).toBe(1);
    await copy(early); // the old records arrive after the tombstone
    await early.close();
    early = t.open(); // and the tombstone outlives a restart
    stores.push(early);
    await early.start();

    const oldIds = new Set(old.map((r) => r.messageId));
    for (const q of [0, 1]) {
      const want = await master.read('D', q, 0, 100);
      expect(want.records.map((r) => r.queueOffset)).toEqual([4, 5, 6]);
      for (const slave of [late, early]) {
        const got = await slave.read('D', q, 0, 100);
        expect([slave.minOffset('D', q), slave.maxOffset('D', q)]).toEqual([4, 7]);
        expect(got.records.map((r) => [r.queueOffset, r.messageId])).toEqual(
          want.records.map((r) => [r.queueOffset, r.messageId]),
        );
        expect(got.records.some((r) => oldIds.has(r.messageId))).toBe(false);
      }
    }
  });

  it('knows its last record after appends, raw appends and restarts, reading only that record', async () => {
    const t = tempStore();
    tmp.push(t);
    let master = t.open();
    await master.start();
    expect(await master.lastRecord()).toBeUndefined();
    const sent: AppendResult[] = [];
    /** The last record sent below `end`, as the handshake must name it. */
    const expected = async (store: MessageStore, end: number) => {
      const r = [...sent].reverse().find((x) => x.physicalOffset + x.size <= end)!;
      const bytes = await store.readRaw(r.physicalOffset, r.size);
      return { offset: r.physicalOffset, size: r.size, crc: crc32(bytes.subarray(0, r.size)) };
    };
    for (let b = 0; b < 40; b++) {
      sent.push(
        ...(await master.appendBatch(
          Array.from({ length: 1 + (b % 5) }, (_, i) =>
            message({ body: Buffer.alloc(900 + b * 37, i) }),
          ),
        )),
      );
      expect(await master.lastRecord()).toEqual(await expected(master, master.maxPhysicalOffset()));
    }
    expect(master.stats().commitlogSegments).toBeGreaterThan(1); // blank-padded segments in between

    // A slave copies chunk by chunk; chunks end at segment ends (after the blank) too.
    const { store: slave } = await setup();
    let blankEnded = 0;
    while (slave.maxPhysicalOffset() < master.maxPhysicalOffset()) {
      const from = slave.maxPhysicalOffset();
      await slave.appendRaw(from, await master.readRaw(from, 7_000));
      const end = slave.maxPhysicalOffset();
      if (end % 65536 === 0) blankEnded++;
      expect(await slave.lastRecord()).toEqual(await expected(master, end));
    }
    expect(blankEnded).toBeGreaterThan(0);

    /** lastRecord() of a restarted store, with the bytes it read from the commitlog. */
    const afterRestart = async (store: MessageStore) => {
      const { commitlog } = store as unknown as { commitlog: CommitLog };
      let bytes = 0;
      for (const seg of commitlog.segments) {
        const read = seg.read.bind(seg);
        seg.read = (buf, off, len, pos) => {
          bytes += len;
          return read(buf, off, len, pos);
        };
      }
      return { last: await store.lastRecord(), bytes };
    };
    // Clean restart: no scan, one record read.
    await master.close();
    master = t.open();
    stores.push(master);
    await master.start();
    const clean = await afterRestart(master);
    expect(clean.last).toEqual(await expected(master, master.maxPhysicalOffset()));
    expect(clean.bytes).toBe(sent.at(-1)!.size);

    // Crash with a torn last record: recovery cuts it; the one before is the last.
    await master.appendBatch([message({ body: Buffer.alloc(3000, 7) })]);
    await master.flush();
    await master.close();
    writeFileSync(join(t.dir, 'abort'), '');
    const segs = readdirSync(join(t.dir, 'commitlog')).sort();
    const lastSeg = join(t.dir, 'commitlog', segs.at(-1)!);
    truncateSync(lastSeg, statSync(lastSeg).size - 100);
    master = t.open();
    stores.push(master);
    await master.start();
    expect(master.stats().recovery?.truncatedBytes).toBeGreaterThan(0);
    const crashed = await afterRestart(master);
    expect(crashed.last).toEqual(await expected(master, master.maxPhysicalOffset()));
    expect(crashed.bytes).toBe(sent.at(-1)!.size);
  });

  it('copies the commitlog byte for byte to a slave, which dispatches it', async () => {
    const { store: master, dir: masterDir } = await setup();
    const { store: slave, dir: slaveDir } = await setup();
    for (let b = 0; b < 10; b++) {
      await master.appendBatch(
        Array.from({ length: 20 }, (_, i) =>
          message({ queueId: i % 2, body: Buffer.alloc(700, i), keys: [`k${b}`] }),
        ),
      );
    }
    const events: DispatchEvent[] = [];
    slave.onDispatch((e) => events.push(e));
    let chunks = 0;
    while (slave.maxPhysicalOffset() < master.maxPhysicalOffset()) {
      const from = slave.maxPhysicalOffset();
      const data = await master.readRaw(from, 10_000);
      expect(data.length).toBeGreaterThan(0);
      // Never past a segment end.
      expect(Math.floor(from / 65536)).toBe(Math.floor((from + data.length - 1) / 65536));
      await slave.appendRaw(from, data);
      chunks++;
    }
    expect(chunks).toBeGreaterThan(5);
    expect(events).toHaveLength(200);
    for (const q of [0, 1]) {
      expect(slave.maxOffset('T', q)).toBe(master.maxOffset('T', q));
      const a = await readAll(master, 'T', q);
      const b = await readAll(slave, 'T', q);
      expect(b.map((r) => r.messageId)).toEqual(a.map((r) => r.messageId));
    }
    expect((await slave.lookupByKey('T', 'k3', 100)).length).toBe(20);
    await master.flush();
    await slave.flush();
    const mdir = join(masterDir, 'commitlog');
    const sdir = join(slaveDir, 'commitlog');
    expect(readdirSync(sdir)).toEqual(readdirSync(mdir));
    for (const f of readdirSync(mdir)) {
      expect(readFileSync(join(sdir, f)).equals(readFileSync(join(mdir, f)))).toBe(true);
    }
    await expectCode(slave.appendRaw(5, Buffer.alloc(100)), Code.ILLEGAL_OFFSET);
    await master.appendBatch([message()]);
    const tail = await master.readRaw(slave.maxPhysicalOffset(), 1 << 20);
    const corrupt = Buffer.from(tail);
    corrupt[corrupt.length - 10]! ^= 0xff;
    await expectCode(slave.appendRaw(slave.maxPhysicalOffset(), corrupt), Code.MESSAGE_CORRUPTED);
    await slave.appendRaw(slave.maxPhysicalOffset(), tail);
    expect(slave.maxPhysicalOffset()).toBe(master.maxPhysicalOffset());
  });
});
