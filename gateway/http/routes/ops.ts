/** Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document and /docs. */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppDeps } from '../deps.js';
import { renderDocsPage } from '../docs-page.js';
import { jsonResponse, mount } from '../route.js';
import { HealthSchema, ReadySchema } from '../schemas.js';

export const OPENAPI_INFO = {
  openapi: '3.1.0',
  info: {
    title: 'Sluice REST API',
    version: '1',
    description:
      'Send, receive and acknowledge messages over HTTP. Errors are application/problem+json (RFC 9457) ' +
      'with an apache.rocketmq.v2 numeric code.',
  },
} as const;

const healthRoute = createRoute({
  method: 'get',
  path: '/healthz',
  summary: 'Liveness: the process serves HTTP',
  responses: { 200: jsonResponse('alive', HealthSchema) },
});

const readyRoute = createRoute({
  method: 'get',
  path: '/readyz',
  summary: 'Readiness: a name server and a broker are reachable',
  description:
    'Answers 503 while no name server or no broker answers, and from the moment the gateway begins to shut ' +
    'down: for shutdownDrainMs it still serves requests so that load balancers move traffic away first.',
  responses: {
    200: jsonResponse('ready', ReadySchema),
    503: jsonResponse('not ready', ReadySchema),
  },
});

const metricsRoute = createRoute({
  method: 'get',
  path: '/metrics',
  summary: 'Prometheus metrics',
  responses: {
    200: {
      description: 'text exposition format',
      content: { 'text/plain': { schema: z.string() } },
    },
  },
});

const openapiRoute = createRoute({
  method: 'get',
  path: '/openapi.json',
  summary: 'This OpenAPI 3.1 document',
  responses: {
    200: {
      description: 'the document',
      content: { 'application/json': { schema: z.object({}).passthrough() } },
    },
  },
});

const docsRoute = createRoute({
  method: 'get',
  path: '/docs',
  summary: 'Browsable API documentation',
  responses: {
    200: { description: 'an HTML page', content: { 'text/html': { schema: z.string() } } },
  },
});

export function mountOps(app: OpenAPIHono, deps: AppDeps): void {
  mount(app, healthRoute, (c) => c.json({ status: 'ok' }, 200));

  mount(app, readyRoute, async (c) => {
    const r = await deps.ready();
    const body = typeof r === 'boolean' ? { ready: r, namesrv: r, broker: r } : r;
    const stopping = deps.shutdown.aborted || deps.draining?.aborted === true;
    return c.json(body, body.ready && !stopping ? 200 : 503);
  });

  mount(app, metricsRoute, async (c) => {
    if (!deps.metrics) return c.text('', 200);
    return c.body(await deps.metrics.registry.metrics(), 200, {
      'content-type': deps.metrics.registry.contentType,
    });
  });

  app.openAPIRegistry.registerPath(openapiRoute);
  app.doc31('/openapi.json', OPENAPI_INFO);

  let page: string | undefined;
  mount(app, docsRoute, (c) => {
    page ??= renderDocsPage(
      app.getOpenAPI31Document(OPENAPI_INFO) as unknown as Record<string, unknown>,
    );
    return c.html(page);
  });
}
