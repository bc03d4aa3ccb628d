/**
 * Cheap access to request headers. `c.req.raw.headers` makes
 * @hono/node-server build a WHATWG Headers object (validating every name and
 * value), a noticeable share of a small send's CPU; under node-server the
 * Node request's own header object is read instead. Names are lower-case.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Context } from 'hono';

export interface HeaderView {
  get(name: string): string | null | undefined;
  [Symbol.iterator](): Iterator<[string, string]>;
}

class NodeHeaders implements HeaderView {
  constructor(private readonly h: IncomingHttpHeaders) {}

  get(name: string): string | undefined {
    const v = this.h[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  *[Symbol.iterator](): Iterator<[string, string]> {
    for (const [k, v] of Object.entries(this.h)) {
      if (v !== undefined) yield [k, Array.isArray(v) ? v.join(', ') : v];
    }
  }
}

/** The request's headers, from the Node request when there is one. */
export function headersOf(c: Context): HeaderView {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming?.headers ? new NodeHeaders(incoming.headers) : c.req.raw.headers;
}
