/**
 * Durable consume state (pop in-flight and ack state, timer and transaction
 * progress): every QueueState in memory, every change appended to a journal,
 * and a periodic snapshot that lets old journal files go.
 *
 * Files under `<storePathRootDir>/popstate/`:
 *   snapshot.json            { version, seq, states: [...] } — the state as of
 *                            the start of journal `seq`
 *   journal-<seq>.log        records (consume-state-record.ts) in the order the
 *                            changes were made in memory
 *
 * Recovery: load the snapshot, replay journals >= its seq in order, stop at
 * the first record that does not validate (a torn tail) and cut it off.
 *
 * Durability follows flushDiskType: every change is written (to the page
 * cache, so it survives a SIGKILL) before the caller's promise resolves; with
 * SYNC_FLUSH an fdatasync covers it too (group commit: changes made while a
 * write is running share the next write and sync). ASYNC_FLUSH syncs every
 * flushIntervalCommitLog ms.
 *
 * Compaction: when the current journal passes compactBytes, a snapshot of
 * memory is taken synchronously (between two writes, so it is exactly the
 * state at the start of the next journal), journal seq+1 is started, the
 * snapshot is written atomically and older journals are deleted.
 *
 * Invariant: a change is applied in memory and its record queued in the same
 * synchronous step, so record order is the order of the changes.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { type FileHandle, open, rename, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonFile } from '../../common/json-file.js';
import type { Logger } from '../../common/logger.js';
import { type FlushDiskType, writevAtSync } from '../store/index.js';
import { type InflightEntry, QueueState } from './consume-state.js';
import {
  decodeStateRecord,
  encodeStateRecord,
  RecordType,
  type StateRecord,
  validateStateRecord,
} from './consume-state-record.js';

export const DEFAULT_STATE_COMPACT_BYTES = 64 * 1024 * 1024;
const SNAPSHOT_VERSION = 1;
/** RESET to this base means the state was dropped. */
const DROPPED_BASE = -1;
const JOURNAL_PATTERN = /^journal-(\d{12})\.log$/;

export interface ConsumeStateStoreOptions {
  dir: string;
  flushDiskType: FlushDiskType;
  /** ASYNC_FLUSH: background fdatasync interval, ms. */
  flushIntervalMs: number;
  compactBytes?: number;
  logger: Logger;
}

interface SnapshotState {
  group: string;
  topic: string;
  queueId: number;
  base: number;
  settled: Array<[number, number]>;
  /** [offset, physicalOffset, popTime, invisibleMs, attempt, messageGroup, flags (bit 0 fifo, bit 1 committing)] */
  inflight: Array<[number, number, number, number, number, string, number]>;
}

interface SnapshotFile {
  version: number;
  seq: number;
  states: SnapshotState[];
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

function journalName(seq: number): string {
  return `journal-${String(seq).padStart(12, '0')}.log`;
}

export class ConsumeStateStore {
  private readonly states = new StateTable();
  private readonly dir: string;
  private readonly compactBytes: number;
  private seq = 0;
  private fh: FileHandle | undefined;
  private fhSeq = -1;
  private opening: Promise<void> | undefined;
  private position = 0;
  private pending: Buffer[] = [];
  private waiters: Waiter[] = [];
  private flushing: Promise<void> | undefined;
  private dirtySinceSync = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private compaction: Promise<void> | undefined;
  private closed = false;
  /** Called whenever a state's base moves (used to mirror pop progress into consumer offsets). */
  onAdvance: ((s: QueueState) => void) | undefined;

  constructor(private readonly options: ConsumeStateStoreOptions) {
    this.dir = options.dir;
    this.compactBytes = options.compactBytes ?? DEFAULT_STATE_COMPACT_BYTES;
  }

  /** Loads the snapshot and replays the journals. */
  async open(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const snap = readJsonFile<SnapshotFile | undefined>(join(this.dir, 'snapshot.json'), undefined);
    let from = 0;
    if (snap && snap.version === SNAPSHOT_VERSION) {
      from = snap.seq;
      for (const s of snap.states) this.loadSnapshotState(s);
    }
    const seqs = readdirSync(this.dir)
      .map((n) => JOURNAL_PATTERN.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    let replayed = 0;
    let last = from;
    for (const seq of seqs) {
      const path = join(this.dir, journalName(seq));
      if (seq < from) {
        rmSync(path, { force: true });
        continue;
      }
      const buf = readFileSync(path);
      let off = 0;
      while (off < buf.length) {
        const problem = validateStateRecord(buf, off);
        if (problem) {
          this.options.logger.warn(
            { file: path, offset: off, problem, bytes: buf.length - off },
            'consume-state journal: cutting a torn tail',
          );
          await truncate(path, off);
          break;
        }
        const { record, size } = decodeStateRecord(buf, off);
        this.apply(record);
        replayed++;
        off += size;
      }
      last = seq;
    }
    this.seq = last;
    this.options.logger.info(
      { states: this.states.size, replayedRecords: replayed, journal: this.seq },
      'consume state recovered',
    );
    if (this.options.flushDiskType === 'ASYNC_FLUSH') {
      this.syncTimer = setInterval(() => void this.syncNow(), this.options.flushIntervalMs);
      this.syncTimer.unref();
    }
  }

  private loadSnapshotState(s: SnapshotState): void {
    const st = this.create(s.group, s.topic, s.queueId, s.base);
    for (const [a, b] of s.settled) st.settled.addRange(a, b);
    for (const [
      offset,
      physicalOffset,
      popTime,
      invisibleMs,
      attempt,
      messageGroup,
      flags,
    ] of s.inflight) {
      const e: InflightEntry = {
        offset,
        physicalOffset,
        popTime,
        invisibleMs,
        attempt,
        messageGroup,
        fifo: (flags & 1) !== 0,
      };
      if ((flags & 2) !== 0) e.committing = true;
      st.inflight.set(offset, e);
    }
  }

  private create(group: string, topic: string, queueId: number, base: number): QueueState {
    const st = new QueueState(group, topic, queueId, base);
    st.onAdvance = (s) => this.onAdvance?.(s);
    this.states.set(st);
    return st;
  }

  private apply(r: StateRecord): void {
    let st = this.states.get(r.group, r.topic, r.queueId);
    if (r.type === RecordType.RESET) {
      if (r.base === DROPPED_BASE) this.states.delete(r.group, r.topic, r.queueId);
      else if (st) st.applyReset(r.base);
      else this.create(r.group, r.topic, r.queueId, r.base);
      return;
    }
    // A state always starts with a RESET record; tolerate its loss (cut tail of an older journal).
    st ??= this.create(r.group, r.topic, r.queueId, 0);
    if (r.type === RecordType.PUT) {
      for (const e of r.entries) st.applyPut(e);
    } else {
      for (const [a, b] of r.runs) st.applySettle(a, b);
    }
  }

  get(group: string, topic: string, queueId: number): QueueState | undefined {
    return this.states.get(group, topic, queueId);
  }

  /** The state, created at `initialBase()` (and journalled) when new. */
  obtain(group: string, topic: string, queueId: number, initialBase: () => number): QueueState {
    const existing = this.states.get(group, topic, queueId);
    if (existing) return existing;
    const base = initialBase();
    const st = this.create(group, topic, queueId, base);
    void this.write({ type: RecordType.RESET, group, topic, queueId, base }).catch(() => undefined);
    return st;
  }

  all(): IterableIterator<QueueState> {
    return this.states.values();
  }

  /** Records entries as handed out (or their new pop time / invisible time / attempt). */
  put(st: QueueState, entries: readonly InflightEntry[]): Promise<void> {
    if (entries.length === 0 || st.dropped) return Promise.resolve();
    for (const e of entries) st.applyPut(e);
    return this.write({
      type: RecordType.PUT,
      group: st.group,
      topic: st.topic,
      queueId: st.queueId,
      entries: entries as InflightEntry[],
    });
  }

  /** Settles offset runs [start, end). */
  settle(st: QueueState, runs: ReadonlyArray<readonly [number, number]>): Promise<void> {
    if (runs.length === 0 || st.dropped) return Promise.resolve();
    for (const [a, b] of runs) st.applySettle(a, b);
    return this.write({
      type: RecordType.SETTLE,
      group: st.group,
      topic: st.topic,
      queueId: st.queueId,
      runs: runs as Array<[number, number]>,
    });
  }

  /** Settles single offsets (grouped into runs). */
  settleOffsets(st: QueueState, offsets: readonly number[]): Promise<void> {
    return this.settle(st, toRuns(offsets));
  }

  /** Moves a state to `base`, forgetting what was in flight or settled. */
  reset(st: QueueState, base: number): Promise<void> {
    if (st.dropped) return Promise.resolve();
    st.applyReset(base);
    return this.write({
      type: RecordType.RESET,
      group: st.group,
      topic: st.topic,
      queueId: st.queueId,
      base,
    });
  }

  /** Forgets a state (its group or topic was deleted); journalled as a RESET to -1. */
  drop(st: QueueState): Promise<void> {
    if (st.dropped) return Promise.resolve();
    st.dropped = true;
    st.epoch++;
    if (this.states.get(st.group, st.topic, st.queueId) === st) {
      this.states.delete(st.group, st.topic, st.queueId);
    }
    return this.write({
      type: RecordType.RESET,
      group: st.group,
      topic: st.topic,
      queueId: st.queueId,
      base: DROPPED_BASE,
    });
  }

  private write(r: StateRecord): Promise<void> {
    if (this.closed) return Promise.resolve();
    const buf = encodeStateRecord(r);
    return new Promise<void>((resolve, reject) => {
      this.pending.push(buf);
      this.waiters.push({ resolve, reject });
      if (!this.flushing) this.flushing = this.flushLoop();
    });
  }

  /** The handle of the current journal; opens it (once, however many callers) after a switch. */
  private async ensureFile(): Promise<FileHandle> {
    while (!this.fh || this.fhSeq !== this.seq) {
      this.opening ??= this.openCurrent().finally(() => {
        this.opening = undefined;
      });
      await this.opening;
    }
    return this.fh;
  }

  private async openCurrent(): Promise<void> {
    const seq = this.seq;
    if (this.fh) {
      await this.fh.datasync();
      await this.fh.close();
      this.fh = undefined;
    }
    const fh = await open(join(this.dir, journalName(seq)), 'a');
    this.position = (await fh.stat()).size;
    this.fh = fh;
    this.fhSeq = seq;
  }

  private async flushLoop(): Promise<void> {
    // Let the changes of this turn of the event loop join the first write.
    await new Promise<void>((r) => setImmediate(r));
    try {
      while (this.pending.length > 0) {
        const bufs = this.pending;
        const waiters = this.waiters;
        this.pending = [];
        this.waiters = [];
        try {
          const fh = await this.ensureFile();
          // On the event loop: a few KiB into the page cache costs a few µs,
          // FileHandle.writev's thread-pool round trip several times that.
          this.position += writevAtSync(fh.fd, bufs, this.position);
          if (this.options.flushDiskType === 'SYNC_FLUSH') await fh.datasync();
          else this.dirtySinceSync = true;
          for (const w of waiters) w.resolve();
        } catch (err) {
          this.options.logger.error({ err }, 'consume-state journal write failed');
          for (const w of waiters) w.reject(err);
        }
        if (this.pending.length === 0 && this.position >= this.compactBytes && !this.compaction) {
          this.startCompaction();
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async syncNow(): Promise<void> {
    if (!this.dirtySinceSync || !this.fh) return;
    this.dirtySinceSync = false;
    try {
      await this.fh.datasync();
    } catch (err) {
      this.options.logger.error({ err }, 'consume-state journal sync failed');
    }
  }

  /** Synchronously captures memory and switches to a new journal; writes the snapshot in the background. */
  private startCompaction(): void {
    const snapshot = this.snapshot(this.seq + 1);
    const oldSeq = this.seq;
    this.seq++;
    this.compaction = (async () => {
      try {
        await this.ensureFile();
        await this.writeSnapshot(snapshot);
        for (let s = oldSeq; s >= 0; s--) {
          const path = join(this.dir, journalName(s));
          try {
            rmSync(path);
          } catch {
            break;
          }
        }
      } catch (err) {
        this.options.logger.error({ err }, 'consume-state compaction failed');
      } finally {
        this.compaction = undefined;
      }
    })();
  }

  /** Atomic: temp file, fdatasync, rename. Compact JSON (snapshots can hold many entries). */
  private async writeSnapshot(snapshot: SnapshotFile): Promise<void> {
    const path = join(this.dir, 'snapshot.json');
    const tmp = `${path}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(snapshot));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  }

  private snapshot(seq: number): SnapshotFile {
    const states: SnapshotState[] = [];
    for (const st of this.states.values()) {
      states.push({
        group: st.group,
        topic: st.topic,
        queueId: st.queueId,
        base: st.base,
        settled: st.settled.toArray(),
        inflight: [...st.inflight.values()].map((e) => [
          e.offset,
          e.physicalOffset,
          e.popTime,
          e.invisibleMs,
          e.attempt,
          e.messageGroup,
          (e.fifo ? 1 : 0) | (e.committing ? 2 : 0),
        ]),
      });
    }
    return { version: SNAPSHOT_VERSION, seq, states };
  }

  /** Resolves when everything written so far is durable. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.compaction) await this.compaction;
    if (this.fh) await this.fh.datasync();
    this.dirtySinceSync = false;
  }

  /**
   * Closes the journal without a snapshot, as a crash would leave it (the next
   * open replays the journal). For tools and tests.
   */
  async release(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.compaction) await this.compaction;
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.closed = true;
    await this.fh?.close();
    this.fh = undefined;
  }

  /** Writes a final snapshot (so the next start replays nothing) and closes. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.compaction) await this.compaction;
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.closed = true;
    const snapshot = this.snapshot(this.seq + 1);
    if (this.fh) {
      await this.fh.datasync();
      await this.fh.close();
      this.fh = undefined;
    }
    await this.writeSnapshot(snapshot);
    for (const name of readdirSync(this.dir)) {
      if (JOURNAL_PATTERN.test(name)) rmSync(join(this.dir, name), { force: true });
    }
  }
}

/** Sorted offsets → half-open runs. */
export function toRuns(offsets: readonly number[]): Array<[number, number]> {
  if (offsets.length === 0) return [];
  const sorted = offsets.length > 1 ? [...offsets].sort((a, b) => a - b) : offsets;
  const runs: Array<[number, number]> = [];
  let start = sorted[0]!;
  let end = start + 1;
  for (let i = 1; i < sorted.length; i++) {
    const o = sorted[i]!;
    if (o === end - 1) continue;
    if (o === end) {
      end++;
      continue;
    }
    runs.push([start, end]);
    start = o;
    end = o + 1;
  }
  runs.push([start, end]);
  return runs;
}

/**
 * Queue states by group, topic and queue id, in nested maps: a lookup (one
 * per receipt handle on the ack path) builds no composite key string.
 */
class StateTable {
  private readonly byGroup = new Map<string, Map<string, Map<number, QueueState>>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(group: string, topic: string, queueId: number): QueueState | undefined {
    return this.byGroup.get(group)?.get(topic)?.get(queueId);
  }

  set(st: QueueState): void {
    let topics = this.byGroup.get(st.group);
    if (!topics) {
      topics = new Map();
      this.byGroup.set(st.group, topics);
    }
    let queues = topics.get(st.topic);
    if (!queues) {
      queues = new Map();
      topics.set(st.topic, queues);
    }
    if (!queues.has(st.queueId)) this.count++;
    queues.set(st.queueId, st);
  }

  delete(group: string, topic: string, queueId: number): void {
    const topics = this.byGroup.get(group);
    const queues = topics?.get(topic);
    if (!queues?.delete(queueId)) return;
    this.count--;
    if (queues.size === 0) topics!.delete(topic);
    if (topics!.size === 0) this.byGroup.delete(group);
  }

  *values(): IterableIterator<QueueState> {
    for (const topics of this.byGroup.values()) {
      for (const queues of topics.values()) yield* queues.values();
    }
  }
}
