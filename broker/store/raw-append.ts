/**
 * Replication, slave side: turning raw commitlog bytes from the master into
 * write jobs at the same offsets, and dispatching them once written.
 *
 * Raw data must be whole records (readRaw only answers whole records). Every
 * record is validated (structure, its physical-offset field, both CRCs, no
 * record crossing a segment end, blanks reaching exactly the segment end)
 * before anything is written: a bad chunk leaves the slave's log untouched.
 */
import { errors } from '../../common/errors.js';
import type { CommitLog, WriteJob } from './commitlog.js';
import {
  BLANK_MAGIC,
  BLANK_MIN_BYTES,
  newDispatchInfo,
  OFF_MAGIC,
  readDispatchInfo,
  readStoreTimestamp,
  validateBlank,
  validateRecord,
} from './commitlog-record.js';
import type { Dispatcher } from './dispatcher.js';

export interface RawPlan {
  jobs: WriteJob[];
  /** Store timestamp of the last record, 0 when only blanks. */
  lastStoreTimestamp: number;
}

/**
 * Validates `data` (to be written at physical `offset`) and answers one write
 * job per segment it touches; throws MESSAGE_CORRUPTED when a record is bad.
 */
export function planRawAppend(commitlog: CommitLog, offset: number, data: Buffer): RawPlan {
  const segmentSize = commitlog.segmentSize;
  const runs: Array<{
    from: number;
    to: number;
    firstTs: number;
    lastTs: number;
    /** Last message record of the run (size 0: only a blank). */
    lastOffset: number;
    lastSize: number;
  }> = [];
  let lastStoreTimestamp = 0;
  for (let p = 0; p < data.length; ) {
    const pos = offset + p;
    const segEnd = pos - (pos % segmentSize) + segmentSize;
    const left = data.length - p;
    if (left < BLANK_MIN_BYTES)
      throw errors.messageCorrupted(`appendRaw: partial record at ${pos}`);
    const size = data.readInt32BE(p);
    let problem: string | undefined;
    let ts = 0;
    const blank = data.readUInt32BE(p + OFF_MAGIC) === BLANK_MAGIC;
    if (blank) {
      problem = size > left ? 'partial blank record' : validateBlank(data, p, segEnd - pos);
    } else {
      problem = validateRecord(data, p, left, pos);
      if (!problem && pos + size + BLANK_MIN_BYTES > segEnd)
        problem = 'record crosses a segment end';
      if (!problem) ts = readStoreTimestamp(data, p);
    }
    if (problem) throw errors.messageCorrupted(`appendRaw: invalid record at ${pos}: ${problem}`);
    const run = runs.at(-1);
    if (run && run.to === pos && pos % segmentSize !== 0) {
      run.to = pos + size;
      if (ts) run.lastTs = ts;
      if (!blank) {
        run.lastOffset = pos;
        run.lastSize = size;
      }
    } else {
      runs.push({
        from: pos,
        to: pos + size,
        firstTs: ts,
        lastTs: ts,
        lastOffset: blank ? -1 : pos,
        lastSize: blank ? 0 : size,
      });
    }
    if (ts) lastStoreTimestamp = ts;
    p += size;
  }
  const jobs = runs.map((run): WriteJob => {
    const segment = commitlog.segmentForWrite(run.from);
    if (segment.firstStoreTimestamp === 0 && run.from === segment.start) {
      segment.firstStoreTimestamp = run.firstTs;
    }
    return {
      segment,
      position: run.from,
      batchStart: offset,
      bufs: [data.subarray(run.from - offset, run.to - offset)],
      bytes: run.to - run.from,
      region: undefined,
      lastStoreTimestamp: run.lastTs,
      lastRecordOffset: run.lastOffset,
      lastRecordSize: run.lastSize,
      done: undefined,
    };
  });
  return { jobs, lastStoreTimestamp };
}

/** Dispatches the records of raw data written at `offset` (after the write). */
export function dispatchRaw(
  dispatcher: Dispatcher,
  segmentSize: number,
  offset: number,
  data: Buffer,
): void {
  const info = newDispatchInfo();
  for (let p = 0; p < data.length; ) {
    const size = data.readInt32BE(p);
    if (data.readUInt32BE(p + OFF_MAGIC) === BLANK_MAGIC) {
      const pos = offset + p;
      dispatcher.skip(pos - (pos % segmentSize) + segmentSize);
    } else {
      readDispatchInfo(data, p, size, info);
      dispatcher.dispatch(
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
