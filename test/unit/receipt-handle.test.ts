import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Code, SluiceError } from '../../common/errors.js';
import {
  decodeReceiptHandle,
  encodeReceiptHandle,
  type ReceiptHandle,
} from '../../common/receipt-handle.js';

const handle: ReceiptHandle = {
  brokerName: 'broker-a',
  topic: 'orders',
  queueId: 3,
  offset: 12345,
  popTime: 1_700_000_000_000,
  invisibleMs: 30_000,
  attempt: 2,
  group: 'billing',
};

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof SluiceError ? err.code : undefined;
  }
  return undefined;
}

describe('receipt handles', () => {
  it('round-trips every field', () => {
    const text = encodeReceiptHandle(handle, 'k1');
    expect(decodeReceiptHandle(text, 'k1')).toEqual(handle);
  });

  it('carries the fields as a base64url JSON array, names escaped', () => {
    const odd = { ...handle, topic: 'q"uote\\ü', group: 'g-\u2028' };
    const text = encodeReceiptHandle(odd, 'k1');
    const payload = text.slice(0, text.indexOf('.'));
    expect(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))).toEqual([
      1,
      'broker-a',
      'q"uote\\ü',
      3,
      12345,
      1_700_000_000_000,
      30_000,
      2,
      'g-\u2028',
    ]);
    expect(decodeReceiptHandle(text, 'k1')).toEqual(odd);
  });

  it('refuses a handle signed with another secret', () => {
    const text = encodeReceiptHandle(handle, 'k1');
    expect(codeOf(() => decodeReceiptHandle(text, 'k2'))).toBe(Code.INVALID_RECEIPT_HANDLE);
  });

  it('refuses a handle whose payload was edited', () => {
    const text = encodeReceiptHandle(handle, 'k1');
    const [, mac] = text.split('.');
    const forged = Buffer.from(
      JSON.stringify([1, 'broker-a', 'orders', 3, 99, 1, 30000, 1, 'billing']),
    ).toString('base64url');
    expect(codeOf(() => decodeReceiptHandle(`${forged}.${mac}`, 'k1'))).toBe(
      Code.INVALID_RECEIPT_HANDLE,
    );
  });

  it('refuses garbage', () => {
    for (const bad of ['', 'abc', '.', 'x.y', `${'a'.repeat(3000)}.b`]) {
      expect(codeOf(() => decodeReceiptHandle(bad, 'k1'))).toBe(Code.INVALID_RECEIPT_HANDLE);
    }
  });

  it('signs with HMAC-SHA256 of the payload, truncated to 16 bytes, for any secret length', () => {
    // Short, exactly one SHA-256 block, longer than a block (hashed first), non-ASCII.
    for (const secret of ['k', 'x'.repeat(64), 's'.repeat(200), 'clé-ü-秘密']) {
      const text = encodeReceiptHandle(handle, secret);
      const [payload, mac] = text.split('.') as [string, string];
      const expected = createHmac('sha256', secret).update(payload).digest().subarray(0, 16);
      expect(Buffer.from(mac, 'base64url').equals(expected)).toBe(true);
      expect(decodeReceiptHandle(text, secret)).toEqual(handle);
    }
  });

  it('refuses a payload with a character swapped for a non-ASCII look-alike', () => {
    // U+0141 truncates to 'A' (0x41) in latin1: the MAC must cover the UTF-8 bytes.
    const secret = 'k1';
    const text = encodeReceiptHandle({ ...handle, group: 'AAAA' }, secret);
    const at = text.indexOf('A');
    expect(at).toBeLessThan(text.indexOf('.'));
    expect(at).toBeGreaterThanOrEqual(0);
    const forged = `${text.slice(0, at)}\u0141${text.slice(at + 1)}`;
    expect(codeOf(() => decodeReceiptHandle(forged, secret))).toBe(Code.INVALID_RECEIPT_HANDLE);
  });
});
