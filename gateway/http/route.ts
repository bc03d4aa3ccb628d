/**
 * Declares a REST operation once: its OpenAPI description (from the zod
 * schemas in schemas.ts) goes into the app's registry for /openapi.json and
 * /docs, and the handler is mounted on the same path. Handlers validate with
 * the same schemas (validate.ts).
 */
import type { OpenAPIHono, RouteConfig, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { ProblemSchema } from './schemas.js';

export type Handler = (c: Context) => Promise<Response> | Response;

/** Registers the route's description and mounts its handler. */
export function mount(app: OpenAPIHono, route: RouteConfig, handler: Handler): void {
  app.openAPIRegistry.registerPath(route);
  app.on(route.method.toUpperCase(), route.path.replace(/\{(\w+)\}/g, ':$1'), handler);
}

const PROBLEM_TEXT: Record<number, string> = {
  400: 'bad input (the problem names the field)',
  404: 'unknown topic, group or message',
  409: 'stale receipt handle (acked, redelivered or expired)',
  413: 'message body over maxMessageSize, or request over the size limit',
  429: 'a broker pushes back; retry after Retry-After seconds',
  501: 'not implemented by the broker yet',
  503: 'no writable (or readable) broker, or no name server reachable',
};

/** problem+json responses for the given statuses. */
export function problems(...statuses: (keyof typeof PROBLEM_TEXT)[]): RouteConfig['responses'] {
  const out: RouteConfig['responses'] = {};
  for (const s of statuses) {
    out[s] = {
      description: PROBLEM_TEXT[s]!,
      content: { 'application/problem+json': { schema: ProblemSchema } },
    };
  }
  return out;
}

export const jsonBody = <T extends z.ZodType>(schema: T, required = true) => ({
  content: { 'application/json': { schema } },
  required,
});

export const jsonResponse = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { 'application/json': { schema } },
});
