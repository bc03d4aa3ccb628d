/**
 * A commitlog record: encode, decode and validate (separately), and the blank
 * record that pads the unused tail of a full segment.
 *
 * Message record, big-endian. Offsets are for IPv4 hosts; an IPv6 born or
 * store host takes 20 bytes instead of 8 (sysFlag bit 4 / bit 5 says so) and
 * shifts every later field by 12.
 *
 *    0                   4                   8                  12
 *    +-------------------+-------------------+-------------------+
 *    | totalSize  int32  | magic 0x534C4D31  | bodyCrc  uint32   |   totalSize: the whole
 *    +-------------------+-------------------+-------------------+   record, this field too
 *   12 | queueId  int32  | flag  int32       | queueOffset int64 ...
 *   20 ... queueOffset int64 (cont.)          | physicalOffset int64 (28..36)
 *   36 | sysFlag  int32  | bornTimestamp int64 (40..48, epoch ms)
 *   48 | bornHost: IPv4 4 bytes + port int32 (48..56)   [IPv6: 16 + 4]
 *   56 | storeTimestamp int64 (56..64, epoch ms)
 *   64 | storeHost: IPv4 4 bytes + port int32 (64..72)  [IPv6: 16 + 4]
 *   72 | reconsumeTimes int32 | preparedTransactionOffset int64 (76..84)
 *   84 | bodyLength int32 (B)
 *   88 | body: B bytes
 *      | topicLength uint16 (T) | topic: T bytes UTF-8
 *      | propertiesLength uint16 (P) | properties: P bytes UTF-8, `k\u0001v\u0002` per pair
 *      | recordCrc uint32
 *    end = 88 + B + 2 + T + 2 + P + 4 = totalSize
 *
 *  - bodyCrc = zlib.crc32(body).
 *  - recordCrc = CRC32 of every byte of the record except the body and recordCrc
 *    itself (bytes [0, 88) then [88 + B, end − 4)). The body is covered by
 *    bodyCrc, which recordCrc covers, so a flipped bit anywhere is detected while
 *    the body is checksummed once.
 *  - physicalOffset is the record's own position: a record found anywhere else
 *    is not valid there (stale bytes, misaligned scan).
 *  - properties carry, besides the caller's, TAGS (the tag), KEYS (keys joined
 *    by ' '), UNIQ_KEY (client message id) and, when the caller overrode the
 *    consume queue tag code, __TAGS_CODE (decimal) so the queue can be rebuilt
 *    from the commitlog alone. decode() moves them back into their fields.
 *
 * Blank (padding) record, closing a segment whose remaining space cannot hold
 * the next record plus a blank:
 *
 *    0                   4                   8
 *    +-------------------+-------------------+---------------------------+
 *    | totalSize int32   | magic 0x534C4231  | zero bytes to segment end |
 *    +-------------------+-------------------+---------------------------+
 *    totalSize = bytes from the blank's start to the end of the segment (>= 8).
 */
import { crc32 } from 'node:zlib';
import { errors } from '../../common/errors.js';
import { offsetMessageIdWithPrefix } from '../../common/offset-message-id.js';
import { crc32Range } from './crc32.js';
import { offsetMessageIdPrefix } from './message-id.js';
import { decodeAddress, type EncodedAddress, encodeAddress } from './socket-address.js';
import { type MessageInput, type StoredRecord, SysFlag } from './store-api.js';
import { utf8Length, writeUtf8 } from './utf8-codec.js';

export const MESSAGE_MAGIC = 0x534c4d31; // "SLM1"
export const BLANK_MAGIC = 0x534c4231; // "SLB1"
/** A blank record is at least totalSize + magic. */
export const BLANK_MIN_BYTES = 8;
/** Bytes of a record with empty body, topic and properties and IPv4 hosts. */
export const RECORD_FIXED_BYTES = 96;
export const MAX_TOPIC_BYTES = 0xffff;
export const MAX_PROPERTIES_BYTES = 0xffff;

export const OFF_TOTAL_SIZE = 0;
export const OFF_MAGIC = 4;
export const OFF_BODY_CRC = 8;
export const OFF_QUEUE_ID = 12;
export const OFF_FLAG = 16;
export const OFF_QUEUE_OFFSET = 20;
export const OFF_PHYSICAL_OFFSET = 28;
export const OFF_SYS_FLAG = 36;
export const OFF_BORN_TIMESTAMP = 40;
export const OFF_BORN_HOST = 48;

/** Property names the store owns (values come from MessageInput fields). */
export const PROPERTY_TAGS = 'TAGS';
export const PROPERTY_KEYS = 'KEYS';
export const PROPERTY_UNIQ_KEY = 'UNIQ_KEY';
export const PROPERTY_TAGS_CODE = '__TAGS_CODE';
const NAME_VALUE_SEPARATOR = '\u0001';
const PROPERTY_SEPARATOR = '\u0002';
const KEY_SEPARATOR = ' ';

const TWO_32 = 4294967296;
const HOST_V4 = 8;
const HOST_V6 = 20;

export function writeInt64(buf: Buffer, value: number, off: number): void {
  const hi = Math.floor(value / TWO_32);
  buf.writeInt32BE(hi, off);
  buf.writeUInt32BE(value - hi * TWO_32, off + 4);
}

export function readInt64(buf: Buffer, off: number): number {
  return buf.readInt32BE(off) * TWO_32 + buf.readUInt32BE(off + 4);
}

/** Offset of storeTimestamp for a record with this sysFlag. */
export function storeTimestampOffset(sysFlag: number): number {
  return OFF_BORN_HOST + ((sysFlag & SysFlag.BORNHOST_V6) !== 0 ? HOST_V6 : HOST_V4);
}

/** Offset of bodyLength for a record with this sysFlag. */
function bodyLengthOffset(sysFlag: number): number {
  return (
    storeTimestampOffset(sysFlag) +
    8 +
    ((sysFlag & SysFlag.STOREHOST_V6) !== 0 ? HOST_V6 : HOST_V4) +
    4 +
    8
  );
}

/** Record size for the given lengths (bytes). */
export function recordSize(
  bodyBytes: number,
  topicBytes: number,
  propertiesBytes: number,
  bornV6: boolean,
  storeV6: boolean,
): number {
  return (
    RECORD_FIXED_BYTES +
    (bornV6 ? HOST_V6 - HOST_V4 : 0) +
    (storeV6 ? HOST_V6 - HOST_V4 : 0) +
    bodyBytes +
    topicBytes +
    propertiesBytes
  );
}

/**
 * Bytes of the properties stored for a message: the caller's (minus the names
 * the store owns), then TAGS, KEYS, UNIQ_KEY and __TAGS_CODE from the fields.
 * Throws when a name or value contains a separator character.
 */
export function measureProperties(m: MessageInput): number {
  let n = 0;
  const props = m.properties;
  for (const k in props) {
    if (
      k === PROPERTY_TAGS ||
      k === PROPERTY_KEYS ||
      k === PROPERTY_UNIQ_KEY ||
      k === PROPERTY_TAGS_CODE
    ) {
      continue;
    }
    const kn = utf8Length(k);
    const vn = utf8Length(props[k]!);
    if (kn < 0 || vn < 0) {
      throw errors.illegalPropertyKey(k, 'contains a control character');
    }
    n += kn + vn + 2;
  }
  if (m.tag.length > 0) {
    const tn = utf8Length(m.tag);
    if (tn < 0) throw errors.illegalTag(m.tag, 'contains a control character');
    n += PROPERTY_TAGS.length + 2 + tn;
  }
  const keys = m.keys;
  if (keys.length > 0) {
    n += PROPERTY_KEYS.length + 2 + keys.length - 1;
    for (let i = 0; i < keys.length; i++) {
      const kn = utf8Length(keys[i]!);
      if (kn < 0) throw errors.illegalMessageKey(keys[i]!, 'contains a control character');
      n += kn;
    }
  }
  if (m.messageId.length > 0) {
    const mn = utf8Length(m.messageId);
    if (mn < 0) throw errors.illegalMessageId(m.messageId);
    n += PROPERTY_UNIQ_KEY.length + 2 + mn;
  }
  if (m.tagsCode !== undefined) {
    n += PROPERTY_TAGS_CODE.length + 2 + String(BigInt.asIntN(64, m.tagsCode)).length;
  }
  return n;
}

function writePair(buf: Buffer, off: number, k: string, v: string): number {
  off = writeUtf8(buf, off, k);
  buf[off++] = 1;
  off = writeUtf8(buf, off, v);
  buf[off++] = 2;
  return off;
}

/** Writes what measureProperties measured at buf[off…]; answers the offset after it. */
export function writeProperties(buf: Buffer, off: number, m: MessageInput): number {
  const props = m.properties;
  for (const k in props) {
    if (
      k === PROPERTY_TAGS ||
      k === PROPERTY_KEYS ||
      k === PROPERTY_UNIQ_KEY ||
      k === PROPERTY_TAGS_CODE
    ) {
      continue;
    }
    off = writePair(buf, off, k, props[k]!);
  }
  if (m.tag.length > 0) off = writePair(buf, off, PROPERTY_TAGS, m.tag);
  const keys = m.keys;
  if (keys.length > 0) {
    off = writeUtf8(buf, off, PROPERTY_KEYS);
    buf[off++] = 1;
    for (let i = 0; i < keys.length; i++) {
      if (i > 0) buf[off++] = 0x20; // KEY_SEPARATOR
      off = writeUtf8(buf, off, keys[i]!);
    }
    buf[off++] = 2;
  }
  if (m.messageId.length > 0) off = writePair(buf, off, PROPERTY_UNIQ_KEY, m.messageId);
  if (m.tagsCode !== undefined)
    off = writePair(buf, off, PROPERTY_TAGS_CODE, String(BigInt.asIntN(64, m.tagsCode)));
  return off;
}

/** Parses `k\u0001v\u0002…` into an object (all names, the store's included). */
export function parseProperties(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf(PROPERTY_SEPARATOR, start);
    if (end < 0) end = text.length;
    const sep = text.indexOf(NAME_VALUE_SEPARATOR, start);
    if (sep >= 0 && sep < end) out[text.slice(start, sep)] = text.slice(sep + 1, end);
    start = end + 1;
  }
  return out;
}

/**
 * Writes one message record of `size` bytes at buf[off…] (hot path: the caller
 * has measured topic and properties and parsed the hosts). `dv` is a DataView
 * over exactly `buf` (same offsets).
 *
 * With `inlineBody` false the body is left out: the bytes after the header go
 * straight after it in `buf` (size − body bytes in all), and the caller writes
 * header, the body buffer itself and the rest as three pieces of one writev —
 * the same bytes on disk without copying a large body. Answers the bytes used
 * in `buf`.
 */
export function writeRecord(
  buf: Buffer,
  dv: DataView,
  off: number,
  size: number,
  m: MessageInput,
  propertiesBytes: number,
  topic: Buffer,
  born: EncodedAddress,
  store: EncodedAddress,
  queueOffset: number,
  physicalOffset: number,
  storeTimestamp: number,
  inlineBody = true,
): number {
  const body = m.body;
  const sysFlag =
    ((m.sysFlag ?? 0) & ~(SysFlag.BORNHOST_V6 | SysFlag.STOREHOST_V6)) |
    (born.v6 ? SysFlag.BORNHOST_V6 : 0) |
    (store.v6 ? SysFlag.STOREHOST_V6 : 0);
  dv.setInt32(off, size);
  dv.setUint32(off + OFF_MAGIC, MESSAGE_MAGIC);
  dv.setUint32(off + OFF_BODY_CRC, crc32(body));
  dv.setInt32(off + OFF_QUEUE_ID, m.queueId);
  dv.setInt32(off + OFF_FLAG, m.flag ?? 0);
  setInt64(dv, off + OFF_QUEUE_OFFSET, queueOffset);
  setInt64(dv, off + OFF_PHYSICAL_OFFSET, physicalOffset);
  dv.setInt32(off + OFF_SYS_FLAG, sysFlag);
  setInt64(dv, off + OFF_BORN_TIMESTAMP, m.bornTimestamp);
  let p = copySmall(born.bytes, buf, off + OFF_BORN_HOST);
  setInt64(dv, p, storeTimestamp);
  p = copySmall(store.bytes, buf, p + 8);
  dv.setInt32(p, m.reconsumeTimes ?? 0);
  setInt64(dv, p + 4, m.preparedTransactionOffset ?? 0);
  dv.setInt32(p + 12, body.length);
  const bodyStart = p + 16;
  let tailStart = bodyStart;
  if (inlineBody) {
    buf.set(body, bodyStart);
    tailStart += body.length;
  }
  p = tailStart;
  dv.setUint16(p, topic.length);
  p = copySmall(topic, buf, p + 2);
  dv.setUint16(p, propertiesBytes);
  if (propertiesBytes > 0) p = writeProperties(buf, p + 2, m);
  else p += 2;
  const crc = inlineBody
    ? crc32Range(buf, tailStart, p, crc32Range(buf, off, bodyStart))
    : crc32Range(buf, off, p); // header and tail are contiguous here
  dv.setUint32(p, crc);
  return p + 4 - off;
}

/** Bytes of a record before its body (88 with IPv4 hosts). */
export function recordHeaderBytes(bornV6: boolean, storeV6: boolean): number {
  return 88 + (bornV6 ? HOST_V6 - HOST_V4 : 0) + (storeV6 ? HOST_V6 - HOST_V4 : 0);
}

function setInt64(dv: DataView, off: number, value: number): void {
  const hi = Math.floor(value / TWO_32);
  dv.setInt32(off, hi);
  dv.setUint32(off + 4, value - hi * TWO_32);
}

/** Copies a short buffer byte by byte (cheaper than a native copy under ~64 bytes); answers the end. */
function copySmall(src: Buffer, dst: Buffer, at: number): number {
  const n = src.length;
  if (n > 64) {
    dst.set(src, at);
    return at + n;
  }
  for (let i = 0; i < n; i++) dst[at + i] = src[i]!;
  return at + n;
}

/** Everything a record holds, for encodeRecord (tests, tools; the hot path uses writeRecord). */
export interface RecordFields extends MessageInput {
  queueOffset: number;
  physicalOffset: number;
  storeTimestamp: number;
  storeHost: string;
}

/**
 * Encodes one record into a new buffer.
 *
 * @example
 *   const bytes = encodeRecord({ topic: 'T', queueId: 0, body: Buffer.from('hi'), tag: '', keys: [],
 *     properties: {}, messageId: 'ID', bornTimestamp: 1, bornHost: '127.0.0.1:1',
 *     queueOffset: 0, physicalOffset: 0, storeTimestamp: 2, storeHost: '127.0.0.1:10911' });
 */
export function encodeRecord(f: RecordFields): Buffer {
  const propertiesBytes = measureProperties(f);
  const topic = Buffer.from(f.topic, 'utf8');
  const born = encodeAddress(f.bornHost);
  const store = encodeAddress(f.storeHost);
  const size = recordSize(f.body.length, topic.length, propertiesBytes, born.v6, store.v6);
  const buf = Buffer.alloc(size);
  writeRecord(
    buf,
    new DataView(buf.buffer, buf.byteOffset, buf.length),
    0,
    size,
    f,
    propertiesBytes,
    topic,
    born,
    store,
    f.queueOffset,
    f.physicalOffset,
    f.storeTimestamp,
  );
  return buf;
}

/** Writes a blank record of `size` bytes (>= 8) at buf[off…]; the rest must already be zero. */
export function writeBlank(buf: Buffer, off: number, size: number): void {
  buf.writeInt32BE(size, off);
  buf.writeUInt32BE(BLANK_MAGIC, off + OFF_MAGIC);
}

/** Where the variable parts of a record are (after a structural check). */
interface Layout {
  sysFlag: number;
  bornV6: boolean;
  storeV6: boolean;
  storeTimestampAt: number;
  storeHostAt: number;
  reconsumeAt: number;
  bodyAt: number;
  bodyLength: number;
  topicAt: number;
  topicLength: number;
  propertiesAt: number;
  propertiesLength: number;
}

/**
 * Structural layout of the record at buf[off…] within `available` bytes, or a
 * problem. The answer is a shared object, valid until the next call.
 */
function layoutOf(buf: Buffer, off: number, available: number): Layout | string {
  if (available < RECORD_FIXED_BYTES)
    return `only ${available} bytes left, a record needs ${RECORD_FIXED_BYTES}`;
  const total = buf.readInt32BE(off);
  if (buf.readUInt32BE(off + OFF_MAGIC) !== MESSAGE_MAGIC) return 'bad magic';
  if (total < RECORD_FIXED_BYTES) return `totalSize ${total} too small`;
  if (total > available) return `totalSize ${total} runs past the ${available} bytes written`;
  const sysFlag = buf.readInt32BE(off + OFF_SYS_FLAG);
  const bornV6 = (sysFlag & SysFlag.BORNHOST_V6) !== 0;
  const storeV6 = (sysFlag & SysFlag.STOREHOST_V6) !== 0;
  const fixed = recordSize(0, 0, 0, bornV6, storeV6);
  if (total < fixed) return `totalSize ${total} too small`;
  const storeTimestampAt = storeTimestampOffset(sysFlag);
  const storeHostAt = storeTimestampAt + 8;
  const reconsumeAt = storeHostAt + (storeV6 ? HOST_V6 : HOST_V4);
  const bodyLengthAt = bodyLengthOffset(sysFlag);
  const bodyLength = buf.readInt32BE(off + bodyLengthAt);
  const bodyAt = bodyLengthAt + 4;
  if (bodyLength < 0 || bodyAt + bodyLength + 4 + 4 > total)
    return `bodyLength ${bodyLength} out of range`;
  const topicLength = buf.readUInt16BE(off + bodyAt + bodyLength);
  const topicAt = bodyAt + bodyLength + 2;
  if (topicAt + topicLength + 2 + 4 > total) return `topicLength ${topicLength} out of range`;
  const propertiesLength = buf.readUInt16BE(off + topicAt + topicLength);
  const propertiesAt = topicAt + topicLength + 2;
  if (propertiesAt + propertiesLength + 4 !== total) {
    return `lengths add up to ${propertiesAt + propertiesLength + 4}, totalSize says ${total}`;
  }
  // One shared object, filled in place: callers read it before any await (no garbage per record).
  const l = LAYOUT;
  l.sysFlag = sysFlag;
  l.bornV6 = bornV6;
  l.storeV6 = storeV6;
  l.storeTimestampAt = storeTimestampAt;
  l.storeHostAt = storeHostAt;
  l.reconsumeAt = reconsumeAt;
  l.bodyAt = bodyAt;
  l.bodyLength = bodyLength;
  l.topicAt = topicAt;
  l.topicLength = topicLength;
  l.propertiesAt = propertiesAt;
  l.propertiesLength = propertiesLength;
  return l;
}

const LAYOUT: Layout = {
  sysFlag: 0,
  bornV6: false,
  storeV6: false,
  storeTimestampAt: 0,
  storeHostAt: 0,
  reconsumeAt: 0,
  bodyAt: 0,
  bodyLength: 0,
  topicAt: 0,
  topicLength: 0,
  propertiesAt: 0,
  propertiesLength: 0,
};

/**
 * Validates the message record at buf[off…] (`available` bytes readable from
 * there): magic, every length, both CRCs (unless checkCrc is false) and, when
 * given, that its physical offset field says `expectedPhysicalOffset`.
 * Answers undefined when valid, or what is wrong.
 */
export function validateRecord(
  buf: Buffer,
  off: number,
  available: number,
  expectedPhysicalOffset?: number,
  checkCrc = true,
): string | undefined {
  const layout = layoutOf(buf, off, available);
  if (typeof layout === 'string') return layout;
  const total = buf.readInt32BE(off);
  if (expectedPhysicalOffset !== undefined) {
    const phy = readInt64(buf, off + OFF_PHYSICAL_OFFSET);
    if (phy !== expectedPhysicalOffset) {
      return `physicalOffset field says ${phy}, record is at ${expectedPhysicalOffset}`;
    }
  }
  if (!checkCrc) return undefined;
  const bodyStart = off + layout.bodyAt;
  const bodyEnd = bodyStart + layout.bodyLength;
  if (crc32(buf.subarray(bodyStart, bodyEnd)) !== buf.readUInt32BE(off + OFF_BODY_CRC)) {
    return 'body CRC mismatch';
  }
  const crc = crc32Range(buf, bodyEnd, off + total - 4, crc32Range(buf, off, bodyStart));
  if (crc !== buf.readUInt32BE(off + total - 4)) return 'record CRC mismatch';
  return undefined;
}

/** Validates a blank record at buf[off…] that must end exactly `toSegmentEnd` bytes later. */
export function validateBlank(buf: Buffer, off: number, toSegmentEnd: number): string | undefined {
  if (buf.readUInt32BE(off + OFF_MAGIC) !== BLANK_MAGIC) return 'bad magic';
  const total = buf.readInt32BE(off);
  if (total !== toSegmentEnd)
    return `blank of ${total} bytes does not reach the segment end (${toSegmentEnd})`;
  return undefined;
}

const hostPrefixCache = new Map<string, string>();

function prefixFor(storeHost: string): string {
  let prefix = hostPrefixCache.get(storeHost);
  if (prefix === undefined) {
    if (hostPrefixCache.size > 1024) hostPrefixCache.clear();
    prefix = offsetMessageIdPrefix(storeHost);
    hostPrefixCache.set(storeHost, prefix);
  }
  return prefix;
}

/**
 * Decodes the message record at buf[off…] (`available` bytes readable). The
 * body is a copy the caller owns. `expectedTopic`, when the bytes say exactly
 * that, is reused instead of decoding a new string. Checks structure, not CRCs (validateRecord
 * does); throws MESSAGE_CORRUPTED when the structure is broken.
 */
export function decodeRecord(
  buf: Buffer,
  off: number,
  available: number,
  expectedTopic?: string,
): StoredRecord {
  const l = layoutOf(buf, off, available);
  if (typeof l === 'string') throw errors.messageCorrupted(`commitlog record is corrupt: ${l}`);
  // Properties: the store's own names go to their fields, the rest to `properties`
  // (built without delete, which would turn the object into a slow dictionary).
  const text = buf.toString(
    'utf8',
    off + l.propertiesAt,
    off + l.propertiesAt + l.propertiesLength,
  );
  const props: Record<string, string> = {};
  let tag = '';
  let keysText = '';
  let uniq = '';
  let tagsCodeText: string | undefined;
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf(PROPERTY_SEPARATOR, start);
    if (end < 0) end = text.length;
    const sep = text.indexOf(NAME_VALUE_SEPARATOR, start);
    if (sep >= 0 && sep < end) {
      const k = text.slice(start, sep);
      const v = text.slice(sep + 1, end);
      if (k === PROPERTY_TAGS) tag = v;
      else if (k === PROPERTY_KEYS) keysText = v;
      else if (k === PROPERTY_UNIQ_KEY) uniq = v;
      else if (k === PROPERTY_TAGS_CODE) tagsCodeText = v;
      else props[k] = v;
    }
    start = end + 1;
  }
  const physicalOffset = readInt64(buf, off + OFF_PHYSICAL_OFFSET);
  const storeHost = decodeAddress(buf, off + l.storeHostAt, l.storeV6);
  const offsetMessageId = offsetMessageIdWithPrefix(prefixFor(storeHost), physicalOffset);
  const body = Buffer.allocUnsafe(l.bodyLength);
  buf.copy(body, 0, off + l.bodyAt, off + l.bodyAt + l.bodyLength);
  const topicAt = off + l.topicAt;
  const record: StoredRecord = {
    topic:
      expectedTopic !== undefined && sameAscii(buf, topicAt, l.topicLength, expectedTopic)
        ? expectedTopic
        : buf.toString('utf8', topicAt, topicAt + l.topicLength),
    queueId: buf.readInt32BE(off + OFF_QUEUE_ID),
    queueOffset: readInt64(buf, off + OFF_QUEUE_OFFSET),
    physicalOffset,
    size: buf.readInt32BE(off),
    body,
    bodyCrc: buf.readUInt32BE(off + OFF_BODY_CRC),
    tag,
    keys: keysText.length > 0 ? splitKeys(keysText) : [],
    properties: props,
    messageId: uniq || offsetMessageId,
    offsetMessageId,
    flag: buf.readInt32BE(off + OFF_FLAG),
    sysFlag: l.sysFlag,
    bornTimestamp: readInt64(buf, off + OFF_BORN_TIMESTAMP),
    bornHost: decodeAddress(buf, off + OFF_BORN_HOST, l.bornV6),
    storeTimestamp: readInt64(buf, off + l.storeTimestampAt),
    storeHost,
    reconsumeTimes: buf.readInt32BE(off + l.reconsumeAt),
    preparedTransactionOffset: readInt64(buf, off + l.reconsumeAt + 4),
  };
  if (tagsCodeText !== undefined) record.tagsCode = BigInt(tagsCodeText);
  return record;
}

/** True when buf[at, at + len) is exactly the ASCII string s (then s can be reused, not decoded). */
function sameAscii(buf: Buffer, at: number, len: number, s: string): boolean {
  if (s.length !== len) return false;
  for (let i = 0; i < len; i++) if (buf[at + i] !== s.charCodeAt(i)) return false;
  return true;
}

function splitKeys(text: string): string[] {
  return text.indexOf(KEY_SEPARATOR) < 0
    ? [text]
    : text.split(KEY_SEPARATOR).filter((k) => k.length > 0);
}

/** What the dispatcher needs from a record (filled in place to avoid garbage). */
export interface DispatchInfo {
  size: number;
  topic: string;
  queueId: number;
  queueOffset: number;
  physicalOffset: number;
  sysFlag: number;
  storeTimestamp: number;
  tag: string;
  keys: string[];
  messageId: string;
  /** The __TAGS_CODE override, or undefined (then the tag's hash is used). */
  tagsCode: bigint | undefined;
}

export function newDispatchInfo(): DispatchInfo {
  return {
    size: 0,
    topic: '',
    queueId: 0,
    queueOffset: 0,
    physicalOffset: 0,
    sysFlag: 0,
    storeTimestamp: 0,
    tag: '',
    keys: [],
    messageId: '',
    tagsCode: undefined,
  };
}

/** Value of the store-owned property `name` in a properties string, or undefined. */
function ownProperty(text: string, name: string, needle: string): string | undefined {
  let at: number;
  if (text.startsWith(name) && text.charCodeAt(name.length) === 1) {
    at = name.length + 1;
  } else {
    const i = text.indexOf(needle);
    if (i < 0) return undefined;
    at = i + needle.length;
  }
  const end = text.indexOf(PROPERTY_SEPARATOR, at);
  return text.slice(at, end < 0 ? text.length : end);
}

const NEEDLE_TAGS = `${PROPERTY_SEPARATOR}${PROPERTY_TAGS}${NAME_VALUE_SEPARATOR}`;
const NEEDLE_KEYS = `${PROPERTY_SEPARATOR}${PROPERTY_KEYS}${NAME_VALUE_SEPARATOR}`;
const NEEDLE_UNIQ_KEY = `${PROPERTY_SEPARATOR}${PROPERTY_UNIQ_KEY}${NAME_VALUE_SEPARATOR}`;
const NEEDLE_TAGS_CODE = `${PROPERTY_SEPARATOR}${PROPERTY_TAGS_CODE}${NAME_VALUE_SEPARATOR}`;

/**
 * Fills `out` from the (already validated) message record at buf[off…]; looks
 * up only the properties dispatch needs (no object of all of them).
 */
export function readDispatchInfo(
  buf: Buffer,
  off: number,
  available: number,
  out: DispatchInfo,
): void {
  const l = layoutOf(buf, off, available);
  if (typeof l === 'string') throw errors.messageCorrupted(`commitlog record is corrupt: ${l}`);
  const text = buf.toString(
    'utf8',
    off + l.propertiesAt,
    off + l.propertiesAt + l.propertiesLength,
  );
  const keysText = ownProperty(text, PROPERTY_KEYS, NEEDLE_KEYS);
  const tagsCodeText = ownProperty(text, PROPERTY_TAGS_CODE, NEEDLE_TAGS_CODE);
  out.size = buf.readInt32BE(off);
  out.topic = buf.toString('utf8', off + l.topicAt, off + l.topicAt + l.topicLength);
  out.queueId = buf.readInt32BE(off + OFF_QUEUE_ID);
  out.queueOffset = readInt64(buf, off + OFF_QUEUE_OFFSET);
  out.physicalOffset = readInt64(buf, off + OFF_PHYSICAL_OFFSET);
  out.sysFlag = l.sysFlag;
  out.storeTimestamp = readInt64(buf, off + l.storeTimestampAt);
  out.tag = ownProperty(text, PROPERTY_TAGS, NEEDLE_TAGS) ?? '';
  out.keys = keysText ? splitKeys(keysText) : [];
  out.messageId = ownProperty(text, PROPERTY_UNIQ_KEY, NEEDLE_UNIQ_KEY) ?? '';
  out.tagsCode = tagsCodeText === undefined ? undefined : BigInt(tagsCodeText);
}

/** Store timestamp of the record whose first bytes (at least 72, or 84 with IPv6) are in buf[off…]. */
export function readStoreTimestamp(buf: Buffer, off: number): number {
  return readInt64(buf, off + storeTimestampOffset(buf.readInt32BE(off + OFF_SYS_FLAG)));
}

/** Bytes to read to reach the store timestamp of any record. */
export const STORE_TIMESTAMP_PROBE_BYTES = OFF_BORN_HOST + HOST_V6 + 8;
