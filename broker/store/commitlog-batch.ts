/**
 * Lays a batch of messages out in the commitlog and encodes it: assigns each
 * record its physical offset (a record never spans segments: when the next one
 * does not fit, a blank record pads the segment and the record starts the next
 * one), its queue offset, and encodes each segment-run into ONE buffer taken
 * from the encode ring, ready for one write.
 *
 * Runs synchronously, so batches are laid out in call order and queue offsets
 * are gap-free. Everything that can fail (validation) happens before any
 * offset is assigned.
 */
import { errors } from '../../common/errors.js';
import { offsetMessageIdWithPrefix } from '../../common/offset-message-id.js';
import type { CommitLog, WriteJob } from './commitlog.js';
import {
  BLANK_MIN_BYTES,
  MAX_PROPERTIES_BYTES,
  MAX_TOPIC_BYTES,
  measureProperties,
  recordHeaderBytes,
  recordSize,
  writeBlank,
  writeRecord,
} from './commitlog-record.js';
import { type EncodedAddress, encodeAddress } from './socket-address.js';
import { type AppendResult, type MessageInput, SysFlag } from './store-api.js';

export interface BatchEncoder {
  storeAddress: EncodedAddress;
  offsetIdPrefix: string;
  maxMessageSize: number;
  /** Next queue offset of topic/queue, consumed (called once per dispatched-type record, in order). */
  assignQueueOffset(topic: string, queueId: number): number;
}

export interface EncodedBatch {
  results: AppendResult[];
  /** One job per segment-run, in offset order. */
  jobs: WriteJob[];
  /** Physical offset just past the batch (padding included). */
  end: number;
}

/**
 * Bodies at least this big are not copied into the encode buffer: the write
 * takes them straight from the caller's buffer (see writeRecord).
 */
export const ZERO_COPY_BODY_BYTES = 4096;

interface Run {
  start: number;
  first: number;
  last: number;
  /** Bytes in the log (records of this run). */
  bytes: number;
  /** Bytes in the encode buffer (records minus bodies written in place). */
  encodedBytes: number;
  padding: number;
}

// Scratch space reused by every batch (encoding is synchronous, never re-entered).
let scratchPropBytes: number[] = [];
let scratchSizes: number[] = [];
let scratchBorn: EncodedAddress[] = [];
let scratchPositions: number[] = [];
let scratchTopics: Buffer[] = [];
const topicCache = new Map<string, Buffer>();
const PATH_CHARACTERS = /[/\\\0]/;

/** UTF-8 bytes of a topic (cached: few topics, many messages); checks it can name a directory. */
function topicBytesOf(topic: string): Buffer {
  let b = topicCache.get(topic);
  if (b === undefined) {
    if (typeof topic !== 'string' || topic.length === 0) {
      throw errors.illegalTopic(String(topic), 'must not be empty');
    }
    if (topic === '.' || topic === '..' || PATH_CHARACTERS.test(topic)) {
      throw errors.illegalTopic(topic, 'must not contain path characters');
    }
    b = Buffer.from(topic, 'utf8');
    if (b.length > MAX_TOPIC_BYTES) {
      throw errors.illegalTopic(topic, `longer than ${MAX_TOPIC_BYTES} bytes`);
    }
    if (topicCache.size > 65536) topicCache.clear();
    topicCache.set(topic, b);
  }
  return b;
}

function grow(n: number): void {
  if (scratchSizes.length >= n) return;
  scratchPropBytes = new Array(n).fill(0);
  scratchSizes = new Array(n).fill(0);
  scratchBorn = new Array(n);
  scratchPositions = new Array(n).fill(0);
  scratchTopics = new Array(n);
}

/** Throws the error a caller must see for an invalid message (before anything is assigned). */
function validate(m: MessageInput, maxMessageSize: number): void {
  if (!Number.isInteger(m.queueId) || m.queueId < 0 || m.queueId > 0x7fffffff) {
    throw errors.badRequest(`queueId ${m.queueId} is not a queue id`, { queueId: m.queueId });
  }
  if (!Buffer.isBuffer(m.body)) throw errors.badRequest('message body must be a Buffer');
  if (m.body.length > maxMessageSize) throw errors.bodyTooLarge(m.body.length, maxMessageSize);
}

/**
 * Encodes `messages` at the end of the log (commitlog.reservedOffset, which it
 * advances) and answers the results and write jobs. Throws (assigning nothing)
 * when a message is invalid.
 */
export function encodeBatch(
  commitlog: CommitLog,
  encoder: BatchEncoder,
  messages: readonly MessageInput[],
  storeTimestamp: number,
): EncodedBatch {
  const n = messages.length;
  grow(n);
  const segmentSize = commitlog.segmentSize;
  const store = encoder.storeAddress;
  // 1. Measure and validate.
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    validate(m, encoder.maxMessageSize);
    const topic = topicBytesOf(m.topic);
    const propBytes = measureProperties(m);
    if (propBytes > MAX_PROPERTIES_BYTES) {
      throw errors.propertiesTooLarge(propBytes, MAX_PROPERTIES_BYTES);
    }
    const born = encodeAddress(m.bornHost);
    const size = recordSize(m.body.length, topic.length, propBytes, born.v6, store.v6);
    if (size + BLANK_MIN_BYTES > segmentSize) {
      throw errors.bodyTooLarge(
        m.body.length,
        segmentSize - BLANK_MIN_BYTES - (size - m.body.length),
      );
    }
    scratchTopics[i] = topic;
    scratchPropBytes[i] = propBytes;
    scratchSizes[i] = size;
    scratchBorn[i] = born;
  }
  // 2. Lay out: positions, segment-runs, padding.
  const batchStart = commitlog.reservedOffset;
  let pos = batchStart;
  let segEnd = pos - (pos % segmentSize) + segmentSize;
  let runStart = pos;
  let runFirst = 0;
  let encoded = 0;
  const runs: Run[] = [];
  for (let i = 0; i < n; i++) {
    const size = scratchSizes[i]!;
    if (pos + size + BLANK_MIN_BYTES > segEnd) {
      runs.push({
        start: runStart,
        first: runFirst,
        last: i,
        bytes: pos - runStart,
        encodedBytes: encoded,
        padding: segEnd - pos,
      });
      pos = segEnd;
      segEnd += segmentSize;
      runStart = pos;
      runFirst = i;
      encoded = 0;
    }
    scratchPositions[i] = pos;
    pos += size;
    const bodyBytes = messages[i]!.body.length;
    encoded += bodyBytes >= ZERO_COPY_BODY_BYTES ? size - bodyBytes : size;
  }
  runs.push({
    start: runStart,
    first: runFirst,
    last: n,
    bytes: pos - runStart,
    encodedBytes: encoded,
    padding: 0,
  });
  // 3. Assign queue offsets and encode each run into one buffer.
  const results: AppendResult[] = new Array(n);
  const jobs: WriteJob[] = [];
  for (const run of runs) {
    const segment = commitlog.segmentForWrite(run.start);
    const bufs: Buffer[] = [];
    const region = run.encodedBytes > 0 ? commitlog.ring.take(run.encodedBytes) : undefined;
    if (region) {
      const buf = region.buf;
      const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
      let off = 0;
      /** Start of the encode-buffer piece not yet handed to bufs. */
      let piece = 0;
      for (let i = run.first; i < run.last; i++) {
        const m = messages[i]!;
        const size = scratchSizes[i]!;
        const physicalOffset = scratchPositions[i]!;
        const tx = (m.sysFlag ?? 0) & SysFlag.TRANSACTION_MASK;
        const queueOffset =
          tx === SysFlag.TRANSACTION_PREPARED || tx === SysFlag.TRANSACTION_ROLLBACK
            ? 0
            : encoder.assignQueueOffset(m.topic, m.queueId);
        const inline = m.body.length < ZERO_COPY_BODY_BYTES;
        const born = scratchBorn[i]!;
        const used = writeRecord(
          buf,
          dv,
          off,
          size,
          m,
          scratchPropBytes[i]!,
          scratchTopics[i]!,
          born,
          store,
          queueOffset,
          physicalOffset,
          storeTimestamp,
          inline,
        );
        if (!inline) {
          // header | caller's body | rest: three pieces of the same writev.
          const headerEnd = off + recordHeaderBytes(born.v6, store.v6);
          bufs.push(buf.subarray(piece, headerEnd), m.body);
          piece = headerEnd;
        }
        off += used;
        const offsetMessageId = offsetMessageIdWithPrefix(encoder.offsetIdPrefix, physicalOffset);
        results[i] = {
          messageId: m.messageId || offsetMessageId,
          offsetMessageId,
          physicalOffset,
          queueOffset,
          size,
          storeTimestamp,
        };
      }
      if (off > piece) bufs.push(piece === 0 ? buf : buf.subarray(piece, off));
    }
    if (run.padding > 0) {
      const blank = Buffer.alloc(run.padding);
      writeBlank(blank, 0, run.padding);
      bufs.push(blank);
    }
    if (segment.firstStoreTimestamp === 0 && run.start === segment.start && run.last > run.first) {
      segment.firstStoreTimestamp = storeTimestamp;
    }
    jobs.push({
      segment,
      position: run.start,
      batchStart,
      bufs,
      bytes: run.bytes + run.padding,
      region,
      lastStoreTimestamp: run.last > run.first ? storeTimestamp : 0,
      lastRecordOffset: run.last > run.first ? scratchPositions[run.last - 1]! : -1,
      lastRecordSize: run.last > run.first ? scratchSizes[run.last - 1]! : 0,
      done: undefined,
    });
  }
  commitlog.reservedOffset = pos;
  return { results, jobs, end: pos };
}
