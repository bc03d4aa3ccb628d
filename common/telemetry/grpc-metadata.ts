/**
 * Trace context in gRPC metadata (`traceparent` / `tracestate` keys), as the
 * v2 protocol's clients and any W3C-propagating gRPC client send it. Only
 * the server side is needed: calls between our own components carry each
 * message's context in the message itself (a batch RPC holds many traces).
 *
 * @example
 *   const parent = extractTraceMetadata(call.metadata); // ROOT_CONTEXT when none
 */
import type { Metadata } from '@grpc/grpc-js';
import { type Context, propagation, ROOT_CONTEXT, type TextMapGetter } from '@opentelemetry/api';
import { TRACEPARENT, TRACESTATE, type TraceHeaders } from './tracing.js';

/** A metadata key's values as one comma-joined text (as HTTP folds repeated headers). */
function metadataText(md: Metadata, key: string): string | undefined {
  const v = md.get(key);
  if (v.length === 0) return undefined;
  return v.map((x) => (typeof x === 'string' ? x : x.toString('utf8'))).join(',');
}

const getter: TextMapGetter<Metadata> = {
  get: metadataText,
  keys: (md) => Object.keys(md.getMap()),
};

/** The context metadata carries (`base` when none, or when tracing is off). */
export function extractTraceMetadata(md: Metadata, base: Context = ROOT_CONTEXT): Context {
  return propagation.extract(base, md, getter);
}

/** The traceparent / tracestate metadata values as text, also with tracing off. */
export function traceHeadersOfMetadata(md: Metadata): TraceHeaders {
  return { traceparent: metadataText(md, TRACEPARENT), tracestate: metadataText(md, TRACESTATE) };
}
