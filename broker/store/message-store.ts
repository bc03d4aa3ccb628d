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
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { crc32 } from 'node:zlib';
import { errors } from '../../common/errors.js';
import { type Logger, silentLogger } from '../../common/logger.js';
import { Checkpoint, type CheckpointData } from './checkpoint.js';
import { CommitLog } from './commitlog.js';
import { type BatchEncoder, encodeBatch } from './commitlog-batch.js';
import {
  MESSAGE_MAGIC,
  newDispatchInfo,
  OFF_MAGIC,
  OFF_PHYSICAL_OFFSET,
  readDispatchInfo,
  readInt64,
} from './commitlog-record.js';
import { recoverCommitLog, scanCommitLog } from './commitlog-recovery.js';
import { ConsumeQueueTable } from './consume-queue-table.js';
import { Dispatcher } from './dispatcher.js';
import { FilePool } from './file-pool.js';
import { FlushService } from './flush-service.js';
import { IndexService } from './index-service.js';
import { offsetMessageIdPrefix } from './message-id.js';
import { fsyncDirectory } from './positioned-io.js';
import { type LogTail, QueueCheckpoint } from './queue-checkpoint.js';
import { QueueReader } from './queue-reader.js';
import { dispatchRaw, planRawAppend, type RawPlan } from './raw-append.js';
import { RecordLookup } from './record-lookup.js';
import { Retention } from './retention.js';
import { encodeAddress } from './socket-address.js';
import type {
  AppendResult,
  DispatchEvent,
  MessageInput,
  MessageStore,
  QueueEntriesResult,
  ReadResult,
  RecordRef,
  RecoveryReport,
  RetentionReport,
  StoredRecord,
  StoreStats,
  TagFilter,
} from './store-api.js';
import { SysFlag } from './store-api.js';
import { parseStoreOptions, type StoreOptions, type StoreOptionsInput } from './store-options.js';
import { type TopicTombstone, TopicTombstones } from './topic-tombstones.js';

/** Injectable seams (DESIGN.md §2.7). */
export interface StoreSeams {
  /** Epoch ms for store timestamps and retention. Default Date.now. */
  clock?: () => number;
  logger?: Logger;
  /** Disk use of the file system holding `path`, 0..1. Default: statfs. */
  diskUsage?: (path: string) => number;
  /** Told each commitlog fdatasync round's duration (s) and bytes, for metrics. */
  onFlush?: (seconds: number, bytes: number) => void;
}

/** The queue checkpoint's file name, beside the checkpoint. */
const QUEUE_CHECKPOINT_FILE = 'queuecheckpoint';
/**
 * Deleted topics' tombstones (topic-tombstones.ts), in the broker's config
 * directory (storePathRootDir/config) so metadata replication carries them
 * to the slaves.
 */
export const DELETED_TOPICS_FILE = 'deletedTopics.json';

/** How often disk use is re-measured between retention passes, ms. */
const DISK_CHECK_INTERVAL_MS = 1000;

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

type State = 'new' | 'starting' | 'running' | 'closing' | 'closed';

class DefaultMessageStore implements MessageStore {
  private readonly logger: Logger;
  private readonly clock: () => number;
  /** Descriptors of the store's files, bounded (pinned ones apart). */
  private readonly files: FilePool;
  private readonly commitlog: CommitLog;
  private readonly queues: ConsumeQueueTable;
  private readonly tombstones: TopicTombstones;
  private readonly index: IndexService;
  private readonly dispatcher: Dispatcher;
  private readonly flushService: FlushService;
  private readonly checkpoint: Checkpoint;
  private readonly queueCheckpoint: QueueCheckpoint;
  private readonly retention: Retention;
  private readonly encoder: BatchEncoder;
  private readonly reader: QueueReader;
  private readonly lookup: RecordLookup;
  private state: State = 'new';
  private lastStoreTimestamp = 0;
  private logicsFlush: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private recovery: RecoveryReport | undefined;
  /** The last record the start-up scans passed (size 0: none). */
  private scannedLast = { offset: -1, size: 0 };

  constructor(
    readonly options: Readonly<StoreOptions>,
    seams: StoreSeams,
  ) {
    this.logger = seams.logger ?? silentLogger;
    this.clock = seams.clock ?? Date.now;
    const o = options;
    this.files = new FilePool(o.maxOpenFiles, this.logger);
    this.commitlog = new CommitLog(
      o.storePathCommitLog,
      o.mapedFileSizeCommitLog,
      this.logger,
      this.files,
    );
    this.tombstones = new TopicTombstones(
      join(o.storePathRootDir, 'config', DELETED_TOPICS_FILE),
      this.logger,
    );
    this.queues = new ConsumeQueueTable(
      o.storePathConsumeQueue,
      o.mapedFileSizeConsumeQueue,
      this.logger,
      this.files,
      this.tombstones,
    );
    this.index = new IndexService(
      o.storePathIndex,
      o.maxHashSlotNum,
      o.maxIndexNum,
      this.logger,
      this.files,
    );
    this.dispatcher = new Dispatcher(this.queues, this.index, this.logger);
    this.flushService = new FlushService(
      this.commitlog,
      o.flushDiskType,
      o.flushIntervalCommitLog,
      o.syncFlushTimeout,
      this.logger,
    );
    this.commitlog.onRollback = (offset) => this.flushService.rolledBack(offset);
    this.flushService.onSynced = seams.onFlush;
    this.checkpoint = new Checkpoint(o.storeCheckpoint);
    this.queueCheckpoint = new QueueCheckpoint(
      join(dirname(o.storeCheckpoint), QUEUE_CHECKPOINT_FILE),
      this.logger,
    );
    this.retention = new Retention(
      this.commitlog,
      this.queues,
      this.index,
      o,
      this.clock,
      seams.diskUsage ?? defaultDiskUsage,
      this.logger,
    );
    this.reader = new QueueReader(this.commitlog, this.queues, this.logger);
    const tombstones = this.tombstones;
    this.lookup = new RecordLookup(
      this.commitlog,
      this.index,
      this.logger,
      (r) => r.physicalOffset < (tombstones.get(r.topic)?.physicalOffset ?? 0),
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
    // Durable before anything else is touched: a power cut from here on must recover.
    await writeFile(o.abortFile, `${process.pid}\n`, { flush: true });
    await fsyncDirectory(dirname(o.abortFile));
    const cp = await this.checkpoint.load();
    if (abnormal)
      this.logger.warn({ checkpoint: cp }, 'message store did not close cleanly; recovering');

    // 1. Open everything; find where consume queues and index need records re-dispatched.
    await this.commitlog.load();
    await this.tombstones.load();
    await this.queues.load();
    await this.index.load();
    const minPhy = this.commitlog.minOffset;
    const fileEnd = this.commitlog.fileEnd;
    let cqResume = this.queues.isEmpty || !cp ? minPhy : cp.logicsOffset;
    // A queue lost or cut short while others are whole: rebuild it from the lowest record it needs.
    const lagging = await this.queues.lowestLagging(await this.queueCheckpoint.load(), minPhy);
    if (lagging !== undefined) cqResume = Math.min(cqResume, lagging);
    const indexResume = this.index.isEmpty ? minPhy : this.index.indexedThrough;
    const resume = Math.max(minPhy, Math.min(cqResume, indexResume, fileEnd));

    // 2. One scan: re-validate what may be damaged (abnormal start), cut a bad tail,
    //    re-dispatch what lags (dispatch is idempotent).
    const cl = await recoverCommitLog(this.commitlog, {
      abnormal,
      checkpointOffset: cp?.physicalOffset,
      dispatchFrom: resume,
      ...this.redispatcher(),
      logger: this.logger,
    });
    const end = cl.end;

    // 3. Consume queues and index: drop entries past the end; re-index what a dropped index file held.
    if (abnormal || cl.truncatedBytes > 0) {
      const dropped = await this.queues.truncatePast(end);
      if (dropped > 0) {
        this.logger.warn(
          { dropped, end },
          'recovery: consume queue entries past the commitlog end dropped',
        );
      }
      await this.index.truncatePast(end);
    }
    let scanned = cl.records;
    const indexLag = this.index.isEmpty ? minPhy : this.index.indexedThrough;
    if (indexLag < end) scanned += await this.redispatch(Math.max(minPhy, indexLag), end);
    await this.queues.writeAll();
    this.adoptLastRecord(end, this.queueCheckpoint.loadedTail);
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
      dispatchedFrom: Math.min(resume, end),
      truncatedBytes: cl.truncatedBytes,
      maxPhysicalOffset: end,
      scannedRecords: scanned,
      durationMs: performance.now() - t0,
    };
    this.logger.info({ ...this.recovery }, 'message store started');
  }

  /** Callbacks that dispatch scanned records (recovery and re-dispatch). */
  private redispatcher() {
    const info = newDispatchInfo();
    const d = this.dispatcher;
    const seen = this.scannedLast;
    return {
      onRecord: (buf: Buffer, off: number, size: number, physicalOffset: number) => {
        if (physicalOffset > seen.offset) {
          seen.offset = physicalOffset;
          seen.size = size;
        }
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
      onBlank: (segmentEnd: number) => d.skip(segmentEnd),
      afterChunk: () => this.queues.writeAll(),
    };
  }

  /**
   * After recovery, the log ends at `end`: its last record is the last one the
   * scans passed when they reached the end, else the queue checkpoint's hint
   * when it was taken at this very end (a clean stop), else unknown (found by
   * lastRecord() when asked).
   */
  private adoptLastRecord(end: number, hint: LogTail | undefined): void {
    const cl = this.commitlog;
    const seen = this.scannedLast;
    const segmentStart = end - 1 - ((end - 1) % cl.segmentSize);
    // A record ending where the log does, or the last one before the blank that ends its segment.
    const endsLog = (offset: number, size: number) =>
      offset >= cl.minOffset &&
      (offset + size === end || (end % cl.segmentSize === 0 && offset >= segmentStart));
    cl.lastRecordOffset = -1;
    cl.lastRecordSize = 0;
    if (seen.size > 0 && endsLog(seen.offset, seen.size)) {
      cl.lastRecordOffset = seen.offset;
      cl.lastRecordSize = seen.size;
    } else if (hint && hint.end === end && hint.size > 0 && endsLog(hint.offset, hint.size)) {
      cl.lastRecordOffset = hint.offset;
      cl.lastRecordSize = hint.size;
    }
  }

  /** Re-dispatches records in [from, to) (already validated) from the files; answers how many. */
  private async redispatch(from: number, to: number): Promise<number> {
    let records = 0;
    for (let pos = from; pos < to; ) {
      const r = await scanCommitLog(this.commitlog, pos, {
        verifyFrom: Number.POSITIVE_INFINITY,
        until: to,
        ...this.redispatcher(),
      });
      records += r.records;
      if (!r.problem) break;
      this.logger.error(
        { offset: r.problem.offset, reason: r.problem.reason },
        'recovery: unreadable record while re-indexing; skipping to the next segment',
      );
      const seg = this.commitlog.segmentFor(r.problem.offset);
      if (!seg) break;
      pos = seg.end;
    }
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
      every(o.cleanResourceInterval, () => this.retain(), 'retention');
  }

  /** Writes and syncs consume queues and index, then the checkpoint (one at a time). */
  private flushLogics(): Promise<void> {
    const run = this.logicsFlush.then(async () => {
      const physicalOffset = this.flushService.flushedOffset;
      const physicMsgTimestamp = this.flushService.flushedStoreTimestamp || this.lastStoreTimestamp;
      const logicsOffset = this.dispatcher.dispatchedOffset;
      const logicsMsgTimestamp = this.dispatcher.lastStoreTimestamp;
      const cl = this.commitlog;
      // Taken with writtenOffset (both move together in the writer), before any await.
      const tail: LogTail | undefined =
        cl.lastRecordSize > 0
          ? { offset: cl.lastRecordOffset, size: cl.lastRecordSize, end: cl.writtenOffset }
          : undefined;
      const extents = await this.queues.extents();
      await this.queues.flush();
      await this.index.flush();
      await this.queueCheckpoint.write(extents, tail);
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
    // A failed or hung flush must not keep the files open forever: close anyway,
    // but keep the abort file so the next start re-validates the tail.
    let clean = true;
    try {
      await this.flushService.flush();
      await this.flushLogics();
    } catch (err) {
      clean = false;
      this.logger.error({ err }, 'message store: final flush failed; closing without it');
    }
    this.flushService.stop();
    await this.queues.close();
    await this.index.close();
    await this.commitlog.close();
    await this.checkpoint.close();
    if (clean) await rm(this.options.abortFile, { force: true });
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
    // After a failed fdatasync or rollback nothing written from here on could be trusted
    // to reach the disk; reads go on, writes wait for a restart (and its recovery).
    if (this.flushService.failure) return this.flushService.failure;
    if (this.commitlog.broken) {
      return errors.storeNotWritable(
        'a failed commitlog write could not be rolled back',
        this.commitlog.broken,
      );
    }
    return undefined;
  }

  appendBatch(messages: readonly MessageInput[], onWritten?: () => void): Promise<AppendResult[]> {
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
        onWritten?.();
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

  read(
    topic: string,
    queueId: number,
    offset: number,
    maxCount: number,
    filter?: TagFilter | null,
  ): Promise<ReadResult> {
    return this.reader.read(topic, queueId, offset, maxCount, filter);
  }

  readQueueEntries(
    topic: string,
    queueId: number,
    offset: number,
    maxCount: number,
  ): Promise<QueueEntriesResult> {
    return this.reader.readEntries(topic, queueId, offset, maxCount);
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

  storeTimestampAt(topic: string, queueId: number, offset: number): Promise<number | undefined> {
    return this.reader.storeTimestampAt(topic, queueId, offset);
  }

  offsetByTime(topic: string, queueId: number, timestampMs: number): Promise<number> {
    return this.reader.offsetByTime(topic, queueId, timestampMs);
  }

  // ------------------------------------------------------------------ lookup

  lookupByKey(
    topic: string,
    key: string,
    max: number,
    beginMs?: number,
    endMs?: number,
  ): Promise<StoredRecord[]> {
    return this.lookup.lookupByKey(topic, key, max, beginMs, endMs);
  }

  lookupById(topic: string | undefined, messageId: string): Promise<StoredRecord | undefined> {
    return this.lookup.lookupById(topic, messageId);
  }

  readAt(physicalOffset: number): Promise<StoredRecord | undefined> {
    return this.lookup.readAt(physicalOffset);
  }

  // ------------------------------------------------------------------- admin

  async deleteTopic(topic: string): Promise<void> {
    // Its records stay in the commitlog: a tombstone keeps them out of any queue of a
    // re-created topic of the same name, whose offsets continue after theirs.
    const before = this.tombstones.get(topic);
    const queues = new Map(before?.queues);
    for (const id of this.queues.queueIds(topic)) {
      const next = this.queues.get(topic, id)!.nextAssign;
      if (next > (queues.get(id) ?? 0)) queues.set(id, next);
    }
    const t: TopicTombstone = {
      topic,
      // Past every record handed to the writer, also those not written yet (still old ones).
      physicalOffset: this.commitlog.reservedOffset,
      queues,
    };
    if (queues.size === 0) {
      // Never had a message here: nothing to keep out, nothing to continue.
      await this.queues.applyTombstone(t);
    } else {
      const merged = this.tombstones.merge(t) ?? before!;
      await this.queues.applyTombstone(merged, () => this.tombstones.save());
      this.logger.info(
        { topic, physicalOffset: merged.physicalOffset, queues: Object.fromEntries(merged.queues) },
        'topic deleted from the store; a re-created one continues after its queue offsets',
      );
    }
    // Move the checkpoint past the topic's records so a crash recovery does not rebuild its queues.
    if (this.state === 'running') await this.flushLogics();
  }

  async applyDeletedTopics(tombstones: readonly TopicTombstone[]): Promise<number> {
    if (this.state !== 'running') throw errors.unavailable(`message store is ${this.state}`);
    const changed: TopicTombstone[] = [];
    for (const t of tombstones) {
      // No record of this log lies below it (retention here passed it): nothing to keep out.
      if (t.physicalOffset <= this.commitlog.minOffset) continue;
      const merged = this.tombstones.merge(t);
      if (merged) changed.push(merged);
    }
    if (changed.length === 0) return 0;
    await this.tombstones.save();
    for (const t of changed) {
      await this.queues.applyTombstone(t);
      this.logger.info(
        { topic: t.topic, physicalOffset: t.physicalOffset, queues: Object.fromEntries(t.queues) },
        'replicated topic deletion applied to the consume queues',
      );
    }
    await this.flushLogics();
    return changed.length;
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
      cl.startAt(offset);
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
    let plan: RawPlan;
    try {
      plan = planRawAppend(cl, offset, data);
    } catch (err) {
      return Promise.reject(err);
    }
    cl.reservedOffset = offset + data.length;
    if (plan.lastStoreTimestamp > this.lastStoreTimestamp)
      this.lastStoreTimestamp = plan.lastStoreTimestamp;
    return new Promise<void>((resolve, reject) => {
      plan.jobs.at(-1)!.done = (err) => {
        if (err) {
          reject(errors.internal('commitlog write failed', err));
          return;
        }
        dispatchRaw(this.dispatcher, cl.segmentSize, offset, data);
        if (this.flushService.mode === 'SYNC_FLUSH') {
          this.flushService.waitFor(offset + data.length, (flushErr) =>
            flushErr ? reject(flushErr) : resolve(),
          );
        } else {
          resolve();
        }
      };
      for (const job of plan.jobs) cl.enqueue(job);
    });
  }

  maxPhysicalOffset(): number {
    return this.commitlog.writtenOffset;
  }

  minPhysicalOffset(): number {
    return this.commitlog.minOffset;
  }

  async lastRecord(): Promise<RecordRef | undefined> {
    const cl = this.commitlog;
    // Twice at most: a remembered place that does not hold that record (a stale hint) is dropped and searched for.
    for (let attempt = 0; attempt < 2; attempt++) {
      if (cl.lastRecordSize === 0) await this.findLastRecord();
      const offset = cl.lastRecordOffset;
      const size = cl.lastRecordSize;
      if (size === 0) return undefined;
      const buf = Buffer.allocUnsafe(size);
      const n = await cl.read(offset, buf, 0, size).catch(() => 0);
      if (
        n === size &&
        buf.readInt32BE(0) === size &&
        buf.readUInt32BE(OFF_MAGIC) === MESSAGE_MAGIC &&
        readInt64(buf, OFF_PHYSICAL_OFFSET) === offset
      ) {
        return { offset, size, crc: crc32(buf) };
      }
      if (cl.lastRecordOffset === offset && cl.lastRecordSize === size) {
        this.logger.warn({ offset, size }, 'last commitlog record not where remembered; searching');
        cl.lastRecordOffset = -1;
        cl.lastRecordSize = 0;
      }
    }
    return undefined;
  }

  /**
   * Finds the last message record by scanning the segment holding the log's
   * last byte (an earlier one if that holds none); remembers it unless an
   * append moved the end meanwhile.
   */
  private async findLastRecord(): Promise<void> {
    const cl = this.commitlog;
    const end = cl.writtenOffset;
    const last = { offset: -1, size: 0 };
    for (
      let seg = cl.segmentFor(end - 1);
      seg && last.size === 0;
      seg = cl.segmentFor(seg.start - 1)
    ) {
      await scanCommitLog(cl, seg.start, {
        verifyFrom: Number.POSITIVE_INFINITY,
        until: Math.min(end, seg.end),
        onRecord: (_buf, _off, size, physicalOffset) => {
          last.offset = physicalOffset;
          last.size = size;
        },
      });
    }
    if (cl.writtenOffset === end && cl.lastRecordSize === 0 && last.size > 0) {
      cl.lastRecordOffset = last.offset;
      cl.lastRecordSize = last.size;
    }
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
    return this.retain();
  }

  /** A retention pass; then tombstones with no deleted record left behind go too. */
  private async retain(): Promise<RetentionReport> {
    const report = await this.retention.run();
    if (this.tombstones.prune(this.commitlog.minOffset) > 0) await this.tombstones.save();
    return report;
  }
}
