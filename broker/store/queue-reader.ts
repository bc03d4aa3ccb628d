/**
 * Reads by consume queue: records of a topic/queue from a queue offset (with
 * the tag filter), store timestamps by queue offset, and the queue offset for
 * a time.
 *
 * A read takes the entries from the consume queue (one positioned read, or
 * memory), keeps those that pass the tag hash, then reads their records with as
 * few positioned reads as possible: records close together in the commitlog
 * (one queue written in batches) share one read; spans are read in parallel.
 */
import type { Logger } from '../../common/logger.js';
import type { CommitLog } from './commitlog.js';
import {
  decodeRecord,
  MESSAGE_MAGIC,
  OFF_MAGIC,
  readStoreTimestamp,
  STORE_TIMESTAMP_PROBE_BYTES,
} from './commitlog-record.js';
import { CQ_ENTRY_SIZE_BYTES } from './consume-queue.js';
import type { ConsumeQueueTable } from './consume-queue-table.js';
import type {
  QueueEntriesResult,
  QueueEntry,
  ReadResult,
  StoredRecord,
  TagFilter,
} from './store-api.js';
import { tagHash } from './tag-hash.js';

/** Consume queue entries scanned per read() with a tag filter, at most. */
export const MAX_FILTER_SCAN_ENTRIES = 4096;
/** Consume queue entries scanned per read(), at most (bounds the entry buffer). */
export const MAX_READ_ENTRIES = 32_768;
/** Record bytes answered per read(), at most (at least one record is answered). */
export const MAX_READ_BYTES = 32 * 1024 * 1024;
/** Adjacent records closer than this are read with one positioned read. */
const READ_COALESCE_GAP_BYTES = 64 * 1024;
/** A coalesced read is at most this big (bigger spans are read in parallel pieces). */
const READ_SPAN_MAX_BYTES = 512 * 1024;
const TWO_32 = 4294967296;

interface SelectedEntry {
  queueOffset: number;
  physicalOffset: number;
  size: number;
}

export class QueueReader {
  constructor(
    private readonly commitlog: CommitLog,
    private readonly queues: ConsumeQueueTable,
    private readonly logger: Logger,
  ) {}

  /** See MessageStore.read. */
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

  /** See MessageStore.readQueueEntries. */
  async readEntries(
    topic: string,
    queueId: number,
    offset: number,
    maxCount: number,
  ): Promise<QueueEntriesResult> {
    const cq = this.queues.get(topic, queueId);
    if (!cq) return { entries: [], nextOffset: 0, minOffset: 0, maxOffset: 0 };
    const minOffset = cq.minOffset;
    const maxOffset = cq.maxOffset;
    if (offset < minOffset) offset = minOffset;
    const want = Math.min(maxOffset - offset, MAX_READ_ENTRIES, maxCount);
    if (want <= 0) {
      return { entries: [], nextOffset: Math.min(offset, maxOffset), minOffset, maxOffset };
    }
    const buf = Buffer.allocUnsafe(want * CQ_ENTRY_SIZE_BYTES);
    const got = await cq.readEntries(offset, want, buf);
    const minPhy = this.commitlog.minOffset;
    const entries: QueueEntry[] = [];
    for (let i = 0; i < got; i++) {
      const o = i * CQ_ENTRY_SIZE_BYTES;
      const size = buf.readInt32BE(o + 8);
      const physicalOffset = buf.readInt32BE(o) * TWO_32 + buf.readUInt32BE(o + 4);
      if (size <= 0 || physicalOffset < minPhy) continue; // a hole, or removed by retention
      entries.push({
        queueOffset: offset + i,
        physicalOffset,
        size,
        tagsCode: buf.readBigInt64BE(o + 12),
      });
    }
    return { entries, nextOffset: offset + got, minOffset: cq.minOffset, maxOffset: cq.maxOffset };
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
          const record = this.decodeChecked(buf, at, e.size, e.physicalOffset, topic);
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
    topic: string,
  ): StoredRecord | undefined {
    if (buf.readUInt32BE(at + OFF_MAGIC) !== MESSAGE_MAGIC || buf.readInt32BE(at) !== size) {
      this.logger.warn(
        { physicalOffset },
        'read: no record where the consume queue points; skipped',
      );
      return undefined;
    }
    try {
      return decodeRecord(buf, at, size, topic);
    } catch (err) {
      this.logger.warn({ err, physicalOffset }, 'read: corrupt record skipped');
      return undefined;
    }
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
}
