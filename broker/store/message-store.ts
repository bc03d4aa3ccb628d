/**
 * The message store: assembles commitlog, flush service, dispatcher, consume
 * queues, index, checkpoint, recovery and retention behind the MessageStore
 * API (store-api.ts).
 *
 * Append path (hot): appendBatch encodes the batch synchronously (offsets
 * assigned in call order, one buffer per segment-run from a preallocated ring)
 * and queues it for the single writer; once written, the batch is dispatched
 * from memory (no re-read) into consume queues and index, and answered — after
 * an fdatasync covers it under SYNC_FLUSH.
 *
 * Seams: clock (store timestamps, retention age and hour), logger, diskUsage
 * (path → used ratio 0..1). Production uses the real ones.
 */
import { statfsSync } from 'node:fs';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { errors } from '../../common/errors.js';
import { type Logger, silentLogger } from '../../common/logger.js';
import { Checkpoint, type CheckpointData } from './checkpoint.js';
import type { WriteJob } from './commitlog.js';
import { CommitLog } from './commitlog.js';
import { type BatchEncoder, encodeBatch } from './commitlog-batch.js';
import {
  BLANK_MAGIC,
  BLANK_MIN_BYTES,
  decodeRecord,
  MESSAGE_MAGIC,
  newDispatchInfo,
  OFF_MAGIC,
  readDispatchInfo,
  readStoreTimestamp,
  STORE_TIMESTAMP_PROBE_BYTES,
  validateBlank,
  validateRecord,
} from './commitlog-record.js';
import { recoverCommitLog, scanCommitLog } from './commitlog-recovery.js';
import { CQ_ENTRY_SIZE_BYTES } from './consume-queue.js';
import { ConsumeQueueTable } from './consume-queue-table.js';
import { Dispatcher } from './dispatcher.js';
import { FlushService } from './flush-service.js';
import { IndexService } from './index-service.js';
import { decodeOffsetMessageId, offsetMessageIdPrefix } from './message-id.js';
import { Retention } from './retention.js';
import { encodeAddress } from './socket-address.js';
import type {
  AppendResult,
  DispatchEvent,
  MessageInput,
  MessageStore,
  ReadResult,
  RecoveryReport,
  RetentionReport,
  StoredRecord,
  StoreStats,
  TagFilter,
} from './store-api.js';
import { SysFlag } from './store-api.js';
import { parseStoreOptions, type StoreOptions, type StoreOptionsInput } from './store-options.js';
import { tagHash } from './tag-hash.js';

/** Injectable seams (DESIGN.md §2.7). */
export interface StoreSeams {
  /** Epoch ms for store timestamps and retention. Default Date.now. */
  clock?: () => number;
  logger?: Logger;
  /** Disk use of the file system holding `path`, 0..1. Default: statfs. */
  diskUsage?: (path: string) => number;
}

/** Consume queue entries scanned per read() with a tag filter, at most. */
export const MAX_FILTER_SCAN_ENTRIES = 4096;
/** Consume queue entries scanned per read(), at most (bounds the entry buffer). */
export const MAX_READ_ENTRIES = 32_768;
/** Record bytes answered per read(), at most (at least one record is answered). */
export const MAX_READ_BYTES = 32 * 1024 * 1024;
/** Adjacent records closer than this are read with one positioned read. */
const READ_COALESCE_GAP_BYTES = 64 * 1024;
/** A coalesced read is at most this big. */
const READ_SPAN_MAX_BYTES = 512 * 1024;
/** First guess at a record's size for readAt (re-read when bigger). */
const READ_AT_GUESS_BYTES = 4096;
/** How often disk use is re-measured between retention passes, ms. */
const DISK_CHECK_INTERVAL_MS = 1000;
const TWO_32 = 4294967296;

/** Disk use as df reports it: used / (used + available to unprivileged writers). */
export function defaultDiskUsage(path: string): number {
  const s = statfsSync(path);
  const used = s.blocks - s.bfree;
  return used + s.bavail > 0 ? used / (used + s.bavail) : 0;
}

/**
 * Creates a store over the directories in `options` (nothing is touched until start()).
 *
 * @example
 *   const store = createMessageStore({ storePathRootDir: '/tmp/store', flushDiskType: 'SYNC_FLUSH' });
 *   await store.start();
 *   const [r] = await store.appendBatch([{ topic: 'T', queueId: 0, body: Buffer.from('hi'), tag: '',
 *     keys: [], properties: {}, messageId: newUniqueMessageId(), bornTimestamp: Date.now(), bornHost: '127.0.0.1:0' }]);
 *   const { records } = await store.read('T', 0, r.queueOffset, 32);
 *   await store.close();
 */
export function createMessageStore(
  options: StoreOptionsInput,
  seams: StoreSeams = {},
): MessageStore {
  return new DefaultMessageStore(parseStoreOptions(options), seams);
}

interface SelectedEntry {
  queueOffset: number;
  physicalOffset: number;
  size: number;
}

type State = 'new' | 'starting' | 'running' | 'closing' | 'closed';

class DefaultMessageStore implements MessageStore {
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly commitlog: CommitLog;
  private readonly queues: ConsumeQueueTable;
  private readonly index: IndexService;
  private readonly dispatcher: Dispatcher;
  private readonly flushService: FlushService;
  private readonly checkpoint: Checkpoint;
  private readonly retention: Retention;
  private readonly encoder: BatchEncoder;
  private state: State = 'new';
  private lastStoreTimestamp = 0;
  private logicsFlush: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private recovery: RecoveryReport | undefined;

  constructor(
    readonly options: Readonly<StoreOptions>,
    seams: StoreSeams,
  ) {
    this.logger = seams.logger ?? silentLogger;
    this.clock = seams.clock ?? Date.now;
    const o = options;
    this.commitlog = new CommitLog(o.storePathCommitLog, o.mapedFileSizeCommitLog, this.logger);
    this.queues = new ConsumeQueueTable(
      o.storePathConsumeQueue,
      o.mapedFileSizeConsumeQueue,
      this.logger,
    );
    this.index = new IndexService(o.storePathIndex, o.maxHashSlotNum, o.maxIndexNum, this.logger);
    this.dispatcher = new Dispatcher(this.queues, this.index, this.logger);
    this.flushService = new FlushService(
      this.commitlog,
      o.flushDiskType,
      o.flushIntervalCommitLog,
      o.syncFlushTimeout,
      this.logger,
    );
    this.checkpoint = new Checkpoint(o.storeCheckpoint);
    this.retention = new Retention(
      this.commitlog,
      this.queues,
      this.index,
      o,
      this.clock,
      seams.diskUsage ?? defaultDiskUsage,
      this.logger,
    );
    const queues = this.queues;
    this.encoder = {
      storeAddress: encodeAddress(o.storeHost),
      offsetIdPrefix: offsetMessageIdPrefix(o.storeHost),
      maxMessageSize: o.maxMessageSize,
      assignQueueOffset(topic: string, queueId: number): number {
        const cq = queues.getOrCreate(topic, queueId);
        return cq.nextAssign++;
      },
    };
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    if (this.state !== 'new')
      throw errors.internal(`message store cannot start: it is ${this.state}`);
    this.state = 'starting';
    const t0 = performance.now();
    const o = this.options;
    for (const dir of [
      o.storePathRootDir,
      o.storePathCommitLog,
      o.storePathConsumeQueue,
      o.storePathIndex,
      dirname(o.storeCheckpoint),
      dirname(o.abortFile),
    ]) {
      await mkdir(dir, { recursive: true });
    }
    const abnormal = await access(o.abortFile).then(
      () => true,
      () => false,
    );
    await writeFile(o.abortFile, `${process.pid}\n`);
    const cp = await this.checkpoint.load();
    if (abnormal)
      this.logger.warn({ checkpoint: cp }, 'message store did not close cleanly; recovering');

    // 1. Commitlog: how much of it is valid.
    await this.commitlog.load();
    const cl = await recoverCommitLog(this.commitlog, abnormal, cp?.physicalOffset, this.logger);
    const end = cl.end;
    const minPhy = this.commitlog.minOffset;

    // 2. Consume queues and index: drop what points past the end.
    await this.queues.load();
    await this.index.load();
    if (abnormal || cl.truncatedBytes > 0) {
      const dropped = await this.queues.truncatePast(end);
      if (dropped > 0)
        this.logger.warn(
          { dropped, end },
          'recovery: consume queue entries past the commitlog end dropped',
        );
      await this.index.truncatePast(end);
    }

    // 3. Rebuild what lags: dispatch from the furthest-behind durable point.
    const cqResume = this.queues.isEmpty || !cp ? minPhy : cp.logicsOffset;
    const indexResume = this.index.isEmpty ? minPhy : this.index.indexedThrough;
    const resume = Math.max(minPhy, Math.min(cqResume, indexResume, end));
    const scanned = await this.redispatch(resume, end);
    this.dispatcher.dispatchedOffset = Math.max(this.dispatcher.dispatchedOffset, end);
    await this.queues.correctMinOffsets(minPhy);

    // 4. Ready: flush what recovery wrote, checkpoint, timers.
    this.dispatcher.lastStoreTimestamp = Math.max(
      this.dispatcher.lastStoreTimestamp,
      cp?.logicsMsgTimestamp ?? 0,
    );
    this.lastStoreTimestamp = Math.max(
      cp?.physicMsgTimestamp ?? 0,
      this.dispatcher.lastStoreTimestamp,
    );
    this.commitlog.lastWrittenStoreTimestamp = this.lastStoreTimestamp;
    this.flushService.start(abnormal ? Math.min(cp?.physicalOffset ?? 0, end) : end);
    await this.flushService.flush();
    await this.flushLogics();
    this.retention.refreshDiskUsage();
    this.startTimers();
    this.state = 'running';
    this.recovery = {
      abnormal,
      validatedFrom: cl.validatedFrom,
      dispatchedFrom: resume,
      truncatedBytes: cl.truncatedBytes,
      maxPhysicalOffset: end,
      scannedRecords: cl.records + scanned,
      durationMs: performance.now() - t0,
    };
    this.logger.info({ ...this.recovery }, 'message store started');
  }

  /** Re-dispatches records in [from, to) from the files; answers how many. */
  private async redispatch(from: number, to: number): Promise<number> {
    this.dispatcher.dispatchedOffset = from;
    if (from >= to) return 0;
    const info = newDispatchInfo();
    const d = this.dispatcher;
    let records = 0;
    let pos = from;
    while (pos < to) {
      const r = await scanCommitLog(this.commitlog, pos, {
        verifyCrc: false,
        until: to,
        onRecord: (buf, off, size) => {
          readDispatchInfo(buf, off, size, info);
          d.dispatch(
            info.topic,
            info.queueId,
            info.queueOffset,
            info.physicalOffset,
            info.size,
            info.tag,
            info.tagsCode,
            info.storeTimestamp,
            info.keys,
            info.messageId,
            info.sysFlag,
          );
        },
        onBlank: (segmentEnd) => d.skip(segmentEnd),
        afterChunk: () => this.queues.writeAll(),
      });
      records += r.records;
      if (!r.problem) break;
      // Bytes before the validated tail were flushed and trusted: do not cut them, skip the segment.
      const seg = this.commitlog.segmentFor(r.problem.offset);
      this.logger.error(
        { offset: r.problem.offset, reason: r.problem.reason },
        'recovery: unreadable record while rebuilding consume queues and index; skipping to the next segment',
      );
      if (!seg) break;
      pos = seg.end;
    }
    await this.queues.writeAll();
    return records;
  }

  private startTimers(): void {
    const o = this.options;
    const every = (ms: number, task: () => Promise<unknown>, what: string) => {
      let busy = false;
      const t = setInterval(() => {
        if (busy) return;
        busy = true;
        task()
          .catch((err) => this.logger.error({ err }, `${what} failed`))
          .finally(() => {
            busy = false;
          });
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(o.flushIntervalConsumeQueue, () => this.flushLogics(), 'consume queue / index flush');
    every(DISK_CHECK_INTERVAL_MS, async () => this.retention.refreshDiskUsage(), 'disk check');
    if (o.cleanResourceInterval > 0)
      every(o.cleanResourceInterval, () => this.retention.run(), 'retention');
  }

  /** Writes and syncs consume queues and index, then the checkpoint (one at a time). */
  private flushLogics(): Promise<void> {
    const run = this.logicsFlush.then(async () => {
      const physicalOffset = this.flushService.flushedOffset;
      const physicMsgTimestamp = this.flushService.flushedStoreTimestamp || this.lastStoreTimestamp;
      const logicsOffset = this.dispatcher.dispatchedOffset;
      const logicsMsgTimestamp = this.dispatcher.lastStoreTimestamp;
      await this.queues.flush();
      await this.index.flush();
      const data: CheckpointData = {
        physicMsgTimestamp,
        logicsMsgTimestamp,
        indexMsgTimestamp: logicsMsgTimestamp,
        physicalOffset,
        logicsOffset,
        indexOffset: logicsOffset,
      };
      await this.checkpoint.write(data);
    });
    this.logicsFlush = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'closing';
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.retention.idle();
    await this.commitlog.idle();
    await this.flushService.flush();
    this.flushService.stop();
    await this.flushLogics();
    await this.queues.close();
    await this.index.close();
    await this.commitlog.close();
    await this.checkpoint.close();
    await rm(this.options.abortFile, { force: true });
    this.state = 'closed';
    this.logger.info({ maxPhysicalOffset: this.commitlog.writtenOffset }, 'message store closed');
  }

  async flush(): Promise<void> {
    await this.commitlog.idle();
    await this.flushService.flush();
    await this.flushLogics();
  }

  // ------------------------------------------------------------------ append

  private nextStoreTimestamp(): number {
    const now = this.clock();
    if (now > this.lastStoreTimestamp) this.lastStoreTimestamp = now;
    return this.lastStoreTimestamp;
  }

  private writableError(): Error | undefined {
    if (this.state !== 'running') return errors.unavailable(`message store is ${this.state}`);
    if (this.retention.isDiskFull) {
      return errors.diskFull(this.retention.diskUsedRatio, this.options.diskSpaceWarningLevelRatio);
    }
    if (this.commitlog.broken)
      return errors.internal('commitlog is broken after a failed write', this.commitlog.broken);
    return undefined;
  }

  appendBatch(messages: readonly MessageInput[]): Promise<AppendResult[]> {
    const refused = this.writableError();
    if (refused) return Promise.reject(refused);
    if (messages.length === 0) return Promise.resolve([]);
    let batch: ReturnType<typeof encodeBatch>;
    try {
      batch = encodeBatch(this.commitlog, this.encoder, messages, this.nextStoreTimestamp());
    } catch (err) {
      return Promise.reject(err);
    }
    const { results, jobs, end } = batch;
    return new Promise<AppendResult[]>((resolve, reject) => {
      jobs.at(-1)!.done = (err) => {
        if (err) {
          this.rollbackQueueOffsets(messages, results);
          reject(errors.internal('commitlog write failed', err));
          return;
        }
        this.dispatchBatch(messages, results);
        if (this.flushService.mode === 'SYNC_FLUSH') {
          this.flushService.waitFor(end, (flushErr) =>
            flushErr ? reject(flushErr) : resolve(results),
          );
        } else {
          resolve(results);
        }
      };
      for (const job of jobs) this.commitlog.enqueue(job);
    });
  }

  private dispatchBatch(messages: readonly MessageInput[], results: AppendResult[]): void {
    const d = this.dispatcher;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const r = results[i]!;
      d.dispatch(
        m.topic,
        m.queueId,
        r.queueOffset,
        r.physicalOffset,
        r.size,
        m.tag,
        m.tagsCode,
        r.storeTimestamp,
        m.keys,
        m.messageId,
        m.sysFlag ?? 0,
      );
    }
  }

  /** A failed write: hand the batch's queue offsets back (every later batch failed too). */
  private rollbackQueueOffsets(messages: readonly MessageInput[], results: AppendResult[]): void {
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const tx = (m.sysFlag ?? 0) & SysFlag.TRANSACTION_MASK;
      if (tx === SysFlag.TRANSACTION_PREPARED || tx === SysFlag.TRANSACTION_ROLLBACK) continue;
      const cq = this.queues.get(m.topic, m.queueId);
      const q = results[i]?.queueOffset;
      if (cq && q !== undefined && q < cq.nextAssign && q >= cq.maxOffset) cq.nextAssign = q;
    }
  }

  // -------------------------------------------------------------------- read

  async read(
    topic: string,
    queueId: number,
    offset: number,
    maxCount: number,
    filter?: TagFilter | null,
  ): Promise<ReadResult> {
    const cq = this.queues.get(topic, queueId);
    if (!cq) return { records: [], nextOffset: 0, minOffset: 0, maxOffset: 0 };
    const minOffset = cq.minOffset;
    const maxOffset = cq.maxOffset;
    if (offset < minOffset) offset = minOffset;
    if (offset >= maxOffset || maxCount <= 0) {
      return { records: [], nextOffset: Math.min(offset, maxOffset), minOffset, maxOffset };
    }
    const tags = filter && filter.tags.size > 0 && !filter.tags.has('*') ? filter.tags : undefined;
    let hashes: Set<number> | undefined;
    if (tags) {
      hashes = new Set();
      for (const t of tags) hashes.add(tagHash(t));
    }
    const want = Math.min(
      maxOffset - offset,
      MAX_READ_ENTRIES,
      tags ? Math.max(MAX_FILTER_SCAN_ENTRIES, maxCount) : maxCount,
    );
    const entries = Buffer.allocUnsafe(want * CQ_ENTRY_SIZE_BYTES);
    const got = await cq.readEntries(offset, want, entries);
    const minPhy = this.commitlog.minOffset;
    const selected: SelectedEntry[] = [];
    let bytes = 0;
    let scanned = 0;
    while (scanned < got && selected.length < maxCount) {
      const o = scanned * CQ_ENTRY_SIZE_BYTES;
      scanned++;
      const size = entries.readInt32BE(o + 8);
      const phy = entries.readInt32BE(o) * TWO_32 + entries.readUInt32BE(o + 4);
      if (size <= 0 || phy < minPhy) continue; // a hole, or a record retention already deleted
      if (hashes) {
        const hi = entries.readInt32BE(o + 12);
        const lo = entries.readInt32BE(o + 16);
        if (hi !== (lo < 0 ? -1 : 0) || !hashes.has(lo)) continue;
      }
      if (selected.length > 0 && bytes + size > MAX_READ_BYTES) {
        scanned--;
        break;
      }
      selected.push({ queueOffset: offset + scanned - 1, physicalOffset: phy, size });
      bytes += size;
    }
    const records = await this.readSelected(selected, topic, queueId);
    const out = tags ? records.filter((r) => tags.has(r.tag)) : records;
    return {
      records: out,
      nextOffset: offset + scanned,
      minOffset: cq.minOffset,
      maxOffset: cq.maxOffset,
    };
  }

  /** Reads the records of consume queue entries (in physical order), coalescing neighbours into one read. */
  private async readSelected(
    selected: SelectedEntry[],
    topic: string,
    queueId: number,
  ): Promise<StoredRecord[]> {
    if (selected.length === 0) return [];
    const spans: Array<{ from: number; to: number; first: number; last: number }> = [];
    for (let i = 0; i < selected.length; i++) {
      const e = selected[i]!;
      const span = spans.at(-1);
      const seg = this.commitlog.segmentFor(e.physicalOffset);
      if (
        span &&
        e.physicalOffset >= span.to &&
        e.physicalOffset - span.to <= READ_COALESCE_GAP_BYTES &&
        e.physicalOffset + e.size - span.from <= READ_SPAN_MAX_BYTES &&
        seg !== undefined &&
        span.from >= seg.start &&
        e.physicalOffset + e.size <= seg.end
      ) {
        span.to = e.physicalOffset + e.size;
        span.last = i;
      } else {
        spans.push({ from: e.physicalOffset, to: e.physicalOffset + e.size, first: i, last: i });
      }
    }
    const parts = await Promise.all(
      spans.map(async (span) => {
        const buf = Buffer.allocUnsafe(span.to - span.from);
        let n = 0;
        try {
          n = await this.commitlog.read(span.from, buf, 0, buf.length);
        } catch (err) {
          this.logger.debug({ err, offset: span.from }, 'read: commitlog range gone (retention)');
        }
        const out: StoredRecord[] = [];
        for (let i = span.first; i <= span.last; i++) {
          const e = selected[i]!;
          const at = e.physicalOffset - span.from;
          if (at + e.size > n) break;
          const record = this.decodeChecked(buf, at, e.size, e.physicalOffset);
          if (!record) continue;
          if (
            record.topic !== topic ||
            record.queueId !== queueId ||
            record.queueOffset !== e.queueOffset
          ) {
            this.logger.warn(
              { topic, queueId, queueOffset: e.queueOffset, physicalOffset: e.physicalOffset },
              'read: consume queue entry does not match its record; skipped',
            );
            continue;
          }
          out.push(record);
        }
        return out;
      }),
    );
    return parts.length === 1 ? parts[0]! : parts.flat();
  }

  private decodeChecked(
    buf: Buffer,
    at: number,
    size: number,
    physicalOffset: number,
  ): StoredRecord | undefined {
    if (buf.readUInt32BE(at + OFF_MAGIC) !== MESSAGE_MAGIC || buf.readInt32BE(at) !== size) {
      this.logger.warn(
        { physicalOffset },
        'read: no record where the consume queue points; skipped',
      );
      return undefined;
    }
    try {
      return decodeRecord(buf, at, size);
    } catch (err) {
      this.logger.warn({ err, physicalOffset }, 'read: corrupt record skipped');
      return undefined;
    }
  }

  minOffset(topic: string, queueId: number): number {
    return this.queues.get(topic, queueId)?.minOffset ?? 0;
  }

  maxOffset(topic: string, queueId: number): number {
    return this.queues.get(topic, queueId)?.maxOffset ?? 0;
  }

  queueIds(topic: string): number[] {
    return this.queues.queueIds(topic);
  }

  async storeTimestampAt(
    topic: string,
    queueId: number,
    offset: number,
  ): Promise<number | undefined> {
    const cq = this.queues.get(topic, queueId);
    if (!cq || offset < cq.minOffset || offset >= cq.maxOffset) return undefined;
    const entry = await cq.physicalOffsetAt(offset, Buffer.allocUnsafe(CQ_ENTRY_SIZE_BYTES));
    if (!entry) return undefined;
    return this.storeTimestampOf(entry.physicalOffset);
  }

  private async storeTimestampOf(physicalOffset: number): Promise<number | undefined> {
    if (physicalOffset < this.commitlog.minOffset) return undefined;
    const probe = Buffer.allocUnsafe(STORE_TIMESTAMP_PROBE_BYTES);
    try {
      const n = await this.commitlog.read(physicalOffset, probe, 0, probe.length);
      if (n < probe.length || probe.readUInt32BE(OFF_MAGIC) !== MESSAGE_MAGIC) return undefined;
      return readStoreTimestamp(probe, 0);
    } catch {
      return undefined; // deleted by retention meanwhile
    }
  }

  async offsetByTime(topic: string, queueId: number, timestampMs: number): Promise<number> {
    const cq = this.queues.get(topic, queueId);
    if (!cq) return 0;
    let lo = cq.minOffset;
    let hi = cq.maxOffset;
    const scratch = Buffer.allocUnsafe(CQ_ENTRY_SIZE_BYTES);
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const entry = await cq.physicalOffsetAt(mid, scratch);
      const t = entry ? await this.storeTimestampOf(entry.physicalOffset) : undefined;
      // Holes and deleted records count as older than anything.
      if (t !== undefined && t >= timestampMs) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  // ------------------------------------------------------------------ lookup

  async lookupByKey(
    topic: string,
    key: string,
    max: number,
    beginMs = 0,
    endMs = Number.MAX_SAFE_INTEGER,
  ): Promise<StoredRecord[]> {
    if (max <= 0) return [];
    const candidates = await this.index.lookup(topic, key, Math.max(max * 4, 32), beginMs, endMs);
    const out: StoredRecord[] = [];
    const seen = new Set<number>();
    for (const phy of candidates) {
      if (out.length >= max) break;
      if (seen.has(phy)) continue;
      seen.add(phy);
      const r = await this.readAt(phy);
      if (
        r &&
        r.topic === topic &&
        r.keys.includes(key) &&
        r.storeTimestamp >= beginMs &&
        r.storeTimestamp <= endMs
      ) {
        out.push(r);
      }
    }
    return out;
  }

  async lookupById(
    topic: string | undefined,
    messageId: string,
  ): Promise<StoredRecord | undefined> {
    const decoded = decodeOffsetMessageId(messageId);
    if (decoded) {
      const r = await this.readAt(decoded.physicalOffset);
      if (
        r &&
        r.offsetMessageId === messageId.toUpperCase() &&
        (topic === undefined || r.topic === topic)
      )
        return r;
    }
    if (topic === undefined) return undefined;
    const candidates = await this.index.lookup(topic, messageId, 16, 0, Number.MAX_SAFE_INTEGER);
    for (const phy of candidates) {
      const r = await this.readAt(phy);
      if (r && r.topic === topic && r.messageId === messageId) return r;
    }
    return undefined;
  }

  async readAt(physicalOffset: number): Promise<StoredRecord | undefined> {
    if (
      !Number.isSafeInteger(physicalOffset) ||
      physicalOffset < this.commitlog.minOffset ||
      physicalOffset >= this.commitlog.writtenOffset
    ) {
      return undefined;
    }
    try {
      let buf = Buffer.allocUnsafe(READ_AT_GUESS_BYTES);
      let n = await this.commitlog.read(physicalOffset, buf, 0, buf.length);
      if (n < 8 || buf.readUInt32BE(OFF_MAGIC) !== MESSAGE_MAGIC) return undefined;
      const size = buf.readInt32BE(0);
      if (size > n) {
        if (size > this.options.mapedFileSizeCommitLog) return undefined;
        buf = Buffer.allocUnsafe(size);
        n = await this.commitlog.read(physicalOffset, buf, 0, size);
        if (n < size) return undefined;
      }
      if (validateRecord(buf, 0, size, physicalOffset, false) !== undefined) return undefined;
      return decodeRecord(buf, 0, size);
    } catch (err) {
      this.logger.debug({ err, physicalOffset }, 'readAt failed');
      return undefined;
    }
  }

  // ------------------------------------------------------------------- admin

  async deleteTopic(topic: string): Promise<void> {
    await this.queues.deleteTopic(topic);
    // Move the checkpoint past the topic's records so a crash recovery does not rebuild its queues.
    if (this.state === 'running') await this.flushLogics();
  }

  // ------------------------------------------------------------- replication

  readRaw(fromOffset: number, maxBytes: number): Promise<Buffer> {
    if (fromOffset < this.commitlog.minOffset) {
      return Promise.reject(
        errors.illegalOffset(
          `offset ${fromOffset} is below the commitlog minimum ${this.commitlog.minOffset}`,
        ),
      );
    }
    return this.commitlog.readRaw(fromOffset, maxBytes);
  }

  appendRaw(offset: number, data: Buffer): Promise<void> {
    const refused = this.writableError();
    if (refused) return Promise.reject(refused);
    const cl = this.commitlog;
    if (cl.segments.length === 0 && cl.reservedOffset === 0 && offset % cl.segmentSize === 0) {
      // An empty slave starts wherever the master's log starts (a segment boundary).
      cl.reservedOffset = offset;
      cl.writtenOffset = offset;
      this.flushService.flushedOffset = offset;
      this.dispatcher.dispatchedOffset = offset;
    }
    if (offset !== cl.reservedOffset) {
      return Promise.reject(
        errors.illegalOffset(
          `appendRaw at ${offset}, but this commitlog ends at ${cl.reservedOffset}`,
        ),
      );
    }
    if (data.length === 0) return Promise.resolve();
    // Validate every record first: nothing is written unless all of it is whole and intact.
    const segmentSize = cl.segmentSize;
    const runs: Array<{ from: number; to: number; lastTs: number; firstTs: number }> = [];
    let p = 0;
    let lastTs = 0;
    while (p < data.length) {
      const pos = offset + p;
      const segEnd = pos - (pos % segmentSize) + segmentSize;
      const left = data.length - p;
      if (left < BLANK_MIN_BYTES)
        return Promise.reject(errors.messageCorrupted(`appendRaw: partial record at ${pos}`));
      const size = data.readInt32BE(p);
      const magic = data.readUInt32BE(p + OFF_MAGIC);
      let problem: string | undefined;
      let ts = 0;
      if (magic === BLANK_MAGIC) {
        problem = size > left ? 'partial blank record' : validateBlank(data, p, segEnd - pos);
      } else {
        problem = validateRecord(data, p, left, pos);
        if (!problem && pos + size + BLANK_MIN_BYTES > segEnd)
          problem = 'record crosses a segment end';
        if (!problem) ts = readStoreTimestamp(data, p);
      }
      if (problem)
        return Promise.reject(
          errors.messageCorrupted(`appendRaw: invalid record at ${pos}: ${problem}`),
        );
      const run = runs.at(-1);
      if (run && run.to === pos && pos % segmentSize !== 0) {
        run.to = pos + size;
        if (ts) run.lastTs = ts;
      } else {
        runs.push({ from: pos, to: pos + size, lastTs: ts, firstTs: ts });
      }
      if (ts) lastTs = ts;
      p += size;
    }
    const jobs: WriteJob[] = runs.map((run) => {
      const segment = cl.segmentForWrite(run.from);
      if (segment.firstStoreTimestamp === 0 && run.from === segment.start)
        segment.firstStoreTimestamp = run.firstTs;
      return {
        segment,
        position: run.from,
        bufs: [data.subarray(run.from - offset, run.to - offset)],
        bytes: run.to - run.from,
        region: undefined,
        lastStoreTimestamp: run.lastTs,
        done: undefined,
      };
    });
    cl.reservedOffset = offset + data.length;
    if (lastTs > this.lastStoreTimestamp) this.lastStoreTimestamp = lastTs;
    return new Promise<void>((resolve, reject) => {
      jobs.at(-1)!.done = (err) => {
        if (err) {
          reject(errors.internal('commitlog write failed', err));
          return;
        }
        this.dispatchRaw(offset, data);
        if (this.flushService.mode === 'SYNC_FLUSH') {
          this.flushService.waitFor(offset + data.length, (flushErr) =>
            flushErr ? reject(flushErr) : resolve(),
          );
        } else {
          resolve();
        }
      };
      for (const job of jobs) cl.enqueue(job);
    });
  }

  private dispatchRaw(offset: number, data: Buffer): void {
    const info = newDispatchInfo();
    const d = this.dispatcher;
    const segmentSize = this.commitlog.segmentSize;
    for (let p = 0; p < data.length; ) {
      const size = data.readInt32BE(p);
      if (data.readUInt32BE(p + OFF_MAGIC) === BLANK_MAGIC) {
        const pos = offset + p;
        d.skip(pos - (pos % segmentSize) + segmentSize);
      } else {
        readDispatchInfo(data, p, size, info);
        d.dispatch(
          info.topic,
          info.queueId,
          info.queueOffset,
          info.physicalOffset,
          info.size,
          info.tag,
          info.tagsCode,
          info.storeTimestamp,
          info.keys,
          info.messageId,
          info.sysFlag,
        );
      }
      p += size;
    }
  }

  maxPhysicalOffset(): number {
    return this.commitlog.writtenOffset;
  }

  minPhysicalOffset(): number {
    return this.commitlog.minOffset;
  }

  // ------------------------------------------------------------------- other

  onDispatch(listener: (event: DispatchEvent) => void): () => void {
    return this.dispatcher.onDispatch(listener);
  }

  stats(): StoreStats {
    return {
      minPhysicalOffset: this.commitlog.minOffset,
      maxPhysicalOffset: this.commitlog.writtenOffset,
      flushedPhysicalOffset: this.flushService.flushedOffset,
      commitlogSegments: this.commitlog.segments.length,
      diskUsedRatio: this.retention.diskUsedRatio,
      topics: this.queues.topicCount,
      writtenPhysicalOffset: this.commitlog.writtenOffset,
      dispatchedPhysicalOffset: this.dispatcher.dispatchedOffset,
      commitlogSyncs: this.flushService.syncCount,
      ...(this.recovery ? { recovery: this.recovery } : {}),
    };
  }

  runRetention(): Promise<RetentionReport> {
    if (this.state !== 'running')
      return Promise.reject(errors.unavailable(`message store is ${this.state}`));
    return this.retention.run();
  }
}
