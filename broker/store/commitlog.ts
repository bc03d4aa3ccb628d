/**
 * The commitlog: an ordered run of segments holding every record of every
 * topic, and the single writer that appends to it.
 *
 * Offsets, all physical (bytes from the log's origin):
 *   minOffset      <= writtenOffset <= reservedOffset
 *   first byte kept    end of bytes     end of bytes handed to the writer
 *   (retention)        in the files     (encoded, queued, not yet written)
 *
 * Invariants: segments are contiguous (segment i+1 starts where i ends); every
 * position in [minOffset, writtenOffset) belongs to a whole record; jobs are
 * written strictly in the order they were queued, so writtenOffset only moves
 * forward and each job's callback runs after every earlier one's.
 */
import { readdir } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { errors } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { BufferRing, type RingRegion } from './buffer-ring.js';
import {
  BLANK_MAGIC,
  MESSAGE_MAGIC,
  OFF_MAGIC,
  readStoreTimestamp,
  STORE_TIMESTAMP_PROBE_BYTES,
} from './commitlog-record.js';
import { CommitLogSegment } from './commitlog-segment.js';
import type { FilePool } from './file-pool.js';
import { parseOffsetFileName } from './positioned-io.js';

/**
 * Bytes handed to one writev at most (several queued jobs are merged up to
 * this). Measured here: merging beyond ~1 MiB made appends slower, not faster
 * (multi-MiB page-cache writes stall longer than they save in syscalls).
 */
const MAX_WRITE_BYTES = 1024 * 1024;
/**
 * Writes handed to the thread pool at once. Two: while the event loop is busy
 * encoding the next batches, the thread pool already has the next write, so
 * the page-cache copy does not wait for the loop to get round to the previous
 * completion. Measured here (16 KiB bodies, batches of 32, quiet box): a few
 * percent over one at a time; appends are then bound by the event loop's CPU
 * (mostly the body CRC), not by the gap between writes.
 */
const MAX_WRITES_IN_FLIGHT = 2;
/**
 * Writes of at most this many bytes go to the page cache on the event loop
 * (writev: ~20–60 µs per 128 KiB here) instead of through the thread pool,
 * whose round trip (wake a worker, then wake the loop) sat in every send's
 * answer while both processes of a gateway → broker hop were mostly idle.
 * Measured here, gateway single-message sends (64 connections): +8–20%
 * req/s. Bigger writes still go to the thread pool, as RocketMQ's own
 * appends copy into the page cache on the sending thread up to a batch.
 */
const SYNC_WRITE_MAX_BYTES = 256 * 1024;
/**
 * A write on the event loop that took longer than this (dirty-page
 * throttling, a stalled disk) blocked every other call for as long: writes
 * then go through the thread pool for SYNC_WRITE_BACKOFF_MS.
 */
const SYNC_WRITE_STALL_MS = 5;
const SYNC_WRITE_BACKOFF_MS = 10_000;
/** Buffers in one writev at most (IOV_MAX on Linux). */
const MAX_WRITE_BUFFERS = 1024;
/**
 * Reads of the newest this-many commitlog bytes are served on the event loop
 * (pread from the page cache, a few µs per 32 KiB) rather than through the
 * thread pool, whose round trip costs 10–30 µs of CPU per read here and made
 * ~12% of the broker's CPU under pop+ack. Like RocketMQ's
 * accessMessageInMemoryMaxRatio (40% of physical memory, or of the cgroup's
 * memory limit when that is smaller): data that recent is
 * taken to be in memory; should it not be, one read blocks the loop for one
 * disk read (~100 µs on NVMe) instead of failing.
 */
export const HOT_READ_BYTES = Math.floor(memoryOfThisProcess() * 0.4);

/** Physical memory, or the cgroup's limit when smaller (a container sees the host's totalmem). */
function memoryOfThisProcess(): number {
  const limit = process.constrainedMemory?.() ?? 0;
  return limit > 0 ? Math.min(limit, totalmem()) : totalmem();
}
/** Encode ring for append batches. */
export const DEFAULT_ENCODE_RING_BYTES = 16 * 1024 * 1024;

/** Bytes to write at one position of one segment; `done` runs once they are in the file (or failed). */
export interface WriteJob {
  segment: CommitLogSegment;
  /** Physical offset of the first byte. */
  position: number;
  /**
   * Physical offset where the job's batch starts (a batch spanning segments
   * is several jobs). A failed write cuts the log back to here, so no byte of
   * a failed batch stays in the log.
   */
  batchStart: number;
  bufs: Buffer[];
  bytes: number;
  /** Ring region holding the encoded bytes, released after the write. */
  region: RingRegion | undefined;
  /** Store timestamp of the job's last record (for the checkpoint), 0 if unknown. */
  lastStoreTimestamp: number;
  /** Physical offset and size of the job's last message record (not a blank); size 0: none. */
  lastRecordOffset: number;
  lastRecordSize: number;
  done: ((err: Error | undefined) => void) | undefined;
}

/** One writev of a run of jobs, handed to the thread pool. */
interface InflightWrite {
  jobs: WriteJob[];
  bufs: Buffer[];
  position: number;
  bytes: number;
  done: boolean;
  error: Error | undefined;
  /** Resolves once the write finished and was counted (never fails). */
  settled: Promise<void>;
}

export class CommitLog {
  readonly segments: CommitLogSegment[] = [];
  readonly ring: BufferRing;
  writtenOffset = 0;
  reservedOffset = 0;
  /** Store timestamp of the last record written (with writtenOffset). */
  lastWrittenStoreTimestamp = 0;
  /**
   * The last message record (not a blank) below writtenOffset, moved with it:
   * its physical offset and size. Size 0: not known (nothing written since the
   * start, or a cut removed it); the store then finds it by a scan.
   */
  lastRecordOffset = -1;
  lastRecordSize = 0;
  /** Jobs not yet handed to a write, from queueHead. */
  private readonly queue: WriteJob[] = [];
  private queueHead = 0;
  /** Writes handed to the thread pool and not yet counted, in offset order, from writesHead. */
  private readonly writes: InflightWrite[] = [];
  private writesHead = 0;
  /** End of the bytes handed to writes (>= writtenOffset). */
  private submittedOffset = 0;
  /** A write failed; writes still in flight are settling before the rollback. */
  private failing = false;
  private repair: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];
  /** performance.now() from which writes may go on the event loop again (after a stall). */
  private syncWritesFrom = 0;
  /** Set when a failed write could not be rolled back; appends are refused from then on. */
  broken: Error | undefined;
  /** Told when a failed write cuts the log back (bytes past `offset` are gone, durable or not). */
  onRollback: ((offset: number) => void) | undefined;

  constructor(
    readonly dir: string,
    readonly segmentSize: number,
    private readonly logger: Logger,
    private readonly pool: FilePool,
    ringBytes = DEFAULT_ENCODE_RING_BYTES,
  ) {
    this.ring = new BufferRing(ringBytes);
  }

  /** Finds the segment files in the directory (no scanning; only the last one stays open). */
  async load(): Promise<void> {
    const names = await readdir(this.dir);
    const starts = names
      .map(parseOffsetFileName)
      .filter((n): n is number => n !== undefined)
      .sort((a, b) => a - b);
    for (let i = 0; i < starts.length; i++) {
      const start = starts[i]!;
      if (start % this.segmentSize !== 0) {
        throw errors.internal(
          `commitlog segment ${start} is not a multiple of mapedFileSizeCommitLog=${this.segmentSize}; was the segment size changed?`,
        );
      }
      if (i > 0 && start !== starts[i - 1]! + this.segmentSize) {
        throw errors.internal(
          `commitlog segments are not contiguous: ${starts[i - 1]} then ${start}`,
        );
      }
      const seg = new CommitLogSegment(this.dir, start, this.segmentSize, this.pool, true);
      await seg.loadLength();
      if (seg.length > this.segmentSize) {
        throw errors.internal(
          `commitlog segment ${start} is ${seg.length} bytes, more than the segment size`,
        );
      }
      if (seg.length >= STORE_TIMESTAMP_PROBE_BYTES) {
        const probe = Buffer.alloc(STORE_TIMESTAMP_PROBE_BYTES);
        await seg.read(probe, 0, probe.length, 0);
        if (probe.readUInt32BE(OFF_MAGIC) === MESSAGE_MAGIC)
          seg.firstStoreTimestamp = readStoreTimestamp(probe, 0);
      }
      this.segments.push(seg);
    }
    const last = this.segments.at(-1);
    this.writtenOffset = last ? last.start + last.length : 0;
    this.submittedOffset = this.writtenOffset;
    this.reservedOffset = this.writtenOffset;
  }

  /** An empty log starts at `offset` (a slave following a master whose log starts there). */
  startAt(offset: number): void {
    if (this.segments.length > 0 || this.reservedOffset !== 0) {
      throw errors.internal(`commitlog is not empty; it cannot start at ${offset}`);
    }
    this.writtenOffset = offset;
    this.submittedOffset = offset;
    this.reservedOffset = offset;
  }

  get minOffset(): number {
    return this.segments[0]?.start ?? this.writtenOffset;
  }

  /** End of the bytes present in the files (before recovery decides how many are valid). */
  get fileEnd(): number {
    const last = this.segments.at(-1);
    return last ? last.start + last.length : 0;
  }

  /** The segment holding physical offset `offset`, or undefined. */
  segmentFor(offset: number): CommitLogSegment | undefined {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = segs[mid]!;
      if (offset < s.start) hi = mid - 1;
      else if (offset >= s.end) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  /** The segment a write at `offset` goes to, creating its (unopened) object when the log grows. */
  segmentForWrite(offset: number): CommitLogSegment {
    const found = this.segmentFor(offset);
    if (found) return found;
    const last = this.segments.at(-1);
    const start = last ? last.end : offset - (offset % this.segmentSize);
    if (offset < start || offset >= start + this.segmentSize) {
      throw errors.internal(
        `no commitlog segment can hold offset ${offset} (log ends at ${start})`,
      );
    }
    const seg = new CommitLogSegment(this.dir, start, this.segmentSize, this.pool, false);
    this.segments.push(seg);
    return seg;
  }

  /** Queues bytes for the writer; jobs must be queued in offset order. */
  enqueue(job: WriteJob): void {
    this.queue.push(job);
    this.pump();
  }

  /** Resolves when the writes in flight now (if any) have finished; never fails. */
  currentWrite(): Promise<void> {
    const n = this.writes.length - this.writesHead;
    if (n === 0) return Promise.resolve();
    if (n === 1) return this.writes[this.writesHead]!.settled;
    return Promise.all(this.writes.slice(this.writesHead).map((w) => w.settled)).then(
      () => undefined,
    );
  }

  /** Resolves once every queued job has been written (or failed). */
  idle(): Promise<void> {
    if (this.isIdle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private get isIdle(): boolean {
    return (
      this.queueHead >= this.queue.length &&
      this.writesHead >= this.writes.length &&
      !this.failing &&
      this.repair === undefined
    );
  }

  /**
   * Hands queued jobs to the thread pool, up to MAX_WRITES_IN_FLIGHT writes at
   * once (each a run of contiguous jobs in one segment, merged into one writev).
   */
  private pump(): void {
    while (
      this.writes.length - this.writesHead < MAX_WRITES_IN_FLIGHT &&
      this.queueHead < this.queue.length &&
      this.repair === undefined &&
      !this.failing
    ) {
      this.submit(this.takeWrite());
    }
    if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    if (this.isIdle) this.wakeIdleWaiters();
  }

  /** Takes the next run of queued jobs that one writev can write. */
  private takeWrite(): InflightWrite {
    const first = this.queue[this.queueHead]!;
    const seg = first.segment;
    const bufs: Buffer[] = [...first.bufs];
    let bytes = first.bytes;
    let n = 1;
    while (this.queueHead + n < this.queue.length) {
      const next = this.queue[this.queueHead + n]!;
      if (
        next.segment !== seg ||
        next.position !== first.position + bytes ||
        bufs.length + next.bufs.length > MAX_WRITE_BUFFERS ||
        bytes + next.bytes > MAX_WRITE_BYTES
      ) {
        break;
      }
      for (const b of next.bufs) bufs.push(b);
      bytes += next.bytes;
      n++;
    }
    const jobs = this.queue.slice(this.queueHead, this.queueHead + n);
    for (let i = this.queueHead; i < this.queueHead + n; i++) {
      this.queue[i] = undefined as unknown as WriteJob;
    }
    this.queueHead += n;
    return {
      jobs,
      bufs,
      position: first.position,
      bytes,
      done: false,
      error: undefined,
      settled: Promise.resolve(),
    };
  }

  private submit(w: InflightWrite): void {
    this.writes.push(w);
    const seg = w.jobs[0]!.segment;
    let write: Promise<void>;
    if (w.position !== this.submittedOffset) {
      write = Promise.reject(
        errors.internal(
          `commitlog write at ${w.position}, but the log ends at ${this.submittedOffset}`,
        ),
      );
    } else {
      this.submittedOffset = w.position + w.bytes;
      const started = performance.now();
      const now = w.bytes <= SYNC_WRITE_MAX_BYTES && started >= this.syncWritesFrom;
      write = seg.write(w.bufs, w.position - seg.start, w.bytes, now);
      const tookMs = now ? performance.now() - started : 0;
      if (tookMs > SYNC_WRITE_STALL_MS) {
        this.syncWritesFrom = performance.now() + SYNC_WRITE_BACKOFF_MS;
        this.logger.warn(
          { tookMs: Math.round(tookMs), bytes: w.bytes },
          `a commitlog write blocked the event loop; writing through the thread pool for ${SYNC_WRITE_BACKOFF_MS / 1000} s`,
        );
      }
    }
    w.settled = write.then(
      () => {
        w.done = true;
        this.retire();
      },
      (err: unknown) => {
        w.done = true;
        w.error = err as Error;
        this.retire();
      },
    );
  }

  /**
   * Writes finish in any order; they count in offset order: writtenOffset
   * moves over each finished write whose predecessors have all finished.
   */
  private retire(): void {
    if (this.failing) return;
    const completed: WriteJob[] = [];
    while (this.writesHead < this.writes.length && this.writes[this.writesHead]!.done) {
      const w = this.writes[this.writesHead]!;
      if (w.error) {
        this.failFrom(w.error);
        break;
      }
      this.writes[this.writesHead] = undefined as unknown as InflightWrite;
      this.writesHead++;
      this.writtenOffset = w.position + w.bytes;
      for (const job of w.jobs) {
        if (job.lastStoreTimestamp > 0) this.lastWrittenStoreTimestamp = job.lastStoreTimestamp;
        if (job.lastRecordSize > 0) {
          this.lastRecordOffset = job.lastRecordOffset;
          this.lastRecordSize = job.lastRecordSize;
        }
        if (job.region) this.ring.release(job.region);
        if (job.done) completed.push(job);
      }
    }
    if (this.writesHead === this.writes.length) {
      this.writes.length = 0;
      this.writesHead = 0;
    }
    // Callbacks (dispatch, answers) run as a microtask: the next writes are
    // handed to the thread pool first, so the disk is not idle meanwhile.
    // Microtasks keep their order, so callbacks still run in offset order.
    if (completed.length > 0) queueMicrotask(() => this.runCallbacks(completed));
    if (!this.failing) this.pump();
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private runCallbacks(jobs: WriteJob[]): void {
    for (const job of jobs) {
      try {
        job.done!(undefined);
      } catch (err) {
        // A callback bug must not stop the others (or become an uncaught exception).
        this.logger.error({ err, position: job.position }, 'commitlog write callback failed');
      }
    }
  }

  /**
   * A write failed: its batch and every batch after it fail (their offsets
   * were assigned after the failed one's). Once the writes still in flight
   * have settled, the log is cut back to the start of the failed batch — parts
   * of it already written to an earlier segment go too, so the log never holds
   * bytes of a batch that was not acknowledged — and new appends continue from
   * there once the repair is done.
   */
  private failFrom(err: Error): void {
    this.failing = true;
    const inflight = this.writes.slice(this.writesHead);
    this.writes.length = 0;
    this.writesHead = 0;
    const failed: WriteJob[] = [];
    for (const w of inflight) failed.push(...w.jobs);
    for (let i = this.queueHead; i < this.queue.length; i++) failed.push(this.queue[i]!);
    this.queue.length = 0;
    this.queueHead = 0;
    const cut = Math.min(this.writtenOffset, failed[0]?.batchStart ?? this.writtenOffset);
    this.writtenOffset = cut;
    this.reservedOffset = cut;
    this.forgetLastRecordPast(cut);
    this.logger.error({ err, offset: cut }, 'commitlog write failed; rolling back queued appends');
    this.onRollback?.(cut);
    for (const job of failed) {
      if (job.region) this.ring.release(job.region);
      try {
        job.done?.(err);
      } catch (cbErr) {
        this.logger.error(
          { err: cbErr, position: job.position },
          'commitlog write callback failed',
        );
      }
    }
    // Writes still in flight must land before the cut, or they could re-extend the file.
    this.repair = Promise.all(inflight.map((w) => w.settled))
      .then(() => {
        this.failing = false;
        return this.truncateTo(cut);
      })
      .catch((repairErr: Error) => {
        this.broken = repairErr;
        this.logger.error(
          { err: repairErr },
          'commitlog rollback failed; refusing further appends',
        );
      })
      .finally(() => {
        this.failing = false;
        this.repair = undefined;
        this.pump();
      });
  }

  /**
   * Cuts the log to end at `offset`: the segment holding it is truncated, later
   * ones are deleted (the first segment is kept, empty, so minOffset survives).
   */
  async truncateTo(offset: number): Promise<void> {
    const keep: CommitLogSegment[] = [];
    const drop: CommitLogSegment[] = [];
    for (const seg of this.segments) {
      if (seg.start < offset || (seg.start === offset && keep.length === 0)) keep.push(seg);
      else drop.push(seg);
    }
    this.segments.length = 0;
    this.segments.push(...keep);
    for (const seg of drop) await seg.destroy();
    const last = keep.at(-1);
    if (last && last.length > offset - last.start) await last.truncate(offset - last.start);
    this.writtenOffset = offset;
    this.submittedOffset = offset;
    this.reservedOffset = offset;
    this.forgetLastRecordPast(offset);
  }

  /** The last record is not known any more once the log is cut below its end. */
  private forgetLastRecordPast(offset: number): void {
    if (this.lastRecordOffset + this.lastRecordSize > offset) {
      this.lastRecordOffset = -1;
      this.lastRecordSize = 0;
    }
  }

  /**
   * Positioned read of physical range [offset, offset + len) inside one
   * segment; the newest HOT_READ_BYTES are read on the event loop.
   */
  async read(offset: number, buf: Buffer, bufOffset: number, len: number): Promise<number> {
    const seg = this.segmentFor(offset);
    if (!seg) throw errors.illegalOffset(`physical offset ${offset} is not in the commitlog`);
    const n = Math.min(len, seg.end - offset);
    const hot = this.writtenOffset - offset <= HOT_READ_BYTES;
    return seg.read(buf, bufOffset, n, offset - seg.start, hot);
  }

  /**
   * Raw bytes from `from` (a record boundary): whole records only, never past
   * the segment end or writtenOffset, up to maxBytes unless the first record is
   * bigger (then that one record).
   */
  async readRaw(from: number, maxBytes: number): Promise<Buffer> {
    const end = this.writtenOffset;
    if (from >= end) return Buffer.alloc(0);
    const seg = this.segmentFor(from);
    if (!seg) throw errors.illegalOffset(`physical offset ${from} is not in the commitlog`);
    const limit = Math.min(seg.end, end) - from;
    let len = Math.min(Math.max(maxBytes, 8), limit);
    let buf = Buffer.allocUnsafe(len);
    let n = await seg.read(buf, 0, len, from - seg.start);
    let p = 0;
    for (;;) {
      while (p + 8 <= n) {
        const size = buf.readInt32BE(p);
        const magic = buf.readUInt32BE(p + OFF_MAGIC);
        if ((magic !== MESSAGE_MAGIC && magic !== BLANK_MAGIC) || size < 8) {
          throw errors.messageCorrupted(`no record at physical offset ${from + p}`);
        }
        if (p + size > n) break;
        p += size;
      }
      if (p > 0 || n < 8) break;
      // The first record is bigger than maxBytes: answer exactly that record.
      const size = buf.readInt32BE(0);
      if (size > limit)
        throw errors.messageCorrupted(`record at ${from} runs past the written log`);
      len = size;
      buf = Buffer.allocUnsafe(len);
      n = await seg.read(buf, 0, len, from - seg.start);
      if (n < len) break;
    }
    return buf.subarray(0, p);
  }

  /** Deletes the oldest segment (retention); never the last one. */
  async deleteOldestSegment(): Promise<CommitLogSegment | undefined> {
    if (this.segments.length < 2) return undefined;
    const seg = this.segments.shift()!;
    await seg.destroy();
    return seg;
  }

  async close(): Promise<void> {
    await this.idle();
    for (const seg of this.segments) await seg.close();
  }
}
