/**
 * Trace context over gRPC metadata (`traceparent` / `tracestate` keys), for
 * internal calls (gateway → broker) and the v2 protocol's clients.
 *
 * @example
 *   const md = new Metadata();
 *   injectTraceMetadata(md);                      // client side, before the call
 *   const parent = extractTraceMetadata(call.metadata); // server side
 */
import type { Metadata } from '@grpc/grpc-js';
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';

const setter: TextMapSetter<Metadata> = {
  set: (md, key, value) => md.set(key, value),
};

const getter: TextMapGetter<Metadata> = {
  get: (md, key) => {
    const v = md.get(key);
    if (v.length === 0) return undefined;
    return v.map((x) => (typeof x === 'string' ? x : x.toString('utf8'))).join(',');
  },
  keys: (md) => Object.keys(md.getMap()),
};

/** Writes the active (or given) context's trace headers into metadata; a no-op when tracing is off. */
export function injectTraceMetadata(md: Metadata, ctx: Context = context.active()): Metadata {
  propagation.inject(ctx, md, setter);
  return md;
}

/** The context metadata carries (ROOT_CONTEXT-based), for a server span's parent. */
export function extractTraceMetadata(md: Metadata, base: Context = ROOT_CONTEXT): Context {
  return propagation.extract(base, md, getter);
}
