/** Converts between REST messages (JSON or raw body + headers) and the internal protocol's shapes. */
import type { z } from '@hono/zod-openapi';
import { Code, codeName, errors } from '../../common/errors.js';
import type { Message } from '../../common/generated/sluice/v1/Message.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import type { SendOutcome } from '../core/gateway-service.js';
import type { HeaderView } from './headers.js';
import type { DeliveredMessageSchema, SendMessageSchema, SendResultSchema } from './schemas.js';
import { SendHeadersSchema } from './schemas.js';
import { parse } from './validate.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
export const PROPERTY_HEADER_PREFIX = 'x-mq-property-';

function deliveryOf(
  deliveryTime: number | undefined,
  delaySeconds: number | undefined,
  now: number,
): number {
  if (deliveryTime !== undefined && delaySeconds !== undefined) {
    throw errors.illegalDeliveryTime('give either deliveryTime or delaySeconds, not both');
  }
  if (deliveryTime !== undefined) return deliveryTime;
  if (delaySeconds !== undefined && delaySeconds > 0) return now + delaySeconds * 1000;
  return 0;
}

/** A JSON message (already validated) as the broker takes it. `index` names the entry in errors. */
export function toMessage(
  m: z.infer<typeof SendMessageSchema>,
  now = Date.now(),
  index?: number,
): Message {
  let body: Buffer;
  if (m.bodyEncoding === 'base64') {
    const clean = m.body.replace(/\s+/g, '');
    if (clean.length % 4 === 1 || !BASE64.test(clean.replace(/-/g, '+').replace(/_/g, '/'))) {
      const field = index === undefined ? 'body' : `messages.${index}.body`;
      throw errors.badRequest(`${field}: not valid base64`, { field });
    }
    body = Buffer.from(clean, 'base64');
  } else {
    body = Buffer.from(m.body, 'utf8');
  }
  return {
    body,
    tag: m.tag ?? '',
    keys: m.keys ?? [],
    properties: m.properties ?? {},
    message_group: m.messageGroup ?? '',
    delivery_timestamp_ms: deliveryOf(m.deliveryTime, m.delaySeconds, now),
    transactional: m.transactional ?? false,
    born_timestamp_ms: now,
  };
}

/** True when the request uses raw mode: a non-JSON content type, or any x-mq-* header. */
export function isRawSend(headers: HeaderView): boolean {
  const type = headers.get('content-type') ?? '';
  if (!/^application\/json\b/i.test(type.trim())) return true;
  for (const [name] of headers) if (name.startsWith('x-mq-')) return true;
  return false;
}

/** A raw-mode message: the body as is, attributes from x-mq-* headers. */
export function rawToMessage(body: Buffer, headers: HeaderView, now = Date.now()): Message {
  const h = parse(
    SendHeadersSchema,
    {
      'x-mq-tag': headers.get('x-mq-tag') ?? undefined,
      'x-mq-keys': headers.get('x-mq-keys') ?? undefined,
      'x-mq-message-group': headers.get('x-mq-message-group') ?? undefined,
      'x-mq-delay-seconds': headers.get('x-mq-delay-seconds') ?? undefined,
      'x-mq-delivery-time': headers.get('x-mq-delivery-time') ?? undefined,
      'x-mq-transactional': headers.get('x-mq-transactional') ?? undefined,
    },
    'header',
  );
  const properties: Record<string, string> = {};
  for (const [name, value] of headers) {
    if (name.startsWith(PROPERTY_HEADER_PREFIX) && name.length > PROPERTY_HEADER_PREFIX.length) {
      properties[name.slice(PROPERTY_HEADER_PREFIX.length)] = value;
    }
  }
  const keys = (h['x-mq-keys'] ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  return {
    body,
    tag: h['x-mq-tag'] ?? '',
    keys,
    properties,
    message_group: h['x-mq-message-group'] ?? '',
    delivery_timestamp_ms: deliveryOf(
      h['x-mq-delivery-time'] === undefined ? undefined : Number(h['x-mq-delivery-time']),
      h['x-mq-delay-seconds'] === undefined ? undefined : Number(h['x-mq-delay-seconds']),
      now,
    ),
    transactional: h['x-mq-transactional'] === 'true',
    born_timestamp_ms: now,
  };
}

/** A stored message as JSON; the body is UTF-8 text when it decodes as such, base64 otherwise. */
export function toDeliveredJson(m: StoredMessage__Output): z.infer<typeof DeliveredMessageSchema> {
  const msg = m.message!;
  let body: string;
  let bodyEncoding: 'utf8' | 'base64';
  try {
    body = utf8.decode(msg.body);
    bodyEncoding = 'utf8';
  } catch {
    body = msg.body.toString('base64');
    bodyEncoding = 'base64';
  }
  // Built field by field: this runs once per delivered message on the hot path.
  const out: z.infer<typeof DeliveredMessageSchema> = {
    messageId: msg.message_id,
    topic: msg.topic,
    body,
    bodyEncoding,
    keys: msg.keys,
    properties: msg.properties,
    queueId: m.queue_id,
    offset: m.queue_offset,
    bornTimestamp: msg.born_timestamp_ms,
    storeTimestamp: m.store_timestamp_ms,
    deliveryAttempt: m.delivery_attempt,
    broker: m.broker_name,
  };
  if (msg.tag) out.tag = msg.tag;
  if (msg.message_group) out.messageGroup = msg.message_group;
  if (m.receipt_handle) out.receiptHandle = m.receipt_handle;
  if (msg.traceparent) out.traceparent = msg.traceparent;
  if (msg.tracestate) out.tracestate = msg.tracestate;
  return out;
}

/** A send result as JSON. Built field by field: this runs once per message on the hot path. */
export function sendResultJson(r: SendOutcome): z.infer<typeof SendResultSchema> {
  const out: z.infer<typeof SendResultSchema> = {
    status: codeName(r.status.code),
    code: r.status.code,
  };
  if (r.messageId) out.messageId = r.messageId;
  if (r.status.code !== Code.OK) out.message = r.status.message;
  if (r.broker) {
    out.broker = r.broker;
    out.queueId = r.queueId;
    out.offset = r.offset;
  }
  if (r.transactionId) out.transactionId = r.transactionId;
  return out;
}

export function entryStatusJson(s: { code: number; message: string }): {
  status: string;
  code: number;
  message?: string;
} {
  return {
    status: codeName(s.code),
    code: s.code,
    ...(s.code !== Code.OK ? { message: s.message } : {}),
  };
}
