/**
 * The broker's span of a send: one SERVER span `store <topic>` per message
 * that arrives with a trace context (Message.traceparent, which the gateway
 * set to its producer span), as that span's child, so one trace follows the
 * message. Batched RPCs carry messages of many traces, which is why the
 * parent is the message's context and not the RPC's; the RPC's own context
 * (grpc metadata `traceparent`), when there is one, becomes a link.
 * Installed only when tracing is on.
 */
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import {
  type Attributes,
  type Link,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { Code } from '../common/errors.js';
import type { SendMessagesRequest__Output } from '../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse } from '../common/generated/sluice/v1/SendMessagesResponse.js';
import { MESSAGING_SYSTEM, MessagingAttr } from '../common/telemetry/attributes.js';
import { extractTraceMetadata } from '../common/telemetry/grpc-metadata.js';
import { contextOfTraceparent, endSpan, tracer } from '../common/telemetry/tracing.js';

type SendHandler = (
  call: ServerUnaryCall<SendMessagesRequest__Output, SendMessagesResponse>,
  callback: sendUnaryData<SendMessagesResponse>,
) => void;

export function traceStore(brokerName: string, handler: SendHandler): SendHandler {
  return (call, callback) => {
    const entries = call.request?.entries ?? [];
    const rpc = trace.getSpanContext(extractTraceMetadata(call.metadata));
    const links: Link[] = rpc ? [{ context: rpc }] : [];
    const t = tracer();
    const spans: (Span | undefined)[] = entries.map((e) => {
      const m = e.message;
      const parent = m ? contextOfTraceparent(m.traceparent, m.tracestate) : undefined;
      if (!m || !parent) return undefined;
      const attributes: Attributes = {
        [MessagingAttr.SYSTEM]: MESSAGING_SYSTEM,
        [MessagingAttr.DESTINATION]: m.topic,
        [MessagingAttr.OPERATION_TYPE]: 'send',
        [MessagingAttr.OPERATION_NAME]: 'store',
        [MessagingAttr.BROKER]: brokerName,
        [MessagingAttr.BODY_SIZE]: m.body.length,
      };
      if (m.tag) attributes[MessagingAttr.TAG] = m.tag;
      if (m.keys.length > 0) attributes[MessagingAttr.KEYS] = [...m.keys];
      if (m.message_group) attributes[MessagingAttr.MESSAGE_GROUP] = m.message_group;
      if (entries.length > 1) attributes[MessagingAttr.BATCH_COUNT] = entries.length;
      return t.startSpan(`store ${m.topic}`, { kind: SpanKind.SERVER, attributes, links }, parent);
    });
    if (spans.every((s) => s === undefined)) {
      handler(call, callback);
      return;
    }
    handler(call, (err, value, ...rest) => {
      const results = value?.results ?? [];
      spans.forEach((span, i) => {
        if (!span) return;
        if (err) {
          endSpan(span, err);
          return;
        }
        const r = results[i];
        if (r?.message_id) span.setAttribute(MessagingAttr.MESSAGE_ID, r.message_id);
        if (r?.queue_id !== undefined)
          span.setAttribute(MessagingAttr.PARTITION, String(r.queue_id));
        const code = r?.status?.code ?? Code.OK;
        if (code !== Code.OK) {
          span.setAttribute('error.type', String(code));
          span.setStatus({ code: SpanStatusCode.ERROR, message: r?.status?.message ?? '' });
        }
        span.end();
      });
      (callback as (...a: unknown[]) => void)(err, value, ...rest);
    });
  };
}
