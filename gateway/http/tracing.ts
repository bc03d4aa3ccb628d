/**
 * Trace context of the REST API: a request's `traceparent` / `tracestate`
 * headers are the parent of its spans (send, settle, transaction end) and a
 * link of its receive spans. The spans themselves are the transport-free
 * ones of gateway/core/message-tracing.ts, shared with gRPC. Consumers
 * continue a message's trace by sending the traceparent they got with it
 * back on the ack; without one the ack still joins the trace when this
 * gateway delivered the message (see message-tracing.ts).
 */
import { type Context, propagation, ROOT_CONTEXT, type TextMapGetter } from '@opentelemetry/api';
import type { Message } from '../../common/generated/sluice/v1/Message.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { TRACEPARENT, TRACESTATE, tracingEnabled } from '../../common/telemetry/tracing.js';
import {
  type SendTrace,
  type SettleOperation,
  startSendTrace as startCoreSendTrace,
  traceEndTransaction as traceCoreEndTransaction,
  traceReceive as traceCoreReceive,
  traceSettle as traceCoreSettle,
} from '../core/message-tracing.js';
import type { HeaderView } from './headers.js';

export type { SendTrace, SettleOperation };

const getter: TextMapGetter<HeaderView> = {
  get: (h, key) => h.get(key) ?? undefined,
  keys: (h) => [...h].map(([k]) => k),
};

/** The context the request's traceparent/tracestate headers carry (ROOT_CONTEXT when none or tracing is off). */
export function requestContext(headers: HeaderView): Context {
  return propagation.extract(ROOT_CONTEXT, headers, getter);
}

/**
 * Gives a send's messages the request's trace context and, with tracing on,
 * starts their producer spans (which then replace it).
 */
export function startSendTrace(
  topic: string,
  messages: Message[],
  headers: HeaderView,
): SendTrace | undefined {
  const tp = headers.get(TRACEPARENT);
  if (tp) {
    const ts = headers.get(TRACESTATE) ?? '';
    for (const m of messages) {
      m.traceparent = tp;
      m.tracestate = ts;
    }
  }
  return startCoreSendTrace(topic, messages);
}

/** Records the receive of `messages` (started at `startTime`, epoch ms). */
export function traceReceive(
  topic: string,
  group: string,
  messages: readonly StoredMessage__Output[],
  headers: HeaderView,
  startTime: number,
): void {
  if (!tracingEnabled() || messages.length === 0) return;
  traceCoreReceive(topic, group, messages, requestContext(headers), startTime);
}

/**
 * Runs a settle operation of `handles` inside its span; `failures` counts
 * failed handles of the result, `renewed` names the handle replacing the
 * settled one (change-invisible).
 */
export function traceSettle<T>(
  operation: SettleOperation,
  topic: string,
  group: string,
  handles: readonly string[],
  headers: HeaderView,
  run: () => Promise<T>,
  failures?: (result: T) => number,
  renewed?: (result: T) => string | undefined,
): Promise<T> {
  if (!tracingEnabled()) return run();
  return traceCoreSettle(
    {
      operation,
      topic,
      group,
      handles,
      request: requestContext(headers),
      ...(failures ? { failures } : {}),
      ...(renewed ? { renewed } : {}),
    },
    run,
  );
}

/** Runs a commit / rollback inside its span. */
export function traceEndTransaction<T>(
  e: { topic: string; transactionId: string; messageId: string; commit: boolean },
  headers: HeaderView,
  run: () => Promise<T>,
): Promise<T> {
  if (!tracingEnabled()) return run();
  return traceCoreEndTransaction({ ...e, fromCheck: false, request: requestContext(headers) }, run);
}
