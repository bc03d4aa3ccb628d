/**
 * Commitlog recovery: one scan that re-validates what may be damaged and
 * re-dispatches what consume queues and index lack.
 *
 * Clean start (no abort file): the files were flushed and closed; the log ends
 * where the last segment's bytes end. Only records the consume queues or index
 * lack (e.g. their directories were deleted) are scanned, to re-dispatch them.
 *
 * Abnormal start: bytes past the checkpoint's flushed offset may be torn or
 * corrupt. Every record from that safe point (or, without a usable checkpoint,
 * from the start of the last three segments, as RocketMQ does) is re-validated:
 * structure, its physical-offset field, body CRC and record CRC. The log is cut
 * at the first invalid record there, and the cut is logged with its offset.
 * Bytes before the safe point were flushed: a bad record there in an older
 * segment is logged and the rest of its segment skipped; in the last segment
 * (where appends continue) the log is cut there too. A torn or zero-filled
 * record exactly at the checkpoint offset is where the flushed log ended (the
 * cut); only non-record bytes or a record naming another offset there make the
 * checkpoint suspect. Running it again finds the same end, so
 * recovering twice gives the same state.
 *
 * The scan reads 4 MiB chunks with positioned reads, the next chunk in flight
 * while the current one is parsed; a record cut by a chunk boundary is carried
 * over to the next buffer.
 */
import type { Logger } from '../../common/logger.js';
import type { CommitLog } from './commitlog.js';
import {
  BLANK_MAGIC,
  BLANK_MIN_BYTES,
  MESSAGE_MAGIC,
  OFF_MAGIC,
  OFF_PHYSICAL_OFFSET,
  readInt64,
  validateBlank,
  validateRecord,
} from './commitlog-record.js';
import type { CommitLogSegment } from './commitlog-segment.js';

/** Bytes read per positioned read while scanning. */
export const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;
/** Room before each chunk for a record cut by the previous chunk's end. */
const SCAN_CARRY_BYTES = 4 * 1024 * 1024 + 64 * 1024;
/** Without a checkpoint, validation starts this many segments before the last one's end. */
export const RECOVER_LAST_SEGMENTS = 3;

/**
 * What kind of bad bytes a scan stopped at:
 *  - torn: a record or blank that runs past the bytes written, or zero bytes
 *    where a record should start (a write that did not fully reach the disk);
 *  - magic: non-zero bytes that are not a record start;
 *  - offset: a record whose physical-offset field names another position;
 *  - corrupt: a record start whose lengths or CRCs do not check out.
 */
export type ScanProblemKind = 'torn' | 'magic' | 'offset' | 'corrupt';

export interface ScanProblem {
  offset: number;
  kind: ScanProblemKind;
  reason: string;
}

export interface ScanResult {
  /** Offset just past the last valid record (or blank) seen. */
  end: number;
  records: number;
  problem: ScanProblem | undefined;
}

export interface ScanOptions {
  /** Records at or past this offset get both CRCs checked (structure is always checked). */
  verifyFrom: number;
  /** Stop here (default: end of the files). */
  until?: number;
  /** Called for each valid message record; buf[off…off+size) is the record, valid only during the call. */
  onRecord?: (buf: Buffer, off: number, size: number, physicalOffset: number) => void;
  /** Called for each blank record (with the segment end it reaches). */
  onBlank?: (segmentEnd: number) => void;
  /** Awaited after each chunk (lets callers write out what the records produced). */
  afterChunk?: () => Promise<void>;
}

interface Chunk {
  buf: Buffer;
  /** Index in buf of the first valid byte. */
  at: number;
  /** Valid bytes from `at`. */
  len: number;
  /** Physical offset of buf[at]. */
  pos: number;
}

/**
 * Scans records from `from` (a record boundary) forward, stopping at the end
 * of the files, at `until`, or at the first record that is not valid.
 */
export async function scanCommitLog(
  commitlog: CommitLog,
  from: number,
  options: ScanOptions,
): Promise<ScanResult> {
  const until = Math.min(options.until ?? Number.POSITIVE_INFINITY, commitlog.fileEnd);
  let records = 0;
  const fail = (offset: number, kind: ScanProblemKind, reason: string): ScanResult => ({
    end: offset,
    records,
    problem: { offset, kind, reason },
  });
  /** Kind of a record validateRecord refused: its own offset field says whether it is a record start here. */
  const recordKind = (buf: Buffer, at: number, here: number): ScanProblemKind =>
    readInt64(buf, at + OFF_PHYSICAL_OFFSET) === here ? 'corrupt' : 'offset';
  let spare = Buffer.allocUnsafe(SCAN_CARRY_BYTES + SCAN_CHUNK_BYTES);
  let current = Buffer.allocUnsafe(SCAN_CARRY_BYTES + SCAN_CHUNK_BYTES);
  const readChunk = (seg: CommitLogSegment, buf: Buffer, pos: number, dataEnd: number) =>
    seg.read(buf, SCAN_CARRY_BYTES, Math.min(SCAN_CHUNK_BYTES, dataEnd - pos), pos - seg.start);

  let pos = from;
  segments: while (pos < until) {
    const seg = commitlog.segmentFor(pos);
    if (!seg) return fail(pos, 'corrupt', 'no segment holds this offset');
    const dataEnd = seg.start + seg.length;
    if (pos >= dataEnd) {
      // The segment's bytes end here without a blank record: only the last segment may.
      if (seg === commitlog.segments.at(-1)) break;
      return fail(pos, 'torn', 'segment ends without a blank record');
    }
    const first = await readChunk(seg, current, pos, dataEnd);
    if (first === 0) return fail(pos, 'torn', 'read past the end of the file');
    let chunk: Chunk = { buf: current, at: SCAN_CARRY_BYTES, len: first, pos };
    for (;;) {
      const nextPos = chunk.pos + chunk.len;
      const next = nextPos < dataEnd ? readChunk(seg, spare, nextPos, dataEnd) : undefined;
      // Parse whole records of this chunk.
      const buf = chunk.buf;
      const limit = chunk.at + chunk.len;
      let p = chunk.at;
      while (p < limit) {
        const here = chunk.pos + (p - chunk.at);
        if (here >= until) {
          await next;
          return { end: here, records, problem: undefined };
        }
        const left = limit - p;
        if (left < BLANK_MIN_BYTES) break;
        const size = buf.readInt32BE(p);
        const magic = buf.readUInt32BE(p + OFF_MAGIC);
        if (magic === BLANK_MAGIC) {
          await next;
          const problem = validateBlank(buf, p, seg.end - here);
          if (problem) return fail(here, 'corrupt', problem);
          if (dataEnd < seg.end) return fail(here, 'torn', 'torn: blank record not fully written');
          options.onBlank?.(seg.end);
          pos = seg.end;
          if (options.afterChunk) await options.afterChunk();
          continue segments;
        }
        if (magic !== MESSAGE_MAGIC) {
          await next;
          return size === 0 && magic === 0
            ? fail(here, 'torn', 'zero bytes (torn write)')
            : fail(here, 'magic', 'bad magic');
        }
        if (size > left) {
          if (
            size < BLANK_MIN_BYTES ||
            here + size > dataEnd ||
            size + BLANK_MIN_BYTES > seg.capacity
          ) {
            await next;
            return fail(here, 'torn', `torn: record of ${size} bytes, ${dataEnd - here} written`);
          }
          if (size > SCAN_CARRY_BYTES) {
            // Bigger than any carry-over: read it on its own, then restart the pipeline after it.
            await next;
            const whole = Buffer.allocUnsafe(size);
            if ((await seg.read(whole, 0, size, here - seg.start)) < size) {
              return fail(here, 'torn', 'torn: record not fully written');
            }
            const problem = validateRecord(whole, 0, size, here, here >= options.verifyFrom);
            if (problem) return fail(here, recordKind(whole, 0, here), problem);
            options.onRecord?.(whole, 0, size, here);
            records++;
            pos = here + size;
            continue segments;
          }
          break; // carried over to the next chunk
        }
        const problem = validateRecord(buf, p, left, here, here >= options.verifyFrom);
        if (problem) {
          await next;
          return fail(here, recordKind(buf, p, here), problem);
        }
        options.onRecord?.(buf, p, size, here);
        records++;
        p += size;
      }
      const carry = limit - p;
      const carryPos = chunk.pos + (p - chunk.at);
      if (options.afterChunk) await options.afterChunk();
      if (!next) {
        if (carry > 0)
          return fail(carryPos, 'torn', `torn: ${carry} bytes of a record at the end of the data`);
        pos = carryPos;
        continue segments;
      }
      const n = await next;
      if (n === 0) return fail(nextPos, 'torn', 'read past the end of the file');
      // The new data is in `spare`; the partial record goes right before it, then swap.
      buf.copy(spare, SCAN_CARRY_BYTES - carry, p, limit);
      const filled = spare;
      spare = current;
      current = filled;
      chunk = { buf: current, at: SCAN_CARRY_BYTES - carry, len: carry + n, pos: carryPos };
    }
  }
  return { end: Math.min(pos, until), records, problem: undefined };
}

export interface RecoverOptions {
  abnormal: boolean;
  /** The checkpoint's flushed offset, if a checkpoint was read. */
  checkpointOffset: number | undefined;
  /** Where consume queues / index need records re-dispatched from (the end when nothing lags). */
  dispatchFrom: number;
  onRecord: NonNullable<ScanOptions['onRecord']>;
  onBlank: NonNullable<ScanOptions['onBlank']>;
  afterChunk: NonNullable<ScanOptions['afterChunk']>;
  logger: Logger;
}

export interface CommitLogRecovery {
  /** Valid end of the log. */
  end: number;
  /** Where CRC re-validation started (the end when nothing was validated). */
  validatedFrom: number;
  /** Where the scan started. */
  scannedFrom: number;
  truncatedBytes: number;
  records: number;
}

/**
 * Decides the valid end of the log, cuts what lies past it, and passes every
 * record from min(safe point, dispatchFrom) to `onRecord` in one scan.
 */
export async function recoverCommitLog(
  commitlog: CommitLog,
  options: RecoverOptions,
): Promise<CommitLogRecovery> {
  const { logger } = options;
  const fileEnd = commitlog.fileEnd;
  const segs = commitlog.segments;
  let verifyFrom = fileEnd;
  let fallback = fileEnd;
  if (options.abnormal && segs.length > 0) {
    fallback = segs[Math.max(0, segs.length - RECOVER_LAST_SEGMENTS)]!.start;
    const cp = options.checkpointOffset;
    verifyFrom = cp !== undefined && cp >= commitlog.minOffset && cp <= fileEnd ? cp : fallback;
  }
  let start = Math.max(commitlog.minOffset, Math.min(verifyFrom, options.dispatchFrom));
  const scannedFrom = start;
  let records = 0;
  let end = fileEnd;
  while (start < fileEnd) {
    const result = await scanCommitLog(commitlog, start, {
      verifyFrom,
      onRecord: options.onRecord,
      onBlank: options.onBlank,
      afterChunk: options.afterChunk,
    });
    records += result.records;
    const problem = result.problem;
    if (!problem) {
      end = result.end;
      break;
    }
    if (
      problem.offset === verifyFrom &&
      (problem.kind === 'magic' || problem.kind === 'offset') &&
      fallback < verifyFrom
    ) {
      // The checkpoint's offset is not a record start here: distrust it. (Torn or
      // zero bytes there are just where the flushed log ended: the cut, below.)
      logger.warn(
        { checkpoint: verifyFrom, fallback },
        'recovery: checkpoint offset is not a valid record; validating from an earlier segment',
      );
      verifyFrom = fallback;
      start = Math.min(start, fallback);
      continue;
    }
    const seg = commitlog.segmentFor(problem.offset);
    if (problem.offset < verifyFrom && seg && seg !== segs.at(-1)) {
      // Flushed bytes in an older segment: do not cut the log there (later segments
      // hold acknowledged records); skip the rest of that segment.
      logger.error(
        { offset: problem.offset, reason: problem.reason },
        'recovery: unreadable record before the checkpoint; skipping to the next segment',
      );
      start = seg.end;
      continue;
    }
    // Past the checkpoint, or in the segment new appends go to: cut here, so the
    // log ends with whole records and nothing is ever appended after garbage.
    end = problem.offset;
    logger.warn(
      { offset: end, reason: problem.reason, truncatedBytes: fileEnd - end },
      `recovery: commitlog truncated at offset ${end}: ${problem.reason}`,
    );
    break;
  }
  if (end < fileEnd) await commitlog.truncateTo(end);
  return {
    end,
    validatedFrom: Math.min(verifyFrom, end),
    scannedFrom,
    truncatedBytes: fileEnd - end,
    records,
  };
}
