/** Converts between REST JSON messages and the internal protocol's shapes. */
import { errors } from '../../common/errors.js';
import type { Message } from '../../common/generated/sluice/v1/Message.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import type { z } from '@hono/zod-openapi';
import type { DeliveredMessageSchema, SendMessageSchema } from './schemas.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function toMessage(m: z.infer<typeof SendMessageSchema>, now = Date.now()): Message {
  const body = m.bodyEncoding === 'base64' ? Buffer.from(m.body, 'base64') : Buffer.from(m.body, 'utf8');
  if (m.bodyEncoding === 'base64' && body.toString('base64').replace(/=+$/, '') !== m.body.replace(/=+$/, '')) {
    throw errors.badRequest('body is not valid base64', { field: 'body' });
  }
  let delivery = 0;
  if (m.deliveryTime !== undefined) delivery = m.deliveryTime;
  else if (m.delaySeconds !== undefined && m.delaySeconds > 0) delivery = now + m.delaySeconds * 1000;
  return {
    body,
    tag: m.tag ?? '',
    keys: m.keys ?? [],
    properties: m.properties ?? {},
    message_group: m.messageGroup ?? '',
    delivery_timestamp_ms: delivery,
    transactional: m.transactional ?? false,
    born_timestamp_ms: now,
  };
}

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
  return {
    messageId: msg.message_id,
    topic: msg.topic,
    body,
    bodyEncoding,
    ...(msg.tag ? { tag: msg.tag } : {}),
    keys: msg.keys,
    properties: msg.properties,
    ...(msg.message_group ? { messageGroup: msg.message_group } : {}),
    queueId: m.queue_id,
    offset: m.queue_offset,
    bornTimestamp: msg.born_timestamp_ms,
    storeTimestamp: m.store_timestamp_ms,
    deliveryAttempt: m.delivery_attempt,
    receiptHandle: m.receipt_handle,
    broker: m.broker_name,
  };
}
