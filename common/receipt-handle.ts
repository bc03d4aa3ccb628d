/**
 * Receipt handles: self-describing and tamper-evident, so any gateway replica
 * can route an ack to the right broker and a broker can refuse a forged one.
 *
 * Format: `<payload>.<mac>`, both base64url. The payload is the JSON array
 * [version, brokerName, topic, queueId, offset, popTimeMs, invisibleMs,
 * attempt, group]; the mac is the first 16 bytes of HMAC-SHA256(secret,
 * payload). `topic` is the topic the message was read from (a %RETRY% topic
 * for redeliveries), so an ack names exactly one consume-queue slot.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { errors } from './errors.js';

export interface ReceiptHandle {
  brokerName: string;
  topic: string;
  queueId: number;
  /** Queue offset of the message in `topic`. */
  offset: number;
  /** When the message was popped, epoch ms; tells deliveries of one message apart. */
  popTime: number;
  /** Invisible duration granted at pop, ms. */
  invisibleMs: number;
  /** Delivery attempt, 1-based. */
  attempt: number;
  group: string;
}

const VERSION = 1;
const MAC_BYTES = 16;

function mac(secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest().subarray(0, MAC_BYTES);
}

export function encodeReceiptHandle(h: ReceiptHandle, secret: string): string {
  const payload = Buffer.from(
    JSON.stringify([
      VERSION,
      h.brokerName,
      h.topic,
      h.queueId,
      h.offset,
      h.popTime,
      h.invisibleMs,
      h.attempt,
      h.group,
    ]),
  ).toString('base64url');
  return `${payload}.${mac(secret, payload).toString('base64url')}`;
}

/** The time a handle's message becomes visible again, epoch ms. */
export function visibleAt(h: ReceiptHandle): number {
  return h.popTime + h.invisibleMs;
}

/**
 * Decodes and, when a secret is given, verifies a handle. Throws
 * INVALID_RECEIPT_HANDLE for anything garbled or forged.
 */
export function decodeReceiptHandle(text: string, secret?: string): ReceiptHandle {
  const dot = typeof text === 'string' ? text.indexOf('.') : -1;
  if (dot <= 0 || text.length > 2048) throw errors.invalidReceiptHandle('malformed');
  const payload = text.slice(0, dot);
  if (secret !== undefined) {
    const given = Buffer.from(text.slice(dot + 1), 'base64url');
    const expected = mac(secret, payload);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw errors.invalidReceiptHandle(
        'signature does not match (forged or from another cluster)',
      );
    }
  }
  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw errors.invalidReceiptHandle('malformed');
  }
  if (!Array.isArray(fields) || fields.length !== 9 || fields[0] !== VERSION) {
    throw errors.invalidReceiptHandle('unknown version');
  }
  const [, brokerName, topic, queueId, offset, popTime, invisibleMs, attempt, group] = fields;
  if (
    typeof brokerName !== 'string' ||
    typeof topic !== 'string' ||
    typeof group !== 'string' ||
    ![queueId, offset, popTime, invisibleMs, attempt].every((n) => Number.isSafeInteger(n))
  ) {
    throw errors.invalidReceiptHandle('malformed');
  }
  return {
    brokerName,
    topic,
    queueId: queueId as number,
    offset: offset as number,
    popTime: popTime as number,
    invisibleMs: invisibleMs as number,
    attempt: attempt as number,
    group,
  };
}
