/**
 * The message store API the messaging layer builds on. One append-only
 * commitlog for every topic, per-queue consume queues built from it by a
 * dispatcher, and an index for keys and message ids (DESIGN.md §4).
 *
 * Offsets: a *physical offset* is a byte position in the commitlog; a *queue
 * offset* counts messages within one topic/queue (0, 1, 2 …). Timestamps are
 * epoch milliseconds.
 */

import type { TopicTombstone } from './topic-tombstones.js';

export type { TopicTombstone };

export type FlushDiskType = 'ASYNC_FLUSH' | 'SYNC_FLUSH';

/**
 * sysFlag bits of a record (RocketMQ's values).
 *
 * As in RocketMQ's dispatcher, a record whose transaction bits are PREPARED or
 * ROLLBACK is stored (and indexed by key/id, PREPARED only) but is NOT put into
 * its consume queue: it takes no queue offset (its AppendResult.queueOffset is
 * 0), emits no dispatch event and is found only by physical offset (readAt) or
 * lookups. Half messages that must be scanned through a queue are stored with
 * the transaction bits cleared (RocketMQ keeps them in RMQ_SYS_TRANS_HALF_TOPIC
 * that way).
 */
export const SysFlag = {
  /** Half message of a transaction, not yet decided. */
  TRANSACTION_PREPARED: 0x1 << 2,
  TRANSACTION_COMMIT: 0x2 << 2,
  TRANSACTION_ROLLBACK: 0x3 << 2,
  /** Mask of the transaction bits. */
  TRANSACTION_MASK: 0x3 << 2,
  /** Set by the store when the born host is IPv6 (the record then holds 16 address bytes). */
  BORNHOST_V6: 0x1 << 4,
  /** Set by the store when the store host is IPv6. */
  STOREHOST_V6: 0x1 << 5,
} as const;

/** A message to append. The caller has chosen the queue. */
export interface MessageInput {
  topic: string;
  queueId: number;
  /**
   * The store may write large bodies straight from this buffer (no copy): do
   * not modify it until appendBatch settles.
   */
  body: Buffer;
  /** One tag; '' when none. Its hash goes into the consume queue entry. */
  tag: string;
  keys: readonly string[];
  /** User and system properties; stored as `k\u0001v\u0002` pairs. */
  properties: Readonly<Record<string, string>>;
  /** Client-unique id (UNIQ_KEY). */
  messageId: string;
  flag?: number;
  sysFlag?: number;
  bornTimestamp: number;
  /** "ip:port" */
  bornHost: string;
  reconsumeTimes?: number;
  preparedTransactionOffset?: number;
  /**
   * Overrides the tag hash written to the consume queue (the timer keeps the
   * delivery time there). Default: tagHash(tag).
   */
  tagsCode?: bigint;
}

export interface AppendResult {
  messageId: string;
  /** Store host + physical offset, hex; a lookup by it needs no index. */
  offsetMessageId: string;
  physicalOffset: number;
  queueOffset: number;
  /** Record size in bytes. */
  size: number;
  storeTimestamp: number;
}

/** A record read back from the commitlog. `body` is a copy the caller owns. */
export interface StoredRecord {
  topic: string;
  queueId: number;
  queueOffset: number;
  physicalOffset: number;
  size: number;
  body: Buffer;
  bodyCrc: number;
  tag: string;
  keys: string[];
  properties: Record<string, string>;
  messageId: string;
  offsetMessageId: string;
  flag: number;
  sysFlag: number;
  bornTimestamp: number;
  bornHost: string;
  storeTimestamp: number;
  storeHost: string;
  reconsumeTimes: number;
  preparedTransactionOffset: number;
  /** The consume queue's tag code when MessageInput.tagsCode overrode it; absent otherwise. */
  tagsCode?: bigint;
}

/** Tag filter: null or `*` means all. Matched by hash, then re-checked on the string. */
export interface TagFilter {
  tags: ReadonlySet<string>;
}

export interface ReadResult {
  records: StoredRecord[];
  /** Queue offset to read from next (past filtered-out entries too). */
  nextOffset: number;
  minOffset: number;
  maxOffset: number;
}

/** One consume queue entry, without its record (see MessageStore.readQueueEntries). */
export interface QueueEntry {
  queueOffset: number;
  physicalOffset: number;
  size: number;
  /** The entry's tag code: the tag hash, or MessageInput.tagsCode (the timer's due time). */
  tagsCode: bigint;
}

export interface QueueEntriesResult {
  /** Entries in queue-offset order; holes and entries below the commitlog's min offset are left out. */
  entries: QueueEntry[];
  /** Queue offset to read from next. */
  nextOffset: number;
  minOffset: number;
  maxOffset: number;
}

/** Emitted after a record is in its consume queue (used to wake long polls). */
export interface DispatchEvent {
  topic: string;
  queueId: number;
  queueOffset: number;
  physicalOffset: number;
  tagsCode: bigint;
  storeTimestamp: number;
}

export interface StoreStats {
  minPhysicalOffset: number;
  maxPhysicalOffset: number;
  /** Bytes known durable on disk. */
  flushedPhysicalOffset: number;
  commitlogSegments: number;
  diskUsedRatio: number;
  topics: number;
  /** Bytes written to the segment files (page cache), >= flushedPhysicalOffset. */
  writtenPhysicalOffset?: number;
  /** End of the last record in the consume queues and index. */
  dispatchedPhysicalOffset?: number;
  /** fdatasync calls on commitlog segments since start (group commit shares them). */
  commitlogSyncs?: number;
  /** What the last start() found and did. */
  recovery?: RecoveryReport;
}

/** What start() found and did. */
export interface RecoveryReport {
  /** True when the abort file was present (the last run did not close cleanly). */
  abnormal: boolean;
  /** Physical offset the CRC re-validation started from. */
  validatedFrom: number;
  /** Physical offset the rebuild of consume queues / index started from. */
  dispatchedFrom: number;
  /** Bytes cut from the commitlog tail (torn or corrupt records); 0 when none. */
  truncatedBytes: number;
  /** Commitlog end after recovery. */
  maxPhysicalOffset: number;
  /** Records re-validated or re-dispatched. */
  scannedRecords: number;
  durationMs: number;
}

/** What one retention pass did. */
export interface RetentionReport {
  /** Commitlog segments deleted in this pass. */
  deletedSegments: number;
  /** Consume queue and index files deleted with them. */
  deletedQueueFiles: number;
  deletedIndexFiles: number;
  minPhysicalOffset: number;
  /** Disk use (0..1) measured at the start of the pass. */
  diskUsedRatio: number;
  /** Why segments were eligible: age at the deleteWhen hour, or disk pressure. */
  trigger: 'none' | 'expired' | 'disk';
}

/** Where a commitlog record is, and the CRC32 (zlib) of its bytes, header included. */
export interface RecordRef {
  offset: number;
  size: number;
  crc: number;
}

export interface MessageStore {
  /** Opens files and recovers (after an abnormal stop: CRC re-validation, truncation, rebuild). */
  start(): Promise<void>;
  /** Flushes everything, writes the checkpoint and removes the abort file. */
  close(): Promise<void>;

  /**
   * Appends a batch with one write. Resolves once the batch is durable per the
   * flush mode (SYNC_FLUSH: after an fdatasync covers it, shared with
   * concurrent appends; rejects with FLUSH_DISK_TIMEOUT after syncFlushTimeout).
   * Rejects with a disk-full error past 90% disk use. `onWritten` (for
   * traces) is called once the batch is written, before any flush wait.
   */
  appendBatch(messages: readonly MessageInput[], onWritten?: () => void): Promise<AppendResult[]>;

  /**
   * Reads up to maxCount records of topic/queue starting at a queue offset.
   * An offset below minOffset is read from minOffset (the consumer is moved
   * forward, not failed); one above maxOffset answers no records and
   * nextOffset = maxOffset. With a filter, at most a few thousand consume
   * queue entries are scanned per call; nextOffset says where to continue.
   */
  read(
    topic: string,
    queueId: number,
    offset: number,
    maxCount: number,
    filter?: TagFilter | null,
  ): Promise<ReadResult>;
  /**
   * Reads up to maxCount consume queue entries from a queue offset without
   * reading their records (20 bytes each: cheap enough to scan a whole queue).
   * Offsets below minOffset are read from minOffset.
   */
  readQueueEntries(
    topic: string,
    queueId: number,
    offset: number,
    maxCount: number,
  ): Promise<QueueEntriesResult>;
  minOffset(topic: string, queueId: number): number;
  /** One past the last queue offset (the next to be written). */
  maxOffset(topic: string, queueId: number): number;
  /** Queue ids that exist for a topic in the consume queues. */
  queueIds(topic: string): number[];
  /** Store timestamp of the record at a queue offset, or undefined. */
  storeTimestampAt(topic: string, queueId: number, offset: number): Promise<number | undefined>;
  /** First queue offset whose store timestamp is >= timestampMs (maxOffset if none). */
  offsetByTime(topic: string, queueId: number, timestampMs: number): Promise<number>;

  /**
   * Records whose KEYS contain key, newest first, at most max. Neither this
   * nor lookupById answers records of a deleted topic (or of a deleted
   * generation of a re-created one); readAt answers any record.
   */
  lookupByKey(
    topic: string,
    key: string,
    max: number,
    beginMs?: number,
    endMs?: number,
  ): Promise<StoredRecord[]>;
  /** A record by client message id (via index) or offset message id (no index). */
  lookupById(topic: string | undefined, messageId: string): Promise<StoredRecord | undefined>;
  /** The record starting at a physical offset. */
  readAt(physicalOffset: number): Promise<StoredRecord | undefined>;

  /**
   * Drops a topic's consume queues (records stay in the commitlog until
   * retention) and keeps a tombstone (topic-tombstones.ts): a topic re-created
   * with the same name continues each queue's offsets after the deleted
   * one's, and no rebuild from the commitlog puts the deleted records back.
   * The tombstones live in storePathRootDir/config/deletedTopics.json.
   */
  deleteTopic(topic: string): Promise<void>;
  /**
   * Slave side: merges a master's tombstones (its deletedTopics.json, as
   * metadata replication delivers it) and applies what is new to the consume
   * queues here, so they end up as the master's; answers how many changed.
   */
  applyDeletedTopics(tombstones: readonly TopicTombstone[]): Promise<number>;

  /**
   * Replication, master side: raw commitlog bytes from an offset (a record
   * boundary). Answers whole records only, never past the end of a segment, up
   * to maxBytes (but at least one whole record when one is there); empty when
   * nothing is past fromOffset.
   */
  readRaw(fromOffset: number, maxBytes: number): Promise<Buffer>;
  /**
   * Replication, slave side: writes raw bytes at exactly `offset` (== max offset) and dispatches them.
   * `data` must be whole records (readRaw only returns whole records); they are CRC-checked first.
   */
  appendRaw(offset: number, data: Buffer): Promise<void>;
  /**
   * End of the bytes written to the commitlog (page cache; see stats() for the
   * flushed offset). On a slave, the offset to ask the master for next.
   */
  maxPhysicalOffset(): number;
  /** First byte still kept (retention moves it to a segment start). */
  minPhysicalOffset(): number;
  /**
   * Replication, slave handshake: the log's last message record (not a
   * blank) as of maxPhysicalOffset(), with the CRC32 of its bytes; undefined
   * when the log holds none. The store keeps its place from recovery and
   * every append, so this reads that one record (a whole-segment scan only
   * when it is not known, e.g. right after a failed write was rolled back).
   */
  lastRecord(): Promise<RecordRef | undefined>;

  /** Subscribes to dispatch events; returns an unsubscribe function. */
  onDispatch(listener: (event: DispatchEvent) => void): () => void;
  stats(): StoreStats;

  /**
   * One retention pass now (production runs one every 10 s): deletes expired
   * commitlog segments at the deleteWhen hour, or the oldest ones while disk
   * use is above diskMaxUsedSpaceRatio; cleans consume queue and index files
   * with them and moves minimum offsets forward.
   */
  runRetention(): Promise<RetentionReport>;
  /** Makes everything written so far durable (commitlog, consume queues, index, checkpoint). */
  flush(): Promise<void>;
}
