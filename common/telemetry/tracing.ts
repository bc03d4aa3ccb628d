/**
 * What instrumented code uses: the tracer, whether tracing is on (so hot
 * paths skip span work entirely when it is off), and conversions between a
 * message's stored trace properties and an OpenTelemetry context.
 *
 * @example
 *   if (tracingEnabled()) {
 *     const span = tracer().startSpan(`send ${topic}`, { kind: SpanKind.PRODUCER }, parentCtx);
 *     message.traceparent = traceparentOf(span);
 *   }
 */
import {
  type Context,
  context,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { formatTraceparent, parseTraceparent } from './trace-context.js';

export const TRACER_NAME = 'sluice';

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

/** A context whose parent span is the one a stored traceparent names; undefined when there is none. */
export function contextOfTraceparent(
  traceparent: string | undefined | null,
  tracestate?: string | null,
  base: Context = ROOT_CONTEXT,
): Context | undefined {
  const sc = parseTraceparent(traceparent, tracestate);
  return sc ? trace.setSpanContext(base, sc) : undefined;
}

/** A link to the span a stored traceparent names, if it is valid. */
export function linkOfTraceparent(
  traceparent: string | undefined | null,
  tracestate?: string | null,
): Link | undefined {
  const sc = parseTraceparent(traceparent, tracestate);
  return sc ? { context: sc } : undefined;
}

/** The traceparent (and tracestate, '' when none) that continues a span. */
export function traceHeadersOf(span: Span | SpanContext): {
  traceparent: string;
  tracestate: string;
} {
  const sc = 'spanContext' in span ? span.spanContext() : span;
  return { traceparent: formatTraceparent(sc), tracestate: sc.traceState?.serialize() ?? '' };
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
