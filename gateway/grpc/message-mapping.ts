/**
 * Converts messages between the public protocol (apache.rocketmq.v2.Message)
 * and the internal one (sluice.v1.Message / StoredMessage), checking what a
 * producer sends the way RocketMQ does: the declared message type must match
 * the fields set, tags carry no `|`, keys are not blank, a body digest (when
 * given) matches.
 */
import { createHash } from 'node:crypto';
import { crc32, gunzipSync } from 'node:zlib';
import { errors } from '../../common/errors.js';
import type {
  Message as PublicMessage,
  Message__Output as PublicMessageIn,
} from '../../common/generated/apache/rocketmq/v2/Message.js';
import type { SystemProperties } from '../../common/generated/apache/rocketmq/v2/SystemProperties.js';
import type { Message } from '../../common/generated/sluice/v1/Message.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { DLQ_TOPIC_PREFIX } from '../../common/names.js';
import type { TraceHeaders } from '../../common/telemetry/tracing.js';
import { toResource } from './client-context.js';
import { toDuration, toMillis, toTimestamp } from './proto-time.js';

export type PublicMessageType = 'NORMAL' | 'FIFO' | 'DELAY' | 'TRANSACTION';

/** Message types a Sluice topic takes (every topic takes all four). */
export const ACCEPTED_MESSAGE_TYPES: readonly PublicMessageType[] = [
  'NORMAL',
  'FIFO',
  'DELAY',
  'TRANSACTION',
];

/** Upper-case hex MD5, as the SDKs compute it. */
export function md5Hex(body: Uint8Array): string {
  return createHash('md5').update(body).digest('hex').toUpperCase();
}

function checkDigest(body: Buffer, type: string, checksum: string): void {
  let actual: string;
  switch (type) {
    case 'MD5':
      actual = md5Hex(body);
      break;
    case 'SHA1':
      actual = createHash('sha1').update(body).digest('hex').toUpperCase();
      break;
    case 'CRC32':
      actual = String(crc32(body));
      break;
    default:
      return;
  }
  if (actual !== checksum.toUpperCase()) throw errors.bodyDigestMismatch(type);
}

export interface ProducerContext {
  /** "host:port" of the producer as the gateway sees it. */
  peer: string;
  /** Client id: the producer group used to find a producer for check-back. */
  producerGroup: string;
  now: number;
  /** The call's W3C trace context from gRPC metadata, used when a message has no trace_context. */
  trace?: TraceHeaders;
}

/**
 * The trace context a message arrives with: its own `trace_context` (a W3C
 * traceparent, the protocol's field), else the call's `traceparent`
 * metadata. `tracestate` has no field in the protocol's message: it comes
 * from metadata, and only with the traceparent it belongs to.
 */
function arrivingTrace(
  traceContext: string | undefined,
  call: TraceHeaders | undefined,
): { traceparent: string; tracestate: string } {
  const own = traceContext?.trim() ?? '';
  const traceparent = own || call?.traceparent?.trim() || '';
  const tracestate =
    traceparent && traceparent === call?.traceparent?.trim() ? call.tracestate : '';
  return { traceparent, tracestate: tracestate?.trim() ?? '' };
}

/**
 * A producer's message as the broker takes it. `topic` is the broker-side
 * (namespace-qualified) name, already checked by the caller.
 */
export function toInternalMessage(
  m: PublicMessageIn,
  topic: string,
  ctx: ProducerContext,
): Message {
  const sp = m.system_properties;
  let body = Buffer.from(m.body);
  if (sp?.body_encoding === 'GZIP') {
    try {
      body = gunzipSync(body);
    } catch {
      throw errors.messageCorrupted('body_encoding is GZIP but the body does not gunzip');
    }
  }
  if (body.length === 0) throw errors.bodyEmpty();
  if (sp?.body_digest?.checksum)
    checkDigest(Buffer.from(m.body), sp.body_digest.type, sp.body_digest.checksum);

  const tag = sp?.tag ?? '';
  if (tag && (tag.includes('|') || tag.trim() === ''))
    throw errors.illegalTag(tag, 'must not be blank or contain |');
  const keys = sp?.keys ?? [];
  for (const k of keys) if (k.trim() === '') throw errors.illegalMessageKey('', 'blank key');
  const group = sp?.message_group ?? '';
  if (group !== '' && group.trim() === '') throw errors.illegalMessageGroup('blank');
  const deliveryMs = toMillis(sp?.delivery_timestamp) ?? 0;
  if ((sp?.lite_topic ?? '') !== '') throw errors.unsupported('a lite topic');
  if (sp?.priority !== undefined) throw errors.unsupported('message priority');

  const declared = sp?.message_type ?? 'MESSAGE_TYPE_UNSPECIFIED';
  let type: PublicMessageType;
  switch (declared) {
    case 'MESSAGE_TYPE_UNSPECIFIED':
      type = group ? 'FIFO' : deliveryMs > 0 ? 'DELAY' : 'NORMAL';
      break;
    case 'NORMAL':
    case 'FIFO':
    case 'DELAY':
    case 'TRANSACTION':
      type = declared;
      break;
    default:
      throw errors.unsupported(`message type ${declared}`);
  }
  if (type === 'FIFO' && !group)
    throw errors.conflictWithType('a FIFO message needs a message group');
  if (type !== 'FIFO' && group)
    throw errors.conflictWithType(`a ${type} message may not carry a message group`);
  if (type === 'DELAY' && deliveryMs <= 0)
    throw errors.conflictWithType('a DELAY message needs a delivery timestamp');
  if (type !== 'DELAY' && deliveryMs > 0) {
    throw errors.conflictWithType(`a ${type} message may not carry a delivery timestamp`);
  }

  return {
    topic,
    body,
    tag,
    keys,
    properties: m.user_properties,
    message_group: group,
    delivery_timestamp_ms: deliveryMs,
    transactional: type === 'TRANSACTION',
    message_id: sp?.message_id ?? '',
    born_timestamp_ms: toMillis(sp?.born_timestamp) ?? ctx.now,
    born_host: ctx.peer,
    producer_group: ctx.producerGroup,
    ...arrivingTrace(sp?.trace_context, ctx.trace),
  };
}

export interface DeliveryContext {
  namespace: string;
  /**
   * The topic the client read from (broker-side name). A message read from a
   * dead-letter queue shows that queue's topic, so an ack names it, and
   * carries its original topic in dead_letter_queue.
   */
  readFrom?: string;
  /** Invisible duration granted (pop deliveries). */
  invisibleMs?: number;
}

function typeOf(m: {
  message_group: string;
  delivery_timestamp_ms: number;
  transactional: boolean;
}): PublicMessageType {
  if (m.message_group) return 'FIFO';
  if (m.transactional) return 'TRANSACTION';
  if (m.delivery_timestamp_ms > 0) return 'DELAY';
  return 'NORMAL';
}

/** A stored message as a consumer (or a producer asked for check-back) receives it. */
export function toPublicMessage(s: StoredMessage__Output, ctx: DeliveryContext): PublicMessage {
  const m = s.message!;
  const sp: SystemProperties = {
    keys: m.keys,
    message_id: m.message_id,
    body_digest: { type: 'MD5', checksum: md5Hex(m.body) },
    body_encoding: 'IDENTITY',
    message_type: typeOf(m),
    born_timestamp: toTimestamp(m.born_timestamp_ms),
    born_host: m.born_host,
    store_timestamp: toTimestamp(s.store_timestamp_ms),
    store_host: s.store_host,
    queue_id: s.queue_id,
    queue_offset: s.queue_offset,
    delivery_attempt: s.delivery_attempt,
  };
  if (m.tag) sp.tag = m.tag;
  if (m.message_group) sp.message_group = m.message_group;
  if (m.delivery_timestamp_ms > 0) sp.delivery_timestamp = toTimestamp(m.delivery_timestamp_ms);
  // The producer's context (its send span with tracing on); tracestate has no field here.
  if (m.traceparent) sp.trace_context = m.traceparent;
  if (s.receipt_handle) {
    sp.receipt_handle = s.receipt_handle;
    if (ctx.invisibleMs !== undefined) sp.invisible_duration = toDuration(ctx.invisibleMs);
  }
  const topic = ctx.readFrom ?? m.topic;
  if (topic !== m.topic && topic.startsWith(DLQ_TOPIC_PREFIX)) {
    sp.dead_letter_queue = { topic: m.topic, message_id: m.message_id };
  }
  return {
    topic: toResource(topic, ctx.namespace),
    user_properties: m.properties,
    system_properties: sp,
    body: m.body,
  };
}
