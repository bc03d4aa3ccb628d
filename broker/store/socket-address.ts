/**
 * "ip:port" strings ⇄ the bytes a record and an offset message id hold:
 * IPv4 = 4 address bytes + port int32 (8 bytes), IPv6 = 16 + 4 (20 bytes), as
 * RocketMQ writes born and store hosts.
 *
 * Accepted inputs: `1.2.3.4:80`, `[::1]:80`, `::1:80` (last colon splits the
 * port), with an optional gRPC-style `ipv4:` / `ipv6:` prefix. A host that is
 * not an IP literal (a name, a unix socket path) is encoded as 0.0.0.0 with its
 * port: records store addresses, not names.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const IPV4_ADDRESS_BYTES = 8;
export const IPV6_ADDRESS_BYTES = 20;

/** Parsed host: `bytes` is ip + port big-endian; owned by the cache, never mutate. */
export interface EncodedAddress {
  bytes: Buffer;
  v6: boolean;
}

const encodeCache = new Map<string, EncodedAddress>();
const decodeCacheV4 = new Map<number, string>();
const CACHE_LIMIT = 4096;

function parseIPv6(text: string): Buffer | undefined {
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4) is rewritten as two hex groups.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!isIPv4(tail)) return undefined;
    const p = tail.split('.').map(Number);
    s = `${s.slice(0, lastColon + 1)}${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) =>
    part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [
    ...head,
    ...new Array<number>(halves.length === 2 ? missing : 0).fill(0),
    ...rest,
  ];
  if (groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return undefined;
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i]!, i * 2);
  return out;
}

function formatIPv6(bytes: Buffer, off: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(bytes.readUInt16BE(off + i * 2));
  // Compress the longest run of two or more zero groups (RFC 5952).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

function splitHostPort(address: string): { host: string; port: number } {
  let s = address.trim();
  if (s.startsWith('ipv4:') || s.startsWith('ipv6:')) s = s.slice(5);
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    host = close > 0 ? s.slice(1, close) : s.slice(1);
    portText = close > 0 && s[close + 1] === ':' ? s.slice(close + 2) : '0';
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) {
      host = s;
      portText = '0';
    } else {
      host = s.slice(0, colon);
      portText = s.slice(colon + 1);
      // "::1" alone (no port) is an address, not host ":" + port "1".
      if (isIPv6(s) && !isIPv6(host)) {
        host = s;
        portText = '0';
      }
    }
  }
  const port = Number(portText);
  return { host, port: Number.isInteger(port) && port >= 0 && port <= 0xffff ? port : 0 };
}

/** Parses and caches an "ip:port" string. */
export function encodeAddress(address: string): EncodedAddress {
  const cached = encodeCache.get(address);
  if (cached) return cached;
  const { host, port } = splitHostPort(address);
  let result: EncodedAddress;
  const v6 = isIPv6(host) ? parseIPv6(host) : undefined;
  if (v6) {
    const bytes = Buffer.alloc(IPV6_ADDRESS_BYTES);
    v6.copy(bytes, 0);
    bytes.writeInt32BE(port, 16);
    result = { bytes, v6: true };
  } else {
    const bytes = Buffer.alloc(IPV4_ADDRESS_BYTES);
    if (isIPv4(host)) {
      const p = host.split('.');
      for (let i = 0; i < 4; i++) bytes[i] = Number(p[i]);
    }
    bytes.writeInt32BE(port, 4);
    result = { bytes, v6: false };
  }
  if (encodeCache.size >= CACHE_LIMIT) encodeCache.clear();
  encodeCache.set(address, result);
  return result;
}

/** Formats the address at buf[off…] (8 bytes, or 20 when v6) as "ip:port" / "[v6]:port". */
export function decodeAddress(buf: Buffer, off: number, v6: boolean): string {
  if (v6) return `[${formatIPv6(buf, off)}]:${buf.readInt32BE(off + 16)}`;
  const ip = buf.readUInt32BE(off);
  const port = buf.readInt32BE(off + 4);
  const key = ip * 65536 + (port & 0xffff);
  const cached = decodeCacheV4.get(key);
  if (cached !== undefined && port >= 0 && port <= 0xffff) return cached;
  const text = `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}:${port}`;
  if (decodeCacheV4.size >= CACHE_LIMIT) decodeCacheV4.clear();
  if (port >= 0 && port <= 0xffff) decodeCacheV4.set(key, text);
  return text;
}
