import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AppendResult,
  DELETED_TOPICS_FILE,
  type MessageStore,
  parseTopicTombstones,
} from '../../broker/store/index.js';
import { Code, isSluiceError } from '../../common/errors.js';
import { message, readAll, type TempStore, tempStore } from './helpers.js';

const HOUR = 3_600_000;
const SEGMENT = 64 * 1024;
/** 04:30 local time: inside the default deleteWhen hour "04". */
const AT_FOUR = new Date(2024, 0, 10, 4, 30).getTime();

let cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

interface Setup {
  t: TempStore;
  store: MessageStore;
  clock: { now: number };
  disk: { ratio: number | ((segments: number) => number) };
}

async function setup(options: object = {}): Promise<Setup> {
  const t = tempStore('sluice-retention-');
  const clock = { now: AT_FOUR - 10 * HOUR };
  const disk: Setup['disk'] = { ratio: 0.3 };
  const store = t.open(
    { fileReservedTime: 4, mapedFileSizeConsumeQueue: 20 * 32, ...options },
    {
      clock: () => clock.now,
      diskUsage: () => {
        const r = disk.ratio;
        return typeof r === 'number' ? r : r(readdirSync(join(t.dir, 'commitlog')).length);
      },
    },
  );
  await store.start();
  cleanups.push(t.remove, () => store.close());
  return { t, store, clock, disk };
}

/** Appends ~1 KiB messages with keys until `segments` more segments were started. */
async function fill(store: MessageStore, segments: number, tag: string): Promise<AppendResult[]> {
  const out: AppendResult[] = [];
  const target = store.stats().commitlogSegments + segments;
  let i = 0;
  while (store.stats().commitlogSegments < target) {
    out.push(
      ...(await store.appendBatch(
        Array.from({ length: 8 }, () =>
          message({ body: Buffer.alloc(1000, 1), keys: [`${tag}-${i++}`] }),
        ),
      )),
    );
  }
  return out;
}

describe('retention', () => {
  it('deletes segments older than fileReservedTime at the deleteWhen hour, with their queue and index files', async () => {
    const { t, store, clock } = await setup();
    const old = await fill(store, 4, 'old'); // written at 18:30 the day before
    clock.now = AT_FOUR - HOUR; // 03:30
    const recent = await fill(store, 3, 'recent');
    await store.flush();
    const segmentsBefore = store.stats().commitlogSegments;
    const cqFilesBefore = readdirSync(join(t.dir, 'consumequeue', 'T', '0')).length;
    const indexFilesBefore = readdirSync(join(t.dir, 'index')).length;

    // 10:00 the same morning: everything old is expired, but it is not a deleteWhen hour.
    clock.now = AT_FOUR + 5.5 * HOUR;
    expect(await store.runRetention()).toMatchObject({ deletedSegments: 0, trigger: 'none' });

    // 04:30: segments that stopped being written before 00:30 are expired. The segment where
    // the "recent" writes began was still written at 03:30, so it and later ones stay.
    clock.now = AT_FOUR;
    const report = await store.runRetention();
    expect(report.trigger).toBe('expired');
    const firstRecent = recent[0]!.physicalOffset;
    const boundarySegment = firstRecent - (firstRecent % SEGMENT);
    expect(firstRecent).toBeGreaterThan(boundarySegment); // it also holds old records
    expect(report.minPhysicalOffset).toBe(boundarySegment);
    expect(report.deletedSegments).toBe(boundarySegment / SEGMENT);
    expect(report.deletedSegments).toBeGreaterThanOrEqual(3);
    expect(store.stats().commitlogSegments).toBe(segmentsBefore - report.deletedSegments);
    expect(readdirSync(join(t.dir, 'commitlog'))[0]).toBe(
      String(boundarySegment).padStart(20, '0'),
    );
    expect(report.deletedQueueFiles).toBeGreaterThan(0);
    expect(readdirSync(join(t.dir, 'consumequeue', 'T', '0')).length).toBeLessThan(cqFilesBefore);
    expect(report.deletedIndexFiles).toBeGreaterThan(0);
    expect(readdirSync(join(t.dir, 'index')).length).toBe(
      indexFilesBefore - report.deletedIndexFiles,
    );

    // Consumers behind the minimum move forward; deleted records are gone, later ones intact.
    const min = store.minOffset('T', 0);
    const firstKept = old.find((r) => r.physicalOffset >= boundarySegment) ?? recent[0]!;
    expect(min).toBe(firstKept.queueOffset);
    const behind = await store.read('T', 0, 0, 5);
    expect(behind.records[0]!.queueOffset).toBe(min);
    expect(behind.minOffset).toBe(min);
    expect(await store.readAt(old[0]!.physicalOffset)).toBeUndefined();
    expect(await store.lookupByKey('T', 'old-0', 5)).toEqual([]);
    expect((await store.lookupByKey('T', 'recent-0', 5)).length).toBe(1);
    expect(await store.offsetByTime('T', 0, 0)).toBe(min);
    expect((await readAll(store, 'T', 0)).length).toBe(store.maxOffset('T', 0) - min);
    expect(store.minPhysicalOffset()).toBe(boundarySegment);
  });

  it('deletes the oldest segments early while disk use is above diskMaxUsedSpaceRatio', async () => {
    const { store, disk } = await setup();
    await fill(store, 6, 'x'); // just written (18:30): nothing is expired, and it is not the hour
    const segments = store.stats().commitlogSegments;
    expect(segments).toBeGreaterThan(5);
    // 80% used while more than 3 segments exist, 50% after.
    disk.ratio = (n) => (n > 3 ? 0.8 : 0.5);
    const report = await store.runRetention();
    expect(report).toMatchObject({
      trigger: 'disk',
      deletedSegments: segments - 3,
      diskUsedRatio: 0.8,
    });
    expect(store.stats().commitlogSegments).toBe(3);
    // Below the ratio nothing more goes.
    expect((await store.runRetention()).deletedSegments).toBe(0);
  });

  it("drops a deleted topic's tombstone once retention deleted the records it covers", async () => {
    const { t, store, disk } = await setup();
    await store.appendBatch([message({ topic: 'Gone' }), message({ topic: 'Gone' })]);
    await store.deleteTopic('Gone');
    const file = join(t.dir, 'config', DELETED_TOPICS_FILE);
    const tombstones = () => parseTopicTombstones(JSON.parse(readFileSync(file, 'utf8')));
    expect(tombstones().map((x) => [x.topic, x.queues.get(0)])).toEqual([['Gone', 2]]);
    await fill(store, 2, 'x');
    disk.ratio = (n) => (n > 2 ? 0.8 : 0.5);
    expect(await store.runRetention()).toMatchObject({ trigger: 'disk' });
    expect(store.minPhysicalOffset()).toBeGreaterThan(0);
    expect(tombstones()).toEqual([]);
    // Nothing of the deleted topic is left to collide with: a re-created one starts afresh.
    expect((await store.appendBatch([message({ topic: 'Gone' })]))[0]!.queueOffset).toBe(0);
  });

  it('never deletes the segment being written', async () => {
    const { store, disk } = await setup();
    await store.appendBatch([message()]);
    disk.ratio = 0.99 * 0.9; // above 75%, below the 90% write limit
    expect((await store.runRetention()).deletedSegments).toBe(0);
    expect(store.stats().commitlogSegments).toBe(1);
    expect((await store.read('T', 0, 0, 10)).records).toHaveLength(1);
  });

  it('refuses writes with DISK_FULL above 90% disk use and accepts them again below', async () => {
    const { store, disk } = await setup();
    await store.appendBatch([message()]);
    disk.ratio = 0.93;
    await store.runRetention(); // measures disk use (a timer does it every second too)
    const err = await store.appendBatch([message()]).catch((e: unknown) => e);
    expect(isSluiceError(err, Code.TOO_MANY_REQUESTS)).toBe(true);
    expect(isSluiceError(err) && err.reason).toBe('DISK_FULL');
    expect(isSluiceError(err) && err.retriable).toBe(true);
    expect(store.maxOffset('T', 0)).toBe(1);
    disk.ratio = 0.5;
    await store.runRetention();
    expect((await store.appendBatch([message()]))[0]!.queueOffset).toBe(1);
  });
});
