/**
 * UTF-8 measuring and writing in plain JS for the short strings of a record
 * (topic, property names and values): no intermediate strings, no native call
 * per string, and the `k\u0001v\u0002` separators detected on the way.
 * Encodes exactly as Buffer.write(s, 'utf8') does (lone surrogates → U+FFFD).
 */

/** Bytes of `s` in UTF-8, or -1 when it contains \u0001 or \u0002 (the property separators). */
export function utf8Length(s: string): number {
  let n = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 1 || c === 2) return -1;
      n += 1;
    } else if (c < 0x800) {
      n += 2;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else {
        n += 3;
      }
    } else {
      n += 3;
    }
  }
  return n;
}

/** Writes `s` as UTF-8 at buf[off…] (the caller measured it); answers the offset after it. */
export function writeUtf8(buf: Buffer, off: number, s: string): number {
  const len = s.length;
  for (let i = 0; i < len; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[off++] = c;
    } else if (c < 0x800) {
      buf[off++] = 0xc0 | (c >> 6);
      buf[off++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          buf[off++] = 0xf0 | (cp >> 18);
          buf[off++] = 0x80 | ((cp >> 12) & 0x3f);
          buf[off++] = 0x80 | ((cp >> 6) & 0x3f);
          buf[off++] = 0x80 | (cp & 0x3f);
          i++;
          continue;
        }
        c = 0xfffd;
      }
      buf[off++] = 0xe0 | (c >> 12);
      buf[off++] = 0x80 | ((c >> 6) & 0x3f);
      buf[off++] = 0x80 | (c & 0x3f);
    }
  }
  return off;
}
