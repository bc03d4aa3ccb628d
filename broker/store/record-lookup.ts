/**
 * Finds single records: at a physical offset, by key or client id (through the
 * index, hash matches re-checked on the record), or by offset message id
 * (decoded to a physical offset: no index). Lookups by key and id never answer
 * a record of a deleted topic (`deleted`, from the topic's tombstone), also
 * not when a topic of the same name has been created since.
 */
import type { Logger } from '../../common/logger.js';
import type { CommitLog } from './commitlog.js';
import { decodeRecord, MESSAGE_MAGIC, OFF_MAGIC, validateRecord } from './commitlog-record.js';
import type { IndexService } from './index-service.js';
import { decodeOffsetMessageId } from './message-id.js';
import type { StoredRecord } from './store-api.js';

/** First guess at a record's size for readAt (re-read when bigger). */
const READ_AT_GUESS_BYTES = 4096;

export class RecordLookup {
  constructor(
    private readonly commitlog: CommitLog,
    private readonly index: IndexService,
    private readonly logger: Logger,
    /** Whether a record belongs to a deleted generation of its topic. */
    private readonly deleted: (r: StoredRecord) => boolean = () => false,
  ) {}

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
        !this.deleted(r) &&
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
        (topic === undefined || r.topic === topic) &&
        !this.deleted(r)
      )
        return r;
    }
    if (topic === undefined) return undefined;
    const candidates = await this.index.lookup(topic, messageId, 16, 0, Number.MAX_SAFE_INTEGER);
    for (const phy of candidates) {
      const r = await this.readAt(phy);
      if (r && r.topic === topic && r.messageId === messageId && !this.deleted(r)) return r;
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
        if (size > this.commitlog.segmentSize) return undefined;
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
}
