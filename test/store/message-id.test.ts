import { describe, expect, it } from 'vitest';
import {
  createOffsetMessageId,
  decodeOffsetMessageId,
  newUniqueMessageId,
  UniqueIdGenerator,
} from '../../broker/store/message-id.js';
import { javaStringHash, tagHash } from '../../broker/store/tag-hash.js';

describe('message ids', () => {
  it('makes offset ids as RocketMQ MessageDecoder.createMessageId does', () => {
    // ip 10.0.0.7, port 10911 (0x2A9F), offset 4096: 4 + 4 + 8 bytes, upper-case hex.
    expect(createOffsetMessageId('10.0.0.7:10911', 4096)).toBe('0A00000700002A9F0000000000001000');
    expect(createOffsetMessageId('ipv4:127.0.0.1:10911', 2 ** 40)).toBe(
      '7F00000100002A9F0000010000000000',
    );
  });

  it('decodes offset ids (IPv4 and IPv6) and refuses other strings', () => {
    expect(decodeOffsetMessageId('0A00000700002A9F0000000000001000')).toEqual({
      storeHost: '10.0.0.7:10911',
      physicalOffset: 4096,
    });
    const v6 = createOffsetMessageId('[fe80::1:2]:8080', 123_456_789_012);
    expect(v6).toHaveLength(56);
    expect(decodeOffsetMessageId(v6)).toEqual({
      storeHost: '[fe80::1:2]:8080',
      physicalOffset: 123_456_789_012,
    });
    expect(decodeOffsetMessageId('not-an-id')).toBeUndefined();
    expect(decodeOffsetMessageId('0A00000700002A9F00000000000010')).toBeUndefined();
    expect(decodeOffsetMessageId('ZZ00000700002A9F0000000000001000')).toBeUndefined();
  });

  it('makes unique client ids: 32 upper-case hex digits, distinct, time in the month', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 100_000; i++) ids.add(newUniqueMessageId());
    expect(ids.size).toBe(100_000);
    for (const id of [...ids].slice(0, 10)) expect(id).toMatch(/^[0-9A-F]{32}$/);
    const at = new Date(2024, 4, 3, 10, 0, 0).getTime();
    const gen = new UniqueIdGenerator(() => at);
    const id = gen.next();
    const sinceMonthStart = Number.parseInt(id.slice(20, 28), 16);
    expect(sinceMonthStart).toBe(at - new Date(2024, 4, 1).getTime());
    expect(gen.next().slice(0, 28)).toBe(id.slice(0, 28));
    expect(gen.next()).not.toBe(id);
  });
});

describe('tag hash', () => {
  it("has Java String.hashCode's values", () => {
    expect(javaStringHash('hello')).toBe(99_162_322);
    expect(javaStringHash('TagA')).toBe(2_598_919);
    expect(javaStringHash('Aa')).toBe(javaStringHash('BB'));
    // Overflow wraps to a negative int, as in Java.
    expect(javaStringHash('polygenelubricants')).toBe(-2_147_483_648);
    expect(javaStringHash('Aa')).toBe(2112);
    expect(tagHash('')).toBe(0);
    expect(javaStringHash('key', javaStringHash('topic#'))).toBe(javaStringHash('topic#key'));
  });
});
