/**
 * Spans and trace context of the REST API (OpenTelemetry messaging
 * conventions, common/telemetry/attributes.ts):
 *
 *  - send: one PRODUCER span `send <topic>` per message, child of the
 *    request's `traceparent` header; its context is stored with the message
 *    (Message.traceparent / tracestate → broker property), so the broker's
 *    store span and every later span of that message join the trace. With
 *    tracing off the header is stored as is.
 *  - receive: one CONSUMER span `receive <topic>` per delivered message,
 *    child of the producer's stored context (one trace per message), linked
 *    to the receive request's own context when it sent one.
 *  - settle: one CLIENT span `ack|change_invisible|dead_letter <topic>` per
 *    request, child of the request's `traceparent` (consumers send back the
 *    traceparent they got with the message).
 *
 * Everything here is skipped when tracing is off (tracingEnabled()).
 */
import {
  type Attributes,
  type Context,
  context,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api';
import { Code } from '../../common/errors.js';
import type { Message } from '../../common/generated/sluice/v1/Message.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { MESSAGING_SYSTEM, MessagingAttr } from '../../common/telemetry/attributes.js';
import { TRACEPARENT, TRACESTATE } from '../../common/telemetry/trace-context.js';
import {
  contextOfTraceparent,
  endSpan,
  traceHeadersOf,
  tracer,
  tracingEnabled,
} from '../../common/telemetry/tracing.js';
import type { SendOutcome } from '../core/gateway-service.js';
import type { HeaderView } from './headers.js';

const getter: TextMapGetter<HeaderView> = {
  get: (h, key) => h.get(key) ?? undefined,
  keys: (h) => [...h].map(([k]) => k),
};

/** The context the request's traceparent/tracestate headers carry (ROOT_CONTEXT when none). */
export function requestContext(headers: HeaderView): Context {
  return propagation.extract(ROOT_CONTEXT, headers, getter);
}

function bodySize(m: Message): number {
  const b = m.body;
  return typeof b === 'string' ? Buffer.byteLength(b) : (b?.length ?? 0);
}

export interface SendTrace {
  /** Context with the first message's span active, for the send's log lines. */
  readonly context: Context;
  end(results: readonly SendOutcome[] | undefined, err?: unknown): void;
}

/**
 * Prepares a send's messages: with tracing on, starts their producer spans
 * and stores each span's context in its message; with tracing off, stores
 * the request's own traceparent/tracestate headers (if any) unchanged.
 */
export function startSendTrace(
  topic: string,
  messages: Message[],
  headers: HeaderView,
): SendTrace | undefined {
  if (!tracingEnabled()) {
    const tp = headers.get(TRACEPARENT);
    if (tp) {
      const ts = headers.get(TRACESTATE) ?? '';
      for (const m of messages) {
        m.traceparent = tp;
        if (ts) m.tracestate = ts;
      }
    }
    return undefined;
  }
  const parent = requestContext(headers);
  const t = tracer();
  const spans: Span[] = messages.map((m) => {
    const attributes: Attributes = {
      [MessagingAttr.SYSTEM]: MESSAGING_SYSTEM,
      [MessagingAttr.DESTINATION]: topic,
      [MessagingAttr.OPERATION_TYPE]: 'send',
      [MessagingAttr.OPERATION_NAME]: 'send',
      [MessagingAttr.BODY_SIZE]: bodySize(m),
    };
    if (m.tag) attributes[MessagingAttr.TAG] = m.tag;
    if (m.keys && m.keys.length > 0) attributes[MessagingAttr.KEYS] = [...m.keys];
    if (m.message_group) attributes[MessagingAttr.MESSAGE_GROUP] = m.message_group;
    if (messages.length > 1) attributes[MessagingAttr.BATCH_COUNT] = messages.length;
    const span = t.startSpan(`send ${topic}`, { kind: SpanKind.PRODUCER, attributes }, parent);
    const { traceparent, tracestate } = traceHeadersOf(span);
    m.traceparent = traceparent;
    if (tracestate) m.tracestate = tracestate;
    return span;
  });
  return {
    context: trace.setSpan(parent, spans[0]!),
    end(results, err) {
      spans.forEach((span, i) => {
        const r = results?.[i];
        if (!r) {
          endSpan(span, err ?? 'no result');
          return;
        }
        if (r.messageId) span.setAttribute(MessagingAttr.MESSAGE_ID, r.messageId);
        if (r.broker) span.setAttribute(MessagingAttr.BROKER, r.broker);
        if (r.queueId !== undefined) span.setAttribute(MessagingAttr.PARTITION, String(r.queueId));
        if (r.status.code !== Code.OK) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: r.status.message });
          span.setAttribute('error.type', String(r.status.code));
        }
        span.end();
      });
    },
  };
}

/**
 * Records the receive of `messages` (started at `startTime`, epoch ms): a
 * span per message, child of the producer context it was stored with.
 */
export function traceReceive(
  topic: string,
  group: string,
  messages: readonly StoredMessage__Output[],
  headers: HeaderView,
  startTime: number,
): void {
  if (!tracingEnabled() || messages.length === 0) return;
  const requestSpan = trace.getSpanContext(requestContext(headers));
  const links: Link[] = requestSpan ? [{ context: requestSpan }] : [];
  const t = tracer();
  for (const sm of messages) {
    const m = sm.message;
    if (!m) continue;
    const parent = contextOfTraceparent(m.traceparent, m.tracestate) ?? ROOT_CONTEXT;
    const attributes: Attributes = {
      [MessagingAttr.SYSTEM]: MESSAGING_SYSTEM,
      [MessagingAttr.DESTINATION]: topic,
      [MessagingAttr.OPERATION_TYPE]: 'receive',
      [MessagingAttr.OPERATION_NAME]: 'receive',
      [MessagingAttr.CONSUMER_GROUP]: group,
      [MessagingAttr.MESSAGE_ID]: m.message_id,
      [MessagingAttr.BODY_SIZE]: m.body.length,
      [MessagingAttr.PARTITION]: String(sm.queue_id),
      [MessagingAttr.BROKER]: sm.broker_name,
      [MessagingAttr.DELIVERY_ATTEMPT]: sm.delivery_attempt,
    };
    if (m.tag) attributes[MessagingAttr.TAG] = m.tag;
    if (m.keys.length > 0) attributes[MessagingAttr.KEYS] = [...m.keys];
    if (m.message_group) attributes[MessagingAttr.MESSAGE_GROUP] = m.message_group;
    if (messages.length > 1) attributes[MessagingAttr.BATCH_COUNT] = messages.length;
    t.startSpan(
      `receive ${topic}`,
      { kind: SpanKind.CONSUMER, attributes, links, startTime },
      parent,
    ).end();
  }
}

export type SettleOperation = 'ack' | 'change_invisible' | 'dead_letter';

/**
 * Runs a settle operation inside its span (child of the request's
 * traceparent); `count` is how many receipt handles it settles.
 */
export async function traceSettle<T>(
  operation: SettleOperation,
  topic: string,
  group: string,
  count: number,
  headers: HeaderView,
  run: () => Promise<T>,
  failures?: (result: T) => number,
): Promise<T> {
  if (!tracingEnabled()) return run();
  const parent = requestContext(headers);
  const attributes: Attributes = {
    [MessagingAttr.SYSTEM]: MESSAGING_SYSTEM,
    [MessagingAttr.DESTINATION]: topic,
    [MessagingAttr.OPERATION_TYPE]: 'settle',
    [MessagingAttr.OPERATION_NAME]: operation,
    [MessagingAttr.CONSUMER_GROUP]: group,
  };
  if (count > 1) attributes[MessagingAttr.BATCH_COUNT] = count;
  const span = tracer().startSpan(
    `${operation} ${topic}`,
    { kind: SpanKind.CLIENT, attributes },
    parent,
  );
  try {
    const out = await context.with(trace.setSpan(parent, span), run);
    const failed = failures?.(out) ?? 0;
    if (failed > 0) {
      span.setAttribute('sluice.settle.failed', failed);
      span.setStatus({ code: SpanStatusCode.ERROR, message: `${failed} of ${count} failed` });
    }
    span.end();
    return out;
  } catch (err) {
    endSpan(span, err);
    throw err;
  }
}
