/**
 * Commitlog recovery: scanning records from a known record boundary, and the
 * start-up decision of how much of the log is valid.
 *
 * Clean start (no abort file): the files were flushed and closed; the log ends
 * where the last segment's bytes end. Nothing is scanned.
 *
 * Abnormal start: bytes past the checkpoint's flushed offset may be torn or
 * corrupt. Every record from that safe point (or, without a usable checkpoint,
 * from the start of the last three segments, as RocketMQ does) is re-validated:
 * structure, its physical-offset field, body CRC and record CRC. The log is cut
 * at the first invalid record, and the cut is logged with its offset. Running
 * it again finds the same end, so recovering twice gives the same state.
 */
import { errors } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { CommitLog } from './commitlog.js';
import {
  BLANK_MAGIC,
  BLANK_MIN_BYTES,
  MESSAGE_MAGIC,
  OFF_MAGIC,
  validateBlank,
  validateRecord,
} from './commitlog-record.js';

/** Bytes read per positioned read while scanning. */
export const SCAN_CHUNK_BYTES = 8 * 1024 * 1024;
/** Without a checkpoint, validation starts this many segments before the last one's end. */
export const RECOVER_LAST_SEGMENTS = 3;

export interface ScanProblem {
  offset: number;
  reason: string;
}

export interface ScanResult {
  /** Offset just past the last valid record (or blank) seen. */
  end: number;
  records: number;
  problem: ScanProblem | undefined;
}

export interface ScanOptions {
  /** Check both CRCs (always checked: structure and the physical-offset field). */
  verifyCrc: boolean;
  /** Stop here (default: end of the files). */
  until?: number;
  /** Called for each valid message record; buf[off…off+size) is the record, valid only during the call. */
  onRecord?: (buf: Buffer, off: number, size: number, physicalOffset: number) => void;
  /** Called for each blank record (with the segment end it reaches). */
  onBlank?: (segmentEnd: number) => void;
  /** Awaited after each chunk (lets callers write out what the records produced). */
  afterChunk?: () => Promise<void>;
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
  let buf = Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
  let pos = from;
  let records = 0;
  const fail = (offset: number, reason: string): ScanResult => ({
    end: offset,
    records,
    problem: { offset, reason },
  });
  while (pos < until) {
    const seg = commitlog.segmentFor(pos);
    if (!seg) return fail(pos, 'no segment holds this offset');
    const dataEnd = seg.start + seg.length;
    if (pos >= dataEnd) {
      // The segment's bytes end here without a blank record: only the last segment may.
      if (seg === commitlog.segments.at(-1)) break;
      return fail(pos, 'segment ends without a blank record');
    }
    const want = Math.min(buf.length, dataEnd - pos);
    const n = await seg.read(buf, 0, want, pos - seg.start);
    let p = 0;
    let grew = false;
    while (p < n && pos + p < until) {
      const here = pos + p;
      const left = n - p;
      if (left < BLANK_MIN_BYTES) {
        if (here + left >= dataEnd) return fail(here, `torn: ${left} bytes left in the segment`);
        break; // refill from here
      }
      const size = buf.readInt32BE(p);
      const magic = buf.readUInt32BE(p + OFF_MAGIC);
      if (magic === BLANK_MAGIC) {
        const problem = validateBlank(buf, p, seg.end - here);
        if (problem) return fail(here, problem);
        if (dataEnd < seg.end) return fail(here, 'torn: blank record not fully written');
        options.onBlank?.(seg.end);
        p = seg.end - pos;
        break;
      }
      if (magic !== MESSAGE_MAGIC)
        return fail(here, size === 0 && magic === 0 ? 'zero bytes (torn write)' : 'bad magic');
      if (size > left) {
        if (size > 0 && here + size <= dataEnd && size + BLANK_MIN_BYTES <= seg.capacity) {
          if (size > buf.length) {
            buf = Buffer.allocUnsafe(size);
            grew = true;
          }
          break; // refill from here, the whole record fits in the next read
        }
        return fail(here, `torn: record of ${size} bytes, ${dataEnd - here} written`);
      }
      const problem = validateRecord(buf, p, left, here, options.verifyCrc);
      if (problem) return fail(here, problem);
      options.onRecord?.(buf, p, size, here);
      records++;
      p += size;
    }
    if (p === 0 && n > 0 && !grew)
      throw errors.internal(`commitlog scan made no progress at ${pos}`);
    if (n === 0) return fail(pos, 'read past the end of the file');
    pos += p;
    if (options.afterChunk) await options.afterChunk();
  }
  return { end: Math.min(pos, until), records, problem: undefined };
}

export interface CommitLogRecovery {
  /** Valid end of the log. */
  end: number;
  /** Where re-validation started (the end when nothing was validated). */
  validatedFrom: number;
  truncatedBytes: number;
  records: number;
}

/**
 * Decides the valid end of the log and cuts what lies past it. `safeOffset`
 * is the checkpoint's flushed offset, if one was read.
 */
export async function recoverCommitLog(
  commitlog: CommitLog,
  abnormal: boolean,
  safeOffset: number | undefined,
  logger: Logger,
): Promise<CommitLogRecovery> {
  const fileEnd = commitlog.fileEnd;
  if (!abnormal || commitlog.segments.length === 0) {
    return { end: fileEnd, validatedFrom: fileEnd, truncatedBytes: 0, records: 0 };
  }
  const segs = commitlog.segments;
  const fallback = segs[Math.max(0, segs.length - RECOVER_LAST_SEGMENTS)]!.start;
  let from =
    safeOffset !== undefined && safeOffset >= commitlog.minOffset && safeOffset <= fileEnd
      ? safeOffset
      : fallback;
  let result = await scanCommitLog(commitlog, from, { verifyCrc: true });
  if (result.problem && result.problem.offset === from && from !== fallback && from > fallback) {
    // The checkpoint's offset is not a record start here: distrust it.
    logger.warn(
      { checkpoint: from, fallback },
      'recovery: checkpoint offset is not a valid record; scanning from an earlier segment',
    );
    from = fallback;
    result = await scanCommitLog(commitlog, from, { verifyCrc: true });
  }
  const end = result.end;
  const truncatedBytes = fileEnd - end;
  if (result.problem) {
    logger.warn(
      { offset: end, reason: result.problem.reason, truncatedBytes },
      `recovery: commitlog truncated at offset ${end}: ${result.problem.reason}`,
    );
  }
  if (end < fileEnd || result.problem) await commitlog.truncateTo(end);
  return { end, validatedFrom: from, truncatedBytes, records: result.records };
}
