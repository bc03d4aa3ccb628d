/**
 * Message ids, as RocketMQ makes them.
 *
 * Client-unique id (UNIQ_KEY, MessageClientIDSetter): 16 bytes as 32 upper-case
 * hex digits: host IPv4 (4) + pid (2) + random (4, RocketMQ uses a class
 * loader hash) + ms since the start of the month (4) + counter (2).
 *
 * Offset message id (MessageDecoder.createMessageId): store host address +
 * port int32 + physical offset int64, upper-case hex: 32 digits for IPv4, 56
 * for IPv6. It encodes where the record is, so a lookup needs no index.
 */
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { offsetMessageIdWithPrefix } from '../../common/offset-message-id.js';
import {
  decodeAddress,
  encodeAddress,
  IPV4_ADDRESS_BYTES,
  IPV6_ADDRESS_BYTES,
} from './socket-address.js';

function localIPv4(): Buffer {
  for (const list of Object.values(networkInterfaces())) {
    for (const ni of list ?? []) {
      if (ni.family === 'IPv4' && !ni.internal)
        return Buffer.from(ni.address.split('.').map(Number));
    }
  }
  return Buffer.from([127, 0, 0, 1]);
}

function startOfMonth(now: number): number {
  const d = new Date(now);
  return new Date(d.getFullYear(), d.getMonth(), 1).getTime();
}

/** Upper-case hex of every byte value, so a counter's digits are two lookups. */
const HEX_BYTES = Array.from({ length: 256 }, (_, b) =>
  b.toString(16).toUpperCase().padStart(2, '0'),
);

/** Makes client-unique ids; one per process is enough (see newUniqueMessageId). */
export class UniqueIdGenerator {
  private readonly prefix: string;
  private monthStart = 0;
  private nextMonthStart = 0;
  private counter = 0;
  /** The clock reading the id's time digits were last made for, and its prefix + digits (a batch shares them). */
  private lastNow = -1;
  private timed = '';

  constructor(private readonly clock: () => number = Date.now) {
    const fixed = Buffer.alloc(10);
    localIPv4().copy(fixed, 0);
    fixed.writeUInt16BE(process.pid & 0xffff, 4);
    randomBytes(4).copy(fixed, 6);
    this.prefix = fixed.toString('hex').toUpperCase();
  }

  /**
   * @example
   *   new UniqueIdGenerator().next(); // '0A00000F1A2B3C4D5E6F0012AB340001'
   */
  next(): string {
    const now = this.clock();
    if (now !== this.lastNow) {
      if (now >= this.nextMonthStart || now < this.monthStart) {
        this.monthStart = startOfMonth(now);
        const d = new Date(this.monthStart);
        this.nextMonthStart = new Date(d.getFullYear(), d.getMonth() + 1, 1).getTime();
      }
      const diff = (now - this.monthStart) >>> 0;
      this.lastNow = now;
      this.timed = this.prefix + diff.toString(16).toUpperCase().padStart(8, '0');
    }
    this.counter = (this.counter + 1) & 0xffff;
    return this.timed + HEX_BYTES[this.counter >>> 8]! + HEX_BYTES[this.counter & 0xff]!;
  }
}

const defaultGenerator = new UniqueIdGenerator();

/** A new client-unique message id (UNIQ_KEY) from the process-wide generator. */
export function newUniqueMessageId(): string {
  return defaultGenerator.next();
}

/** Upper-case hex of the store host part of an offset message id (cache it per host). */
export function offsetMessageIdPrefix(storeHost: string): string {
  return encodeAddress(storeHost).bytes.toString('hex').toUpperCase();
}

/**
 * RocketMQ's offset message id: store host + physical offset in hex.
 *
 * @example
 *   createOffsetMessageId('10.0.0.7:10911', 4096); // '0A00000700002A9F0000000000001000'
 */
export function createOffsetMessageId(storeHost: string, physicalOffset: number): string {
  return offsetMessageIdWithPrefix(offsetMessageIdPrefix(storeHost), physicalOffset);
}

export interface DecodedOffsetMessageId {
  storeHost: string;
  physicalOffset: number;
}

const HEX = /^[0-9a-fA-F]+$/;

/** Decodes an offset message id; undefined when `id` does not have that shape. */
export function decodeOffsetMessageId(id: string): DecodedOffsetMessageId | undefined {
  const bytes = id.length / 2;
  if ((bytes !== IPV4_ADDRESS_BYTES + 8 && bytes !== IPV6_ADDRESS_BYTES + 8) || !HEX.test(id)) {
    return undefined;
  }
  const buf = Buffer.from(id, 'hex');
  const hostBytes = bytes - 8;
  const hi = buf.readUInt32BE(hostBytes);
  const lo = buf.readUInt32BE(hostBytes + 4);
  if (hi >= 0x200000) return undefined; // beyond 2^53: not an offset we could have written
  return {
    storeHost: decodeAddress(buf, 0, hostBytes === IPV6_ADDRESS_BYTES),
    physicalOffset: hi * 0x100000000 + lo,
  };
}
