/**
 * The gateway's spans of a message's life, for both transports (REST in
 * gateway/http/tracing.ts, gRPC v2 in gateway/grpc/*), following the
 * OpenTelemetry messaging conventions (common/telemetry/attributes.ts):
 *
 *  - send: one PRODUCER span `send <topic>` per message, child of the
 *    context the message arrived with (Message.traceparent / tracestate,
 *    which the transport filled from the request); the span's own context
 *    then replaces it, so the broker's store span and every later span of
 *    the message join the trace. With tracing off the arriving context is
 *    stored as is.
 *  - receive: one CONSUMER span `receive <topic>` per delivered message,
 *    child of the producer context stored with it (one trace per message),
 *    linked to the receive request's own context when it had one.
 *  - settle: one CLIENT span `ack|change_invisible|dead_letter <topic>` per
 *    request, child of the request's context; when the request carries none
 *    (the official RocketMQ SDKs send none), child of the context of the
 *    message its first receipt handle was delivered with, remembered at
 *    receive in a bounded cache (receipt handles stay free of trace data).
 *  - end transaction: one CLIENT span `commit|rollback <topic>`, child of
 *    the request's context, else of the transactional send's span.
 *
 * Everything here is skipped when tracing is off (tracingEnabled()).
 */
import {
  type Attributes,
  type Context,
  context,
  type Link,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { Code } from '../../common/errors.js';
import type { Message } from '../../common/generated/sluice/v1/Message.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { MESSAGING_SYSTEM, MessagingAttr } from '../../common/telemetry/attributes.js';
import {
  contextOfTraceparent,
  endSpan,
  spanContextOfTraceparent,
  type TraceHeaders,
  traceHeadersOf,
  tracer,
  tracingEnabled,
} from '../../common/telemetry/tracing.js';
import type { SendOutcome } from './gateway-service.js';

/**
 * Receipt handles (and transaction ids) whose message context is
 * remembered for settle spans. At ~300 bytes an entry this bounds the cache
 * near 5 MiB; a handle settled after 16k later deliveries starts a new root.
 */
export const DEFAULT_SETTLE_CONTEXT_ENTRIES = 16_384;
/** Links a batch settle span carries to messages of other traces, at most. */
const MAX_SETTLE_LINKS = 32;

/** A map that forgets its least recently used entry past `max` entries. */
class LruMap<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }
}

/**
 * Process-wide, like the tracer provider it serves: every transport of the
 * gateway settles handles the other delivered.
 */
const settleContexts = new LruMap<TraceHeaders>(DEFAULT_SETTLE_CONTEXT_ENTRIES);

/** Entries in the settle-context cache (tests). */
export function settleContextCount(): number {
  return settleContexts.size;
}

function hasSpan(ctx: Context): boolean {
  return trace.getSpanContext(ctx) !== undefined;
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
 * Starts the producer spans of a send (tracing on): each message's arriving
 * context (traceparent / tracestate, set by the transport) is its span's
 * parent and is replaced by the span's context. Undefined with tracing off
 * (the arriving context is then stored unchanged).
 */
export function startSendTrace(topic: string, messages: Message[]): SendTrace | undefined {
  if (!tracingEnabled() || messages.length === 0) return undefined;
  const t = tracer();
  let first: Context = ROOT_CONTEXT;
  const spans: Span[] = messages.map((m, i) => {
    const parent = contextOfTraceparent(m.traceparent, m.tracestate) ?? ROOT_CONTEXT;
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
    if (m.message_id) attributes[MessagingAttr.MESSAGE_ID] = m.message_id;
    if (messages.length > 1) attributes[MessagingAttr.BATCH_COUNT] = messages.length;
    const span = t.startSpan(`send ${topic}`, { kind: SpanKind.PRODUCER, attributes }, parent);
    const { traceparent, tracestate } = traceHeadersOf(span);
    m.traceparent = traceparent;
    m.tracestate = tracestate;
    if (i === 0) first = trace.setSpan(parent, span);
    return span;
  });
  return {
    context: first,
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
        } else if (r.transactionId) {
          // The commit / rollback of this half message joins its trace.
          settleContexts.set(`tx:${r.transactionId}`, {
            traceparent: messages[i]!.traceparent,
            tracestate: messages[i]!.tracestate,
          });
        }
        span.end();
      });
    },
  };
}

/**
 * Records the receive of `messages` (started at `startTime`, epoch ms): a
 * span per message, child of the producer context it was stored with,
 * linked to the receive request's context (`request`) when it has a span.
 */
export function traceReceive(
  topic: string,
  group: string,
  messages: readonly StoredMessage__Output[],
  request: Context,
  startTime: number,
): void {
  if (!tracingEnabled() || messages.length === 0) return;
  const requestSpan = trace.getSpanContext(request);
  const links: Link[] = requestSpan ? [{ context: requestSpan }] : [];
  const t = tracer();
  for (const sm of messages) {
    const m = sm.message;
    if (!m) continue;
    const stored = contextOfTraceparent(m.traceparent, m.tracestate);
    if (stored && sm.receipt_handle) {
      settleContexts.set(sm.receipt_handle, {
        traceparent: m.traceparent,
        tracestate: m.tracestate,
      });
    }
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
      stored ?? ROOT_CONTEXT,
    ).end();
  }
}

export type SettleOperation = 'ack' | 'change_invisible' | 'dead_letter';

export interface SettleTrace<T> {
  operation: SettleOperation;
  topic: string;
  group: string;
  /** The receipt handles settled. */
  handles: readonly string[];
  /** The request's own context (ROOT_CONTEXT when it carried none). */
  request: Context;
  /** How many handles of the result failed (the span is then marked failed). */
  failures?: (result: T) => number;
  /** The handle that replaces the settled one (change_invisible), which keeps its context. */
  renewed?: (result: T) => string | undefined;
}

/**
 * The parent of a settle span and its links: the request's context, else
 * the remembered context of the first handle's message; the other handles'
 * messages of other traces become links.
 */
function settleParent(
  request: Context,
  handles: readonly string[],
): { parent: Context; links: Link[]; first: TraceHeaders | undefined } {
  const first = handles.length > 0 ? settleContexts.get(handles[0]!) : undefined;
  const parent = hasSpan(request)
    ? request
    : (contextOfTraceparent(first?.traceparent, first?.tracestate) ?? ROOT_CONTEXT);
  const traceId = trace.getSpanContext(parent)?.traceId;
  const links: Link[] = [];
  const seen = new Set<string>();
  for (let i = 1; i < handles.length && links.length < MAX_SETTLE_LINKS; i++) {
    const h = settleContexts.get(handles[i]!);
    const sc = spanContextOfTraceparent(h?.traceparent, h?.tracestate);
    if (!sc || sc.traceId === traceId || seen.has(sc.spanId)) continue;
    seen.add(sc.spanId);
    links.push({ context: sc });
  }
  return { parent, links, first };
}

/** Runs a settle operation inside its span (tracing on); see the file comment for its parent. */
export async function traceSettle<T>(s: SettleTrace<T>, run: () => Promise<T>): Promise<T> {
  if (!tracingEnabled()) return run();
  const { parent, links, first } = settleParent(s.request, s.handles);
  const attributes: Attributes = {
    [MessagingAttr.SYSTEM]: MESSAGING_SYSTEM,
    [MessagingAttr.DESTINATION]: s.topic,
    [MessagingAttr.OPERATION_TYPE]: 'settle',
    [MessagingAttr.OPERATION_NAME]: s.operation,
    [MessagingAttr.CONSUMER_GROUP]: s.group,
  };
  if (s.handles.length > 1) attributes[MessagingAttr.BATCH_COUNT] = s.handles.length;
  const span = tracer().startSpan(
    `${s.operation} ${s.topic}`,
    { kind: SpanKind.CLIENT, attributes, links },
    parent,
  );
  try {
    const out = await context.with(trace.setSpan(parent, span), run);
    const failed = s.failures?.(out) ?? 0;
    if (failed > 0) {
      span.setAttribute('sluice.settle.failed', failed);
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: `${failed} of ${s.handles.length} failed`,
      });
    }
    const next = s.renewed?.(out);
    if (next && first) settleContexts.set(next, first);
    // A settled delivery is over (a renewed one lives on under its new handle).
    for (const h of s.handles) settleContexts.delete(h);
    span.end();
    return out;
  } catch (err) {
    endSpan(span, err);
    throw err;
  }
}

export interface EndTransactionTrace {
  topic: string;
  transactionId: string;
  messageId: string;
  commit: boolean;
  /** Answering a broker's check-back rather than deciding unprompted. */
  fromCheck: boolean;
  /** The request's own context (ROOT_CONTEXT when it carried none). */
  request: Context;
}

/** Runs a transaction's commit / rollback inside its span (tracing on). */
export async function traceEndTransaction<T>(
  e: EndTransactionTrace,
  run: () => Promise<T>,
): Promise<T> {
  if (!tracingEnabled()) return run();
  const key = `tx:${e.transactionId}`;
  const sent = settleContexts.get(key);
  const parent = hasSpan(e.request)
    ? e.request
    : (contextOfTraceparent(sent?.traceparent, sent?.tracestate) ?? ROOT_CONTEXT);
  const operation = e.commit ? 'commit' : 'rollback';
  const attributes: Attributes = {
    [MessagingAttr.SYSTEM]: MESSAGING_SYSTEM,
    [MessagingAttr.DESTINATION]: e.topic,
    [MessagingAttr.OPERATION_TYPE]: 'settle',
    [MessagingAttr.OPERATION_NAME]: operation,
    [MessagingAttr.MESSAGE_ID]: e.messageId,
    [MessagingAttr.TRANSACTION_ID]: e.transactionId,
    'sluice.transaction.from_check': e.fromCheck,
  };
  const span = tracer().startSpan(
    `${operation} ${e.topic}`,
    { kind: SpanKind.CLIENT, attributes },
    parent,
  );
  try {
    const out = await context.with(trace.setSpan(parent, span), run);
    settleContexts.delete(key);
    span.end();
    return out;
  } catch (err) {
    endSpan(span, err);
    throw err;
  }
}
