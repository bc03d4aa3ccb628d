/**
 * What instrumented code uses: the tracer, whether tracing is on (so hot
 * paths skip span work entirely when it is off), and conversions between a
 * message's stored W3C trace properties (`traceparent`, `tracestate`) and an
 * OpenTelemetry context. Only @opentelemetry/api is used here; the
 * conversions go through the registered propagator (W3C trace context,
 * common/telemetry/sdk.ts), so with tracing off they find nothing.
 *
 * @example
 *   if (tracingEnabled()) {
 *     const span = tracer().startSpan(`send ${topic}`, { kind: SpanKind.PRODUCER }, parentCtx);
 *     message.traceparent = traceHeadersOf(span).traceparent;
 *   }
 */
import {
  type Context,
  context,
  defaultTextMapSetter,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';

export const TRACER_NAME = 'sluice';

/** W3C header (and message property) names. */
export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';

/** A trace context as text: what a message stores and a request carries. */
export interface TraceHeaders {
  traceparent?: string | null | undefined;
  tracestate?: string | null | undefined;
}

let enabled = false;

/** True once common/telemetry/sdk.ts installed a tracer provider (OTEL_EXPORTER_OTLP_ENDPOINT set). */
export function tracingEnabled(): boolean {
  return enabled;
}

/** For sdk.ts and tests only. */
export function setTracingEnabled(on: boolean): void {
  enabled = on;
}

export function tracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

const headersGetter: TextMapGetter<TraceHeaders> = {
  get: (h, key) =>
    (key === TRACEPARENT ? h.traceparent : key === TRACESTATE ? h.tracestate : undefined) ??
    undefined,
  keys: () => [TRACEPARENT, TRACESTATE],
};

/**
 * A context whose parent span is the one a traceparent (and tracestate)
 * names; undefined when there is none, it is malformed, or tracing is off.
 */
export function contextOfTraceparent(
  traceparent: string | undefined | null,
  tracestate?: string | null,
  base: Context = ROOT_CONTEXT,
): Context | undefined {
  if (!traceparent) return undefined;
  const ctx = propagation.extract(base, { traceparent, tracestate }, headersGetter);
  // The propagator answers `base` itself when the header is not valid.
  return ctx === base ? undefined : ctx;
}

/** The span context a traceparent names (see contextOfTraceparent). */
export function spanContextOfTraceparent(
  traceparent: string | undefined | null,
  tracestate?: string | null,
): SpanContext | undefined {
  const ctx = contextOfTraceparent(traceparent, tracestate);
  return ctx ? trace.getSpanContext(ctx) : undefined;
}

/** A link to the span a traceparent names, if it is valid. */
export function linkOfTraceparent(
  traceparent: string | undefined | null,
  tracestate?: string | null,
): Link | undefined {
  const sc = spanContextOfTraceparent(traceparent, tracestate);
  return sc ? { context: sc } : undefined;
}

/** The traceparent (and tracestate, '' when none) that continues a span. */
export function traceHeadersOf(span: Span | SpanContext): {
  traceparent: string;
  tracestate: string;
} {
  const sc = 'spanContext' in span ? span.spanContext() : span;
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpanContext(ROOT_CONTEXT, sc), carrier, defaultTextMapSetter);
  return { traceparent: carrier[TRACEPARENT] ?? '', tracestate: carrier[TRACESTATE] ?? '' };
}

/** Ends a span, marking it failed when `err` is given. */
export function endSpan(span: Span, err?: unknown): void {
  if (err !== undefined) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: err instanceof Error ? err.message : String(err),
    });
  }
  span.end();
}

/** Runs fn with span active (so log lines and child spans see it). */
export function withSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}

const TRACEPARENT_IDS = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}/;

/**
 * The trace and span ids a traceparent names, for log lines; read directly
 * (no propagator), so it also works with tracing off. Undefined when
 * malformed.
 */
export function traceIdsOf(
  traceparent: string | undefined | null,
): { trace_id: string; span_id: string } | undefined {
  const m = traceparent ? TRACEPARENT_IDS.exec(traceparent) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { trace_id: m[1]!, span_id: m[2]! };
}
