/**
 * One record of the consume-state journal (ConsumeStateStore). All integers
 * big-endian; offsets and epoch-ms times are float64, exact below 2^53.
 *
 *    0               4               8      9
 *    +---------------+---------------+------+-------------------------------+
 *    | size  uint32  | crc   uint32  | type | key | payload                 |
 *    +---------------+---------------+------+-------------------------------+
 *    size: bytes of the whole record, these fields included
 *    crc:  CRC32 (zlib.crc32) of bytes [8, size)
 *    key:  groupLen uint16 | group UTF-8 | topicLen uint16 | topic UTF-8 | queueId int32
 *
 *  type 1 PUT (entries handed out, or their invisible time / attempt changed):
 *    count uint32, then count ×
 *    | offset f64 | physicalOffset f64 | popTime f64 | invisibleMs uint32 |
 *    | attempt uint16 | flags uint8 (bit 0 = fifo, bit 1 = committing) | groupLen uint16 | messageGroup UTF-8 |
 *  type 2 SETTLE (offsets settled: acked, revived, filtered, delivered …):
 *    count uint32, then count × | start f64 | end f64 |   (half-open [start, end))
 *  type 3 RESET (state (re)created at an offset; forgets earlier entries; base -1 = dropped):
 *    | base f64 |
 *
 * A record that does not validate ends the journal (a torn tail after a crash).
 */
import { crc32 } from 'node:zlib';
import type { InflightEntry } from './consume-state.js';

export const RecordType = { PUT: 1, SETTLE: 2, RESET: 3 } as const;
export type RecordTypeValue = (typeof RecordType)[keyof typeof RecordType];

export const HEADER_BYTES = 9;
/** Records larger than this are refused when read back (guards against garbage sizes). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
const PUT_ENTRY_FIXED_BYTES = 8 + 8 + 8 + 4 + 2 + 1 + 2;
const FLAG_FIFO = 0x1;
/** Transactions: the commit of this half is journalled (see InflightEntry.committing). */
const FLAG_COMMITTING = 0x2;

export interface StateKeyFields {
  group: string;
  topic: string;
  queueId: number;
}

export type PutEntry = InflightEntry;

export type StateRecord =
  | ({ type: typeof RecordType.PUT; entries: PutEntry[] } & StateKeyFields)
  | ({ type: typeof RecordType.SETTLE; runs: Array<[number, number]> } & StateKeyFields)
  | ({ type: typeof RecordType.RESET; base: number } & StateKeyFields);

function keyBytes(k: StateKeyFields): number {
  return 2 + Buffer.byteLength(k.group) + 2 + Buffer.byteLength(k.topic) + 4;
}

function writeKey(buf: Buffer, off: number, k: StateKeyFields): number {
  const g = buf.write(k.group, off + 2, 'utf8');
  buf.writeUInt16BE(g, off);
  off += 2 + g;
  const t = buf.write(k.topic, off + 2, 'utf8');
  buf.writeUInt16BE(t, off);
  off += 2 + t;
  buf.writeInt32BE(k.queueId, off);
  return off + 4;
}

/** Encodes a record; the buffer is the caller's. */
export function encodeStateRecord(r: StateRecord): Buffer {
  let size = HEADER_BYTES + keyBytes(r);
  switch (r.type) {
    case RecordType.PUT:
      size += 4;
      for (const e of r.entries) size += PUT_ENTRY_FIXED_BYTES + Buffer.byteLength(e.messageGroup);
      break;
    case RecordType.SETTLE:
      size += 4 + r.runs.length * 16;
      break;
    case RecordType.RESET:
      size += 8;
      break;
  }
  const buf = Buffer.allocUnsafe(size);
  buf.writeUInt32BE(size, 0);
  buf.writeUInt8(r.type, 8);
  let off = writeKey(buf, HEADER_BYTES, r);
  switch (r.type) {
    case RecordType.PUT:
      buf.writeUInt32BE(r.entries.length, off);
      off += 4;
      for (const e of r.entries) {
        buf.writeDoubleBE(e.offset, off);
        buf.writeDoubleBE(e.physicalOffset, off + 8);
        buf.writeDoubleBE(e.popTime, off + 16);
        buf.writeUInt32BE(e.invisibleMs, off + 24);
        buf.writeUInt16BE(Math.min(e.attempt, 0xffff), off + 28);
        buf.writeUInt8((e.fifo ? FLAG_FIFO : 0) | (e.committing ? FLAG_COMMITTING : 0), off + 30);
        const n = buf.write(e.messageGroup, off + 33, 'utf8');
        buf.writeUInt16BE(n, off + 31);
        off += PUT_ENTRY_FIXED_BYTES + n;
      }
      break;
    case RecordType.SETTLE:
      buf.writeUInt32BE(r.runs.length, off);
      off += 4;
      for (const [s, e] of r.runs) {
        buf.writeDoubleBE(s, off);
        buf.writeDoubleBE(e, off + 8);
        off += 16;
      }
      break;
    case RecordType.RESET:
      buf.writeDoubleBE(r.base, off);
      break;
  }
  buf.writeUInt32BE(crc32(buf.subarray(8)), 4);
  return buf;
}

/**
 * Checks the record at buf[off…]: undefined when it is whole and its CRC
 * matches, else why not (the caller stops reading there).
 */
export function validateStateRecord(buf: Buffer, off: number): string | undefined {
  const available = buf.length - off;
  if (available < HEADER_BYTES) return 'truncated header';
  const size = buf.readUInt32BE(off);
  if (size < HEADER_BYTES || size > MAX_RECORD_BYTES) return `bad size ${size}`;
  if (size > available) return 'truncated record';
  const type = buf.readUInt8(off + 8);
  if (type < RecordType.PUT || type > RecordType.RESET) return `bad type ${type}`;
  if (crc32(buf.subarray(off + 8, off + size)) !== buf.readUInt32BE(off + 4)) return 'crc mismatch';
  return undefined;
}

/** Decodes a record that validateStateRecord accepted. */
export function decodeStateRecord(buf: Buffer, off: number): { record: StateRecord; size: number } {
  const size = buf.readUInt32BE(off);
  const type = buf.readUInt8(off + 8) as RecordTypeValue;
  let p = off + HEADER_BYTES;
  const gl = buf.readUInt16BE(p);
  const group = buf.toString('utf8', p + 2, p + 2 + gl);
  p += 2 + gl;
  const tl = buf.readUInt16BE(p);
  const topic = buf.toString('utf8', p + 2, p + 2 + tl);
  p += 2 + tl;
  const queueId = buf.readInt32BE(p);
  p += 4;
  const key = { group, topic, queueId };
  switch (type) {
    case RecordType.PUT: {
      const n = buf.readUInt32BE(p);
      p += 4;
      const entries: PutEntry[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const ml = buf.readUInt16BE(p + 31);
        const flags = buf.readUInt8(p + 30);
        entries[i] = {
          offset: buf.readDoubleBE(p),
          physicalOffset: buf.readDoubleBE(p + 8),
          popTime: buf.readDoubleBE(p + 16),
          invisibleMs: buf.readUInt32BE(p + 24),
          attempt: buf.readUInt16BE(p + 28),
          fifo: (flags & FLAG_FIFO) !== 0,
          messageGroup: buf.toString('utf8', p + 33, p + 33 + ml),
        };
        if ((flags & FLAG_COMMITTING) !== 0) entries[i]!.committing = true;
        p += PUT_ENTRY_FIXED_BYTES + ml;
      }
      return { record: { type, entries, ...key }, size };
    }
    case RecordType.SETTLE: {
      const n = buf.readUInt32BE(p);
      p += 4;
      const runs: Array<[number, number]> = new Array(n);
      for (let i = 0; i < n; i++) {
        runs[i] = [buf.readDoubleBE(p), buf.readDoubleBE(p + 8)];
        p += 16;
      }
      return { record: { type, runs, ...key }, size };
    }
    default:
      return { record: { type: RecordType.RESET, base: buf.readDoubleBE(p), ...key }, size };
  }
}
