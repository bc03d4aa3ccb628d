/**
 * The broker's span of a send: one SERVER span `store <topic>` per message
 * that arrives with a trace context (Message.traceparent, which the gateway
 * set to its producer span), as that span's child, so one trace follows the
 * message. Batched RPCs carry messages of many traces, which is why the
 * parent is the message's context and not the RPC's; the RPC's own context
 * (grpc metadata `traceparent`), when there is one, becomes a link.
 *
 * Where the time goes, as events on each span (all messages of one RPC
 * share one append):
 *  - `commitlog.written`: the batch is in the commitlog (page cache);
 *  - `commitlog.flushed`: SYNC_FLUSH only, the group commit's fdatasync
 *    covering it finished (the gap before it is the flush wait);
 *  - `replica.acked`: SYNC_MASTER only, a slave has the bytes (the gap
 *    before it is the replication wait), with the failure code if it timed
 *    out.
 * The send service reports these moments through SendPhases, found for a
 * call with sendPhasesOf(call) (undefined when tracing is off or the call
 * carries no traced message). Installed only when tracing is on.
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
import { sendEntriesOf } from '../common/compact-messages.js';
import { sendResultsOf } from '../common/compact-send-results.js';
import { Code } from '../common/errors.js';
import type { SendEntry__Output } from '../common/generated/sluice/v1/SendEntry.js';
import type { SendMessagesRequest__Output } from '../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse } from '../common/generated/sluice/v1/SendMessagesResponse.js';
import { MESSAGING_SYSTEM, MessagingAttr } from '../common/telemetry/attributes.js';
import { extractTraceMetadata } from '../common/telemetry/grpc-metadata.js';
import { contextOfTraceparent, endSpan, tracer } from '../common/telemetry/tracing.js';
import type { SendPhases } from './messaging/send-service.js';
import type { BrokerOptions } from './options.js';

type SendHandler = (
  call: ServerUnaryCall<SendMessagesRequest__Output, SendMessagesResponse>,
  callback: sendUnaryData<SendMessagesResponse>,
) => void;

/** Phases of the calls whose store spans are open; entries go with their call. */
const phasesByCall = new WeakMap<object, SendPhases>();

/** The SendPhases that report into a call's store spans, if it has any. */
export function sendPhasesOf(call: object): SendPhases | undefined {
  return phasesByCall.get(call);
}

/** Events of `spans` for the phases this broker's configuration waits for. */
function phasesOf(
  spans: readonly Span[],
  options: Pick<BrokerOptions, 'flushDiskType' | 'brokerRole'>,
): SendPhases {
  const event = (name: string, attributes?: Attributes) => {
    for (const s of spans) s.addEvent(name, attributes);
  };
  return {
    written: () => event('commitlog.written'),
    stored:
      options.flushDiskType === 'SYNC_FLUSH' ? () => event('commitlog.flushed') : () => undefined,
    replicated:
      options.brokerRole === 'SYNC_MASTER'
        ? (code) => event('replica.acked', code === Code.OK ? {} : { 'error.type': String(code) })
        : () => undefined,
  };
}

export function traceStore(
  options: Pick<BrokerOptions, 'brokerName' | 'flushDiskType' | 'brokerRole'>,
  handler: SendHandler,
): SendHandler {
  return (call, callback) => {
    let entries: SendEntry__Output[] = [];
    try {
      entries = call.request ? sendEntriesOf(call.request) : [];
    } catch {
      // Malformed compact_entries: the handler answers BAD_REQUEST; nothing to trace.
    }
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
        [MessagingAttr.BROKER]: options.brokerName,
        [MessagingAttr.BODY_SIZE]: m.body.length,
      };
      if (m.tag) attributes[MessagingAttr.TAG] = m.tag;
      if (m.keys.length > 0) attributes[MessagingAttr.KEYS] = [...m.keys];
      if (m.message_group) attributes[MessagingAttr.MESSAGE_GROUP] = m.message_group;
      if (entries.length > 1) attributes[MessagingAttr.BATCH_COUNT] = entries.length;
      return t.startSpan(`store ${m.topic}`, { kind: SpanKind.SERVER, attributes, links }, parent);
    });
    const open = spans.filter((s): s is Span => s !== undefined);
    if (open.length === 0) {
      handler(call, callback);
      return;
    }
    phasesByCall.set(call, phasesOf(open, options));
    handler(call, (err, value, ...rest) => {
      phasesByCall.delete(call);
      const results = value ? sendResultsOf(value) : [];
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
