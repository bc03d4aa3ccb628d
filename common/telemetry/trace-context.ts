/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent`
 * and `tracestate` headers, as a propagator for @opentelemetry/api and as
 * plain functions for a message's stored trace properties.
 *
 *   traceparent = 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>
 */
import {
  type Context,
  createTraceState,
  isSpanContextValid,
  type SpanContext,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  trace,
} from '@opentelemetry/api';

export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';

const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The span context a traceparent names, or undefined when it is malformed or all-zero. */
export function parseTraceparent(
  traceparent: string | undefined | null,
  tracestate?: string | null,
): SpanContext | undefined {
  if (!traceparent) return undefined;
  const m = TRACEPARENT_RE.exec(traceparent.trim());
  if (!m) return undefined;
  // Version ff is invalid; version 00 allows nothing after the flags.
  if (m[1] === 'ff' || (m[1] === '00' && m[5])) return undefined;
  const sc: SpanContext = {
    traceId: m[2]!,
    spanId: m[3]!,
    traceFlags: Number.parseInt(m[4]!, 16) & 1,
    isRemote: true,
  };
  if (tracestate) sc.traceState = createTraceState(tracestate);
  return isSpanContextValid(sc) ? sc : undefined;
}

/** `00-trace-span-flags` for a span context. */
export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & 1).toString(16)}`;
}

/** W3C trace context propagator (the default of the OpenTelemetry SDKs). */
export class W3CTraceContextPropagator implements TextMapPropagator {
  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    const sc = trace.getSpanContext(context);
    if (!sc || !isSpanContextValid(sc)) return;
    setter.set(carrier, TRACEPARENT, formatTraceparent(sc));
    const state = sc.traceState?.serialize();
    if (state) setter.set(carrier, TRACESTATE, state);
  }

  extract(context: Context, carrier: unknown, getter: TextMapGetter): Context {
    const one = (k: string) => {
      const v = getter.get(carrier, k);
      return Array.isArray(v) ? v.join(',') : v;
    };
    const sc = parseTraceparent(one(TRACEPARENT), one(TRACESTATE));
    return sc ? trace.setSpanContext(context, sc) : context;
  }

  fields(): string[] {
    return [TRACEPARENT, TRACESTATE];
  }
}
