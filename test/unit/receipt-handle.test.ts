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
});
