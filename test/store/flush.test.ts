import fs, { existsSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CommitLog } from '../../broker/store/commitlog.js';
import { FlushService } from '../../broker/store/flush-service.js';
import type { MessageStore } from '../../broker/store/index.js';
import { Code, isSluiceError } from '../../common/errors.js';
import { silentLogger } from '../../common/logger.js';
import { waitFor } from '../harness/wait.js';
import { message, type TempStore, tempStore } from './helpers.js';

let cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function setup(options: object): Promise<{ t: TempStore; store: MessageStore }> {
  const t = tempStore('sluice-flush-');
  const store = t.open({ mapedFileSizeCommitLog: 1024 * 1024, ...options });
  await store.start();
  cleanups.push(t.remove, () => store.close());
  return { t, store };
}

describe('flush', () => {
  it('SYNC_FLUSH: concurrent appends share fdatasyncs (group commit) and are answered only once durable', async () => {
    const { store } = await setup({ flushDiskType: 'SYNC_FLUSH' });
    const before = store.stats().commitlogSyncs!;
    const n = 300;
    const durableAtAnswer: boolean[] = [];
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        store.appendBatch([message({ body: Buffer.alloc(512, i) })]).then(([r]) => {
          durableAtAnswer.push(store.stats().flushedPhysicalOffset >= r!.physicalOffset + r!.size);
        }),
      ),
    );
    const syncs = store.stats().commitlogSyncs! - before;
    expect(durableAtAnswer).toHaveLength(n);
    expect(durableAtAnswer.every(Boolean)).toBe(true);
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThan(n / 5);
  });

  it('SYNC_FLUSH: retention deleting a segment during a sync does not skip the next segment', async () => {
    // Disk use reads high exactly once: the retention pass started below deletes one segment.
    let pressure = false;
    const diskUsage = () => {
      const ratio = pressure ? 0.8 : 0.1;
      pressure = false;
      return ratio;
    };
    const t = tempStore('sluice-flush-');
    const store = t.open(
      { flushDiskType: 'SYNC_FLUSH', mapedFileSizeCommitLog: 64 * 1024 },
      { diskUsage },
    );
    await store.start();
    cleanups.push(t.remove, () => store.close());
    const body = Buffer.alloc(1000, 7);
    while (store.stats().commitlogSegments < 2) await store.appendBatch([message({ body })]);
    const { commitlog } = store as unknown as { commitlog: CommitLog };
    const seg1 = commitlog.segments[1]!;
    // One batch from segment 1 into segment 2; its sync covers both.
    const n = Math.ceil((seg1.end - store.maxPhysicalOffset()) / 1000) + 3;
    const pending = store.appendBatch(Array.from({ length: n }, () => message({ body })));
    expect(commitlog.segments).toHaveLength(3);
    const synced: number[] = [];
    for (const seg of commitlog.segments) {
      const realSync = seg.sync.bind(seg);
      seg.sync = async () => {
        if (seg === seg1) {
          // Retention runs while this segment's fdatasync is in flight.
          pressure = true;
          void store.runRetention();
        }
        await realSync();
        synced.push(seg.start);
      };
    }
    const results = await pending;
    expect(results.at(-1)!.physicalOffset).toBeGreaterThanOrEqual(seg1.end);
    expect(store.minPhysicalOffset()).toBe(seg1.start);
    expect(synced).toEqual([seg1.start, seg1.end]);
  });

  it('SYNC_FLUSH: a sync that does not finish in syncFlushTimeout fails the append with FLUSH_DISK_TIMEOUT', async () => {
    // A disk that never completes an fdatasync cannot be produced for real; the flush service
    // runs against a commitlog whose segment sync hangs.
    const hung = { start: 0, end: 1 << 20, sync: () => new Promise<void>(() => undefined) };
    const log = {
      writtenOffset: 0,
      lastWrittenStoreTimestamp: 0,
      segments: [hung],
      currentWrite: () => Promise.resolve(),
    };
    const flush = new FlushService(
      log as unknown as CommitLog,
      'SYNC_FLUSH',
      500,
      80,
      silentLogger,
    );
    flush.start(0);
    cleanups.push(() => flush.stop());
    log.writtenOffset = 4096;
    const started = performance.now();
    const err = await new Promise<Error | undefined>((resolve) => flush.waitFor(4096, resolve));
    const waited = performance.now() - started;
    expect(isSluiceError(err, Code.MASTER_PERSISTENCE_TIMEOUT)).toBe(true);
    expect(err?.message).toMatch(/FLUSH_DISK_TIMEOUT/);
    expect(waited).toBeGreaterThanOrEqual(75);
    expect(waited).toBeLessThan(2000);
    expect(flush.pendingWaiters).toBe(0);
    expect(flush.flushedOffset).toBe(0);
  });

  it('a failed fdatasync fails every waiter, also those written after the sync began', async () => {
    // An fdatasync error cannot be caused on demand: the segment's sync fails when told to.
    const syncs: Array<(err: Error) => void> = [];
    const seg = {
      start: 0,
      end: 1 << 20,
      sync: () => new Promise<void>((_, reject) => syncs.push(reject)),
    };
    const log = {
      writtenOffset: 0,
      lastWrittenStoreTimestamp: 0,
      segments: [seg],
      currentWrite: () => Promise.resolve(),
    };
    const flush = new FlushService(
      log as unknown as CommitLog,
      'SYNC_FLUSH',
      500,
      60_000,
      silentLogger,
    );
    flush.start(0);
    cleanups.push(() => flush.stop());
    log.writtenOffset = 4096;
    const first = new Promise<Error | undefined>((resolve) => flush.waitFor(4096, resolve));
    await waitFor('the first fdatasync to start', () => syncs.length === 1, 2000, 1);
    log.writtenOffset = 8192;
    const second = new Promise<Error | undefined>((resolve) => flush.waitFor(8192, resolve));
    const all = flush.flush().then(
      () => undefined,
      (err: unknown) => err,
    );
    syncs[0]!(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    expect(isSluiceError(await first, Code.INTERNAL_ERROR)).toBe(true);
    expect(flush.pendingWaiters).toBe(0);
    expect(isSluiceError(await second, Code.INTERNAL_ERROR)).toBe(true);
    expect(isSluiceError(await all, Code.INTERNAL_ERROR)).toBe(true);
    expect(flush.flushedOffset).toBe(0);
  });

  it('flush() fails with FLUSH_DISK_TIMEOUT instead of waiting forever for a hung fdatasync', async () => {
    const hung = { start: 0, end: 1 << 20, sync: () => new Promise<void>(() => undefined) };
    const log = {
      writtenOffset: 4096,
      lastWrittenStoreTimestamp: 0,
      segments: [hung],
      currentWrite: () => Promise.resolve(),
    };
    const flush = new FlushService(
      log as unknown as CommitLog,
      'ASYNC_FLUSH',
      60_000,
      80,
      silentLogger,
      150,
    );
    flush.start(0);
    cleanups.push(() => flush.stop());
    const err = await flush.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isSluiceError(err, Code.MASTER_PERSISTENCE_TIMEOUT)).toBe(true);
    expect(String(err)).toMatch(/150 ms/);
    expect(flush.pendingWaiters).toBe(0);
  });

  it('close() closes the store even when the final fdatasync fails, and leaves the abort file', async () => {
    const t = tempStore('sluice-flush-');
    cleanups.push(t.remove);
    const store = t.open({ flushDiskType: 'ASYNC_FLUSH', flushIntervalCommitLog: 60_000 });
    await store.start();
    await store.appendBatch([message()]);
    const { commitlog } = store as unknown as { commitlog: CommitLog };
    commitlog.segments[0]!.sync = () =>
      Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await store.close();
    expect(existsSync(join(t.dir, 'abort'))).toBe(true);
    const again = t.open();
    await again.start();
    cleanups.push(() => again.close());
    expect(again.stats().recovery?.abnormal).toBe(true);
    expect(again.maxOffset('T', 0)).toBe(1);
  });

  it('refuses writes after a failed fdatasync until restart; reads keep working', async () => {
    const t = tempStore('sluice-flush-');
    cleanups.push(t.remove);
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'info' },
      { write: (s: string) => void lines.push(JSON.parse(s)) },
    );
    const store = t.open({ flushDiskType: 'SYNC_FLUSH' }, { logger });
    await store.start();
    cleanups.push(() => store.close());
    const [first] = await store.appendBatch([message()]);
    // An fdatasync error cannot be caused on demand: the segment's sync fails when told to.
    const { commitlog } = store as unknown as { commitlog: CommitLog };
    const segment = commitlog.segments[0]!;
    const realSync = segment.sync.bind(segment);
    let failNext = true;
    segment.sync = () => {
      if (!failNext) return realSync();
      failNext = false;
      return Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    };
    const refusedAsWaiter = await store.appendBatch([message()]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isSluiceError(refusedAsWaiter, Code.INTERNAL_ERROR)).toBe(true);
    // The disk would answer the next fdatasync with success (fsyncgate): still refused.
    for (const attempt of [
      () => store.appendBatch([message()]),
      () => store.appendRaw(store.maxPhysicalOffset(), Buffer.alloc(0)),
      () => store.flush(),
    ]) {
      const err = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isSluiceError(err, Code.INTERNAL_ERROR), String(err)).toBe(true);
      expect(err).toMatchObject({ reason: 'STORE_NOT_WRITABLE', retriable: false });
    }
    expect(failNext).toBe(false);
    const failures = lines.filter((l) => String(l.msg).includes('fdatasync failed'));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ errno: 'EIO' });
    // Reads still work: what was written is there.
    const read = await store.read('T', 0, 0, 10);
    expect(read.records[0]?.messageId).toBe(first!.messageId);
    expect(read.records).toHaveLength(2);
    // A restart recovers (the abort file stays) and accepts writes again.
    await store.close();
    expect(existsSync(join(t.dir, 'abort'))).toBe(true);
    const again = t.open({ flushDiskType: 'SYNC_FLUSH' });
    await again.start();
    cleanups.push(() => again.close());
    expect(again.stats().recovery?.abnormal).toBe(true);
    const [after] = await again.appendBatch([message()]);
    expect(after!.queueOffset).toBe(2);
  });

  it('makes the directory entries of new files durable before the checkpoint counts them', async () => {
    // Which descriptors are directories, and what gets fsynced in which order: watched
    // on the fs module the store's positioned I/O calls.
    const paths = new Map<number, string>();
    const events: string[] = [];
    const realOpen = fs.open;
    const realFsync = fs.fsync;
    const realFdatasync = fs.fdatasync;
    const spies = [
      vi.spyOn(fs, 'open').mockImplementation(((
        path: string,
        flags: string | number,
        mode: number,
        cb: (err: NodeJS.ErrnoException | null, fd: number) => void,
      ) =>
        realOpen(path, flags, mode, (err, fd) => {
          if (!err) paths.set(fd, String(path));
          cb(err, fd);
        })) as unknown as typeof fs.open),
      vi.spyOn(fs, 'fsync').mockImplementation(((fd: number, cb: (err: unknown) => void) => {
        events.push(`dir ${paths.get(fd)}`);
        realFsync(fd, cb);
      }) as unknown as typeof fs.fsync),
      vi.spyOn(fs, 'fdatasync').mockImplementation(((fd: number, cb: (err: unknown) => void) => {
        events.push(`data ${paths.get(fd)}`);
        realFdatasync(fd, cb);
      }) as unknown as typeof fs.fdatasync),
    ];
    cleanups.push(() => {
      for (const s of spies) s.mockRestore();
    });
    const { t, store } = await setup({ flushDiskType: 'SYNC_FLUSH' });
    events.length = 0;
    await store.appendBatch([message({ topic: 'fresh', keys: ['k'] })]);
    await store.flush();
    const checkpoint = events.indexOf(`data ${join(t.dir, 'checkpoint')}`);
    expect(checkpoint).toBeGreaterThan(0);
    const before = events.slice(0, checkpoint);
    for (const dir of [
      join(t.dir, 'consumequeue', 'fresh', '0'), // the queue's file
      join(t.dir, 'consumequeue', 'fresh'), // the queue's directory
      join(t.dir, 'consumequeue'), // the topic's directory
      join(t.dir, 'index'), // the first index file
      join(t.dir, 'commitlog'), // the first segment
    ]) {
      expect(before, dir).toContain(`dir ${dir}`);
    }
  });

  it('ASYNC_FLUSH: appends are answered once written and flushed in the background', async () => {
    const { store } = await setup({ flushDiskType: 'ASYNC_FLUSH', flushIntervalCommitLog: 30 });
    const results = await store.appendBatch(Array.from({ length: 50 }, () => message()));
    const end = results.at(-1)!.physicalOffset + results.at(-1)!.size;
    expect(store.stats().writtenPhysicalOffset).toBe(end);
    await waitFor('background flush', () => store.stats().flushedPhysicalOffset === end, 5000, 10);
    expect(store.stats().commitlogSyncs).toBeGreaterThan(0);
  });
});
