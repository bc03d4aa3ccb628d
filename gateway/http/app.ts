/**
 * The REST API (hono). Each operation is declared once with its zod schemas
 * (routes/*.ts): the same schemas validate requests and produce
 * /openapi.json and /docs. Errors of any kind leave as problem+json through
 * problem.ts, which uses the one HTTP mapping in common/errors-http.ts.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { errors } from '../../common/errors.js';
import type { AppDeps } from './deps.js';
import { headersOf } from './headers.js';
import { problemResponse } from './problem.js';
import { mountAdmin } from './routes/admin.js';
import { mountConsume } from './routes/consume.js';
import { mountMessages } from './routes/messages.js';
import { mountOps } from './routes/ops.js';
import { mountPull } from './routes/pull.js';
import { mountTransactions } from './routes/transactions.js';

export type { AppDeps } from './deps.js';

/** Parses `corsOrigins`: empty = CORS off, `*` = any origin, else a comma-separated list. */
export function corsOriginsOf(value: string): string | string[] | undefined {
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) return undefined;
  return list.length === 1 ? list[0]! : list;
}

export function createApp(deps: AppDeps): OpenAPIHono {
  const app = new OpenAPIHono();
  app.onError((err, c) => problemResponse(c, err));
  app.notFound((c) =>
    problemResponse(c, errors.notFound(`no route for ${c.req.method} ${c.req.path}`)),
  );
  if (deps.metrics) app.use('*', deps.metrics.middleware(deps.logger));
  const origin = corsOriginsOf(deps.corsOrigins);
  if (origin !== undefined) {
    const corsMiddleware = cors({
      origin,
      exposeHeaders: ['retry-after', 'idempotent-replayed'],
      maxAge: 600,
    });
    // Only browsers send Origin; skipping the rest keeps responses on
    // @hono/node-server's fast path (no header rewriting after the handler).
    app.use('*', (c, next) =>
      headersOf(c).get('origin') == null ? next() : corsMiddleware(c, next),
    );
  }
  // Request size limit. A declared length is checked from the header alone:
  // hono's bodyLimit reads `c.req.raw.body`, which makes @hono/node-server
  // build a full WHATWG Request per call (a large share of a send's CPU).
  // Only chunked bodies, whose size is unknown up front, go through it.
  const tooLarge = (c: Context) =>
    problemResponse(
      c,
      errors.payloadTooLarge(Number(c.req.header('content-length') ?? 0), deps.maxRequestBytes),
    );
  const chunkedLimit = bodyLimit({ maxSize: deps.maxRequestBytes, onError: tooLarge });
  app.use('/v1/*', async (c, next) => {
    const headers = headersOf(c);
    if (headers.get('transfer-encoding') != null) return chunkedLimit(c, next);
    const length = headers.get('content-length');
    if (length != null && Number(length) > deps.maxRequestBytes) return tooLarge(c);
    return next();
  });

  mountMessages(app, deps);
  mountConsume(app, deps);
  mountPull(app, deps);
  mountTransactions(app, deps);
  mountAdmin(app, deps);
  mountOps(app, deps);
  return app;
}
