/**
 * One consume queue: the index of one topic/queue into the commitlog, built by
 * the dispatcher. Files live in consumequeue/{topic}/{queueId}/, each holding
 * mapedFileSizeConsumeQueue bytes of entries and named (as RocketMQ does) by
 * the 20-digit logical byte offset of its first entry (queue offset × 20).
 *
 * Entry, 20 bytes, big-endian:
 *
 *    0                         8            12                        20
 *    +-------------------------+------------+-------------------------+
 *    | commitlog offset int64  | size int32 | tag hash code int64     |
 *    +-------------------------+------------+-------------------------+
 *
 * An all-zero entry (size 0) is a hole: readers skip it.
 *
 * Memory: entries not yet written to the files (at most a few KiB per busy
 * queue, and whatever arrived since the last flush) are kept in two small
 * buffers — `active` takes new entries while `inflight` is being written — and
 * answered from there; everything older is read with positioned reads. The
 * buffers come from a pool shared by every queue of the store and go back
 * once written, so an idle queue holds none.
 * Invariant: entries [minOffset, memStart) are in the files, [memStart,
 * maxOffset) in memory.
 */
import { constants } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import { type FilePool, PooledFile } from './file-pool.js';
import { fsyncDirectory, offsetFileName, parseOffsetFileName } from './positioned-io.js';

export const CQ_ENTRY_SIZE_BYTES = 20;
/** Pending bytes of one queue that trigger a write before the periodic flush. */
export const CQ_WRITE_THRESHOLD_BYTES = 64 * 1024;
const TWO_32 = 4294967296;

class CqFile {
  readonly file: PooledFile;
  /** Bytes in the file. */
  bytes = 0;
  deleted = false;

  constructor(
    readonly path: string,
    /** Queue offset of the file's first entry. */
    readonly start: number,
    pool: FilePool,
    /** Not on disk yet: the first write creates it. */
    create: boolean,
  ) {
    this.file = new PooledFile(
      path,
      pool,
      create ? constants.O_RDWR | constants.O_CREAT : undefined,
    );
  }

  read(buf: Buffer, off: number, len: number, pos: number): Promise<number> {
    if (this.deleted) return Promise.resolve(0);
    return this.file.read(buf, off, len, pos);
  }

  async write(buf: Buffer, pos: number): Promise<void> {
    await this.file.write(buf, pos);
    if (pos + buf.length > this.bytes) this.bytes = pos + buf.length;
  }

  async sync(): Promise<void> {
    if (!this.deleted) await this.file.sync();
  }

  async truncate(bytes: number): Promise<void> {
    await this.file.truncate(bytes);
    this.bytes = bytes;
  }

  close(): Promise<void> {
    return this.file.close();
  }

  async destroy(): Promise<void> {
    this.deleted = true;
    await this.file.destroy().catch(() => undefined);
  }
}

/** Smallest entry buffer, bytes; buffers double from here as entries arrive. */
const ENTRY_BUFFER_MIN_BYTES = 1024;
/** Largest entry buffer the pool keeps (a queue writes at CQ_WRITE_THRESHOLD_BYTES). */
const ENTRY_BUFFER_POOLED_MAX_BYTES = 2 * CQ_WRITE_THRESHOLD_BYTES;
/** Free entry buffers kept for reuse, bytes, over all queues of a store. */
export const CQ_BUFFER_POOL_BYTES = 4 * 1024 * 1024;

/**
 * Free entry buffers (powers of two from ENTRY_BUFFER_MIN_BYTES), shared by
 * every queue of a store: busy queues reuse them instead of allocating, idle
 * ones hold none.
 */
export class EntryBufferPool {
  private readonly free = new Map<number, Buffer[]>();
  /** Bytes of the buffers held for reuse. */
  freeBytes = 0;

  constructor(readonly maxFreeBytes = CQ_BUFFER_POOL_BYTES) {}

  /** A buffer of at least `bytes` (a power of two from the minimum). */
  take(bytes: number): Buffer {
    let size = ENTRY_BUFFER_MIN_BYTES;
    while (size < bytes) size *= 2;
    const buf = this.free.get(size)?.pop();
    if (!buf) return Buffer.allocUnsafe(size);
    this.freeBytes -= size;
    return buf;
  }

  /** Hands a buffer back (nobody may use it afterwards). */
  give(buf: Buffer): void {
    const size = buf.length;
    if (size > ENTRY_BUFFER_POOLED_MAX_BYTES || this.freeBytes + size > this.maxFreeBytes) return;
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    list.push(buf);
    this.freeBytes += size;
  }
}

/** Entries read ahead per block (40 KiB). */
const READ_AHEAD_ENTRIES = 2048;
/** Blocks kept, over all queues (least recently used go first): at most ~10 MiB. */
const READ_AHEAD_BLOCKS = 256;

interface ReadAheadBlock {
  file: CqFile;
  start: number;
  count: number;
  buf: Buffer;
}

/** Read-ahead blocks by queue. Entries in files never change (except recovery cuts and deletes, which drop the block). */
const readAhead = new Map<ConsumeQueue, ReadAheadBlock>();

export class ConsumeQueue {
  readonly files: CqFile[] = [];
  readonly dir: string;
  readonly entriesPerFile: number;
  /** First readable queue offset. */
  minOffset = 0;
  /** One past the last dispatched entry. */
  maxOffset = 0;
  /** Next queue offset to hand to an append (>= maxOffset while appends are in flight). */
  nextAssign = 0;
  /**
   * Records of this topic below this commitlog offset belong to a deleted
   * topic of the same name (topic-tombstones.ts): put() refuses them.
   */
  deletedBelow = 0;
  private active: Buffer | undefined;
  private activeStart = 0;
  private activeCount = 0;
  private inflight: Buffer | undefined;
  private inflightStart = 0;
  private inflightCount = 0;
  /** Cache of firstPhysicalOffset(): the answer for minOffset `at`. */
  private firstPhysical = { at: -1, offset: -1 };
  private writing: Promise<void> | undefined;
  private dirCreated = false;
  /** This process created the queue's directory: sync() must fsync the parents once. */
  private newDirectories = false;

  constructor(
    rootDir: string,
    readonly topic: string,
    readonly queueId: number,
    readonly fileBytes: number,
    private readonly logger: Logger,
    private readonly pool: FilePool,
    private readonly buffers: EntryBufferPool,
  ) {
    this.dir = join(rootDir, topic, String(queueId));
    this.entriesPerFile = fileBytes / CQ_ENTRY_SIZE_BYTES;
  }

  /** Opens what is on disk: min/max offsets from the file names and the last file's length. */
  async load(): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    this.dirCreated = names.length > 0;
    const starts = names
      .map(parseOffsetFileName)
      .filter((n): n is number => n !== undefined && n % this.fileBytes === 0)
      .sort((a, b) => a - b);
    for (const byteStart of starts) {
      const start = byteStart / CQ_ENTRY_SIZE_BYTES;
      this.files.push(
        new CqFile(join(this.dir, offsetFileName(byteStart)), start, this.pool, false),
      );
    }
    const last = this.files.at(-1);
    if (last) {
      const bytes = await last.file.size();
      const whole = bytes - (bytes % CQ_ENTRY_SIZE_BYTES);
      if (whole !== bytes) {
        this.logger.warn(
          { file: last.path, bytes, kept: whole },
          'consume queue: cutting a partial entry',
        );
        await last.truncate(whole);
      }
      last.bytes = whole;
      this.maxOffset = last.start + whole / CQ_ENTRY_SIZE_BYTES;
      this.minOffset = this.files[0]!.start;
    }
    this.activeStart = this.maxOffset;
    this.nextAssign = this.maxOffset;
  }

  /** Queue offset from which entries are in memory rather than in the files. */
  private get memStart(): number {
    return this.inflight ? this.inflightStart : this.activeStart;
  }

  get pendingBytes(): number {
    return this.activeCount * CQ_ENTRY_SIZE_BYTES;
  }

  get isEmpty(): boolean {
    return this.files.length === 0 && this.activeCount === 0 && !this.inflight;
  }

  /**
   * Adds the entry for queue offset `queueOffset` (in memory; written by
   * writePending). Answers false when the entry is already there (re-dispatch
   * after a crash). tagsHi/tagsLo are the tag code's high and low 32 bits.
   */
  put(
    queueOffset: number,
    physicalOffset: number,
    size: number,
    tagsHi: number,
    tagsLo: number,
  ): boolean {
    if (physicalOffset < this.deletedBelow) return false;
    if (this.isEmpty && queueOffset !== this.maxOffset) {
      // First entry of a queue rebuilt after retention, or of a topic re-created after a
      // deletion: it starts where its records do.
      this.minOffset = queueOffset;
      this.maxOffset = queueOffset;
      this.activeStart = queueOffset;
    }
    if (queueOffset < this.maxOffset) return false;
    if (queueOffset > this.maxOffset) {
      this.logger.warn(
        { topic: this.topic, queueId: this.queueId, from: this.maxOffset, to: queueOffset },
        'consume queue: gap in queue offsets; filling with holes',
      );
      while (this.maxOffset < queueOffset) this.append(0, 0, 0, 0);
    }
    this.append(physicalOffset, size, tagsHi, tagsLo);
    if (this.nextAssign < this.maxOffset) this.nextAssign = this.maxOffset;
    return true;
  }

  private append(physicalOffset: number, size: number, tagsHi: number, tagsLo: number): void {
    let buf = this.active;
    const at = this.activeCount * CQ_ENTRY_SIZE_BYTES;
    if (!buf || at + CQ_ENTRY_SIZE_BYTES > buf.length) {
      const bigger = this.buffers.take(at + CQ_ENTRY_SIZE_BYTES);
      if (buf) {
        buf.copy(bigger, 0, 0, at);
        this.buffers.give(buf);
      }
      buf = bigger;
      this.active = buf;
    }
    const hi = Math.floor(physicalOffset / TWO_32);
    buf.writeInt32BE(hi, at);
    buf.writeUInt32BE(physicalOffset - hi * TWO_32, at + 4);
    buf.writeInt32BE(size, at + 8);
    buf.writeInt32BE(tagsHi, at + 12);
    buf.writeInt32BE(tagsLo, at + 16);
    this.activeCount++;
    this.maxOffset++;
  }

  /** Writes the entries held in memory to the files (one write per file touched). */
  async writePending(): Promise<void> {
    while (this.writing) await this.writing.catch(() => undefined);
    if (this.activeCount === 0) return;
    this.inflight = this.active;
    this.inflightStart = this.activeStart;
    this.inflightCount = this.activeCount;
    this.active = undefined; // taken from the pool when the next entry comes
    this.activeStart = this.inflightStart + this.inflightCount;
    this.activeCount = 0;
    const run = this.writeInflight();
    this.writing = run;
    try {
      await run;
    } finally {
      this.writing = undefined;
    }
  }

  private async writeInflight(): Promise<void> {
    const buf = this.inflight!;
    let q = this.inflightStart;
    const end = q + this.inflightCount;
    try {
      if (!this.dirCreated) {
        // New directories (queue, maybe topic) are made durable by the next sync().
        if ((await mkdir(this.dir, { recursive: true })) !== undefined) this.newDirectories = true;
        this.dirCreated = true;
      }
      while (q < end) {
        const file = this.fileFor(q, true)!;
        const upto = Math.min(end, file.start + this.entriesPerFile);
        const from = (q - this.inflightStart) * CQ_ENTRY_SIZE_BYTES;
        const to = (upto - this.inflightStart) * CQ_ENTRY_SIZE_BYTES;
        await file.write(buf.subarray(from, to), (q - file.start) * CQ_ENTRY_SIZE_BYTES);
        q = upto;
      }
      this.inflight = undefined;
      this.inflightCount = 0;
      this.buffers.give(buf);
    } catch (err) {
      // Keep the entries in memory (they are still answered from there); the
      // next flush retries them ahead of newer ones.
      this.logger.error(
        { err, topic: this.topic, queueId: this.queueId },
        'consume queue write failed',
      );
      const merged = this.buffers.take(
        (this.inflightCount + this.activeCount + 1) * CQ_ENTRY_SIZE_BYTES,
      );
      buf.copy(
        merged,
        0,
        (q - this.inflightStart) * CQ_ENTRY_SIZE_BYTES,
        this.inflightCount * CQ_ENTRY_SIZE_BYTES,
      );
      const kept = end - q;
      this.active?.copy(
        merged,
        kept * CQ_ENTRY_SIZE_BYTES,
        0,
        this.activeCount * CQ_ENTRY_SIZE_BYTES,
      );
      if (this.active) this.buffers.give(this.active);
      this.buffers.give(buf);
      this.active = merged;
      this.activeStart = q;
      this.activeCount += kept;
      this.inflight = undefined;
      this.inflightCount = 0;
      throw err;
    }
  }

  /** The file holding queue offset q (created in memory when `create`). */
  private fileFor(q: number, create: boolean): CqFile | undefined {
    // Files are sorted by start: binary search for the last one starting at or before q.
    const files = this.files;
    let lo = 0;
    let hi = files.length - 1;
    let found: CqFile | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (files[mid]!.start <= q) {
        found = files[mid];
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found && q < found.start + this.entriesPerFile) return found;
    return create ? this.addFile(q) : undefined;
  }

  private addFile(q: number): CqFile {
    const start = q - (q % this.entriesPerFile);
    const file = new CqFile(
      join(this.dir, offsetFileName(start * CQ_ENTRY_SIZE_BYTES)),
      start,
      this.pool,
      true,
    );
    this.files.push(file);
    this.files.sort((a, b) => a.start - b.start);
    return file;
  }

  /** fdatasyncs what was written; new files' and directories' entries are made durable too. */
  async sync(): Promise<void> {
    for (const f of this.files) await f.sync();
    if (this.newDirectories) {
      const topicDir = dirname(this.dir);
      await fsyncDirectory(topicDir);
      await fsyncDirectory(dirname(topicDir));
      this.newDirectories = false;
    }
  }

  /**
   * Copies entries [offset, offset + count) into out[0…]; answers how many were
   * copied (fewer past maxOffset). Entries of deleted files read as holes.
   */
  async readEntries(offset: number, count: number, out: Buffer): Promise<number> {
    const end = Math.min(offset + count, this.maxOffset);
    if (end <= offset) return 0;
    const memStart = this.memStart;
    // Memory first, synchronously: those entries may move to the files during the awaits below.
    for (let q = Math.max(offset, memStart); q < end; ) {
      let src: Buffer;
      let base: number;
      let limit: number;
      if (this.inflight && q < this.inflightStart + this.inflightCount) {
        src = this.inflight;
        base = this.inflightStart;
        limit = this.inflightStart + this.inflightCount;
      } else {
        src = this.active!;
        base = this.activeStart;
        limit = this.activeStart + this.activeCount;
      }
      const upto = Math.min(end, limit);
      src.copy(
        out,
        (q - offset) * CQ_ENTRY_SIZE_BYTES,
        (q - base) * CQ_ENTRY_SIZE_BYTES,
        (upto - base) * CQ_ENTRY_SIZE_BYTES,
      );
      q = upto;
    }
    const fileEnd = Math.min(end, memStart);
    for (let q = offset; q < fileEnd; ) {
      const file = this.fileFor(q, false);
      const upto = file ? Math.min(fileEnd, file.start + this.entriesPerFile) : q + 1;
      const at = (q - offset) * CQ_ENTRY_SIZE_BYTES;
      const len = (upto - q) * CQ_ENTRY_SIZE_BYTES;
      let n = 0;
      if (file) {
        const block = await this.readAheadBlock(file, q, upto, memStart);
        if (block) {
          n = Math.min(len, (block.start + block.count - q) * CQ_ENTRY_SIZE_BYTES);
          block.buf.copy(
            out,
            at,
            (q - block.start) * CQ_ENTRY_SIZE_BYTES,
            (q - block.start) * CQ_ENTRY_SIZE_BYTES + n,
          );
        } else {
          n = await file.read(out, at, len, (q - file.start) * CQ_ENTRY_SIZE_BYTES);
        }
      }
      if (n < len) out.fill(0, at + n, at + len);
      q = upto;
    }
    return end - offset;
  }

  /**
   * A block of file entries covering [q, upto): the cached one, or a new one
   * read ahead from q (sequential consumers then pay one read per block, not
   * per call). Undefined when the range is larger than a block.
   */
  private async readAheadBlock(
    file: CqFile,
    q: number,
    upto: number,
    memStart: number,
  ): Promise<ReadAheadBlock | undefined> {
    const cached = readAhead.get(this);
    if (
      cached &&
      cached.file === file &&
      q >= cached.start &&
      upto <= cached.start + cached.count
    ) {
      readAhead.delete(this);
      readAhead.set(this, cached);
      return cached;
    }
    if (upto - q > READ_AHEAD_ENTRIES) return undefined;
    const blockEnd = Math.min(file.start + this.entriesPerFile, memStart, q + READ_AHEAD_ENTRIES);
    // A fresh buffer each time: a concurrent reader may still be copying from the old block.
    const buf = Buffer.allocUnsafe((blockEnd - q) * CQ_ENTRY_SIZE_BYTES);
    const n = await file.read(buf, 0, buf.length, (q - file.start) * CQ_ENTRY_SIZE_BYTES);
    const block: ReadAheadBlock = {
      file,
      start: q,
      count: Math.floor(n / CQ_ENTRY_SIZE_BYTES),
      buf,
    };
    readAhead.delete(this);
    readAhead.set(this, block);
    if (readAhead.size > READ_AHEAD_BLOCKS) readAhead.delete(readAhead.keys().next().value!);
    return block;
  }

  /** Physical offset of the entry at queue offset q, or undefined (past the end, or a hole). */
  async physicalOffsetAt(
    q: number,
    scratch: Buffer,
  ): Promise<{ physicalOffset: number; size: number } | undefined> {
    if ((await this.readEntries(q, 1, scratch)) !== 1) return undefined;
    const size = scratch.readInt32BE(8);
    if (size <= 0) return undefined;
    return { physicalOffset: scratch.readInt32BE(0) * TWO_32 + scratch.readUInt32BE(4), size };
  }

  /** Commitlog offset of the entry at minOffset (cached per minOffset); −1 when empty or a hole. */
  async firstPhysicalOffset(): Promise<number> {
    const at = this.minOffset;
    if (this.firstPhysical.at === at) return this.firstPhysical.offset;
    const e =
      at < this.maxOffset
        ? await this.physicalOffsetAt(at, Buffer.allocUnsafe(CQ_ENTRY_SIZE_BYTES))
        : undefined;
    const offset = e?.physicalOffset ?? -1;
    if (e) this.firstPhysical = { at, offset };
    return offset;
  }

  /**
   * Commitlog offset just past the record of the last entry that is not a
   * hole (looking back at most a few entries); −1 when there is none.
   */
  async endPhysicalOffset(): Promise<number> {
    const scratch = Buffer.allocUnsafe(CQ_ENTRY_SIZE_BYTES);
    for (let q = this.maxOffset - 1; q >= Math.max(this.minOffset, this.maxOffset - 64); q--) {
      const e = await this.physicalOffsetAt(q, scratch);
      if (e) return e.physicalOffset + e.size;
    }
    return -1;
  }

  /**
   * Recovery: drops entries whose record ends past `end` (the commitlog was cut
   * there). Entries are in physical order, so they form a suffix.
   */
  async truncatePast(end: number): Promise<number> {
    await this.writePending();
    const chunk = 1024;
    const buf = Buffer.allocUnsafe(chunk * CQ_ENTRY_SIZE_BYTES);
    let cut = this.maxOffset;
    while (cut > this.minOffset) {
      const from = Math.max(this.minOffset, cut - chunk);
      const n = await this.readEntries(from, cut - from, buf);
      let i = n - 1;
      for (; i >= 0; i--) {
        const o = i * CQ_ENTRY_SIZE_BYTES;
        const phy = buf.readInt32BE(o) * TWO_32 + buf.readUInt32BE(o + 4);
        const size = buf.readInt32BE(o + 8);
        if (size > 0 && phy + size <= end) break;
      }
      if (i >= 0) {
        cut = from + i + 1;
        break;
      }
      cut = from;
    }
    const dropped = this.maxOffset - cut;
    if (dropped > 0) await this.truncateTo(cut);
    return dropped;
  }

  /** Cuts the queue to end before queue offset `cut` (files only; memory must be written first). */
  private async truncateTo(cut: number): Promise<void> {
    readAhead.delete(this);
    const keep: CqFile[] = [];
    for (const f of this.files) {
      if (f.start < cut || (f.start === cut && keep.length === 0)) {
        keep.push(f);
        const bytes = (cut - f.start) * CQ_ENTRY_SIZE_BYTES;
        if (bytes < this.fileBytes) await f.truncate(bytes);
      } else {
        await f.destroy();
      }
    }
    this.files.length = 0;
    this.files.push(...keep);
    this.maxOffset = cut;
    this.nextAssign = cut;
    this.activeStart = cut;
    if (this.minOffset > cut) this.minOffset = cut;
  }

  /**
   * Moves minOffset to the first entry whose record is still in the commitlog
   * (physical offset >= minPhysicalOffset). Binary search: entries are in
   * physical order.
   */
  async correctMinOffset(minPhysicalOffset: number): Promise<void> {
    const scratch = Buffer.allocUnsafe(CQ_ENTRY_SIZE_BYTES);
    let lo = this.minOffset;
    let hi = this.maxOffset;
    const first = await this.physicalOffsetAt(lo, scratch);
    if (first && first.physicalOffset >= minPhysicalOffset) return;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const e = await this.physicalOffsetAt(mid, scratch);
      if (e && e.physicalOffset >= minPhysicalOffset) hi = mid;
      else lo = mid + 1;
    }
    this.minOffset = lo;
  }

  /**
   * Retention: deletes files whose every entry points below minPhysicalOffset
   * (never the last file, which keeps maxOffset known); answers how many.
   */
  async deleteFilesBelow(minPhysicalOffset: number): Promise<number> {
    readAhead.delete(this);
    const scratch = Buffer.allocUnsafe(CQ_ENTRY_SIZE_BYTES);
    let deleted = 0;
    while (this.files.length > 1) {
      const f = this.files[0]!;
      const lastOfFile = f.start + this.entriesPerFile - 1;
      const e = await this.physicalOffsetAt(lastOfFile, scratch);
      if (e && e.physicalOffset + e.size > minPhysicalOffset) break;
      this.files.shift();
      await f.destroy();
      deleted++;
    }
    if (this.files[0] && this.minOffset < this.files[0].start) this.minOffset = this.files[0].start;
    await this.correctMinOffset(minPhysicalOffset);
    return deleted;
  }

  async close(): Promise<void> {
    readAhead.delete(this);
    while (this.writing) await this.writing.catch(() => undefined);
    for (const f of this.files) await f.close();
  }

  /** Deletes the queue's files and directory (deleteTopic). */
  async destroy(): Promise<void> {
    readAhead.delete(this);
    while (this.writing) await this.writing.catch(() => undefined);
    for (const f of this.files) await f.destroy();
    this.files.length = 0;
    await rm(this.dir, { recursive: true, force: true });
  }
}
