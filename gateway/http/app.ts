/**
 * The REST API (hono). Routes are declared with their zod schemas; the same
 * schemas validate requests and produce /openapi.json.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { Code, codeName, errors } from '../../common/errors.js';
import type { GatewayService } from '../core/gateway-service.js';
import { toDeliveredJson, toMessage } from './message-json.js';
import { problemResponse } from './problem.js';
import {
  AckRequestSchema,
  AckResponseSchema,
  ProblemSchema,
  ReceiveRequestSchema,
  ReceiveResponseSchema,
  SendRequestSchema,
  SendResponseSchema,
  TopicGroupParams,
  TopicParam,
} from './schemas.js';

export interface AppDeps {
  service: GatewayService;
  maxRequestBytes: number;
  corsOrigins: string;
  /** True when a name server and a broker are reachable. */
  ready: () => Promise<boolean>;
  /** Aborted when the gateway shuts down, so long polls return early. */
  shutdown: AbortSignal;
}

const problems = {
  400: { description: 'bad input', content: { 'application/problem+json': { schema: ProblemSchema } } },
  404: { description: 'unknown topic or group', content: { 'application/problem+json': { schema: ProblemSchema } } },
  413: { description: 'body too large', content: { 'application/problem+json': { schema: ProblemSchema } } },
  503: { description: 'no broker available', content: { 'application/problem+json': { schema: ProblemSchema } } },
};

const json = <T extends z.ZodType>(schema: T) => ({
  content: { 'application/json': { schema } },
  required: true,
});

const sendRoute = createRoute({
  method: 'post',
  path: '/v1/topics/{topic}/messages',
  summary: 'Send one message or a batch',
  request: { params: TopicParam, body: json(SendRequestSchema) },
  responses: { 200: { description: 'per-message results', ...json(SendResponseSchema) }, ...problems },
});

const receiveRoute = createRoute({
  method: 'post',
  path: '/v1/topics/{topic}/groups/{group}/receive',
  summary: 'Receive messages (they stay invisible to the group until acked or the time runs out)',
  request: { params: TopicGroupParams, body: json(ReceiveRequestSchema) },
  responses: { 200: { description: 'messages, possibly none', ...json(ReceiveResponseSchema) }, ...problems },
});

const ackRoute = createRoute({
  method: 'post',
  path: '/v1/topics/{topic}/groups/{group}/ack',
  summary: 'Acknowledge received messages',
  request: { params: TopicGroupParams, body: json(AckRequestSchema) },
  responses: { 200: { description: 'per-handle results', ...json(AckResponseSchema) }, ...problems },
});

export function createApp(deps: AppDeps): OpenAPIHono {
  const app = new OpenAPIHono({
    defaultHook: (result, c) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        const field = issue?.path.join('.') || '(body)';
        return problemResponse(c, errors.badRequest(`${field}: ${issue?.message ?? 'invalid'}`, { field }));
      }
      return undefined;
    },
  });
  app.onError((err, c) => problemResponse(c, err));
  app.notFound((c) => problemResponse(c, errors.notFound(`no route for ${c.req.method} ${c.req.path}`)));
  if (deps.corsOrigins) {
    const origins = deps.corsOrigins.split(',').map((s) => s.trim());
    app.use('*', cors({ origin: origins.length === 1 ? origins[0]! : origins }));
  }
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: deps.maxRequestBytes,
      onError: (c) =>
        problemResponse(c, errors.payloadTooLarge(Number(c.req.header('content-length') ?? 0), deps.maxRequestBytes)),
    }),
  );

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) =>
    (await deps.ready()) ? c.json({ ready: true }) : c.json({ ready: false }, 503),
  );

  app.openapi(sendRoute, async (c) => {
    const { topic } = c.req.valid('param');
    const body = c.req.valid('json');
    const batch = 'messages' in body;
    const list = batch ? body.messages : [body];
    const now = Date.now();
    const results = await deps.service.send(
      topic,
      list.map((m) => toMessage(m, now)),
    );
    if (!batch && results[0] && results[0].status.code !== Code.OK) {
      throw errors.fromStatus(results[0].status.code, results[0].status.message);
    }
    return c.json(
      {
        results: results.map((r) => ({
          ...(r.messageId ? { messageId: r.messageId } : {}),
          status: codeName(r.status.code),
          code: r.status.code,
          ...(r.status.code !== Code.OK ? { message: r.status.message } : {}),
          ...(r.broker ? { broker: r.broker, queueId: r.queueId, offset: r.offset } : {}),
          ...(r.transactionId ? { transactionId: r.transactionId } : {}),
        })),
      },
      200,
    );
  });

  app.openapi(receiveRoute, async (c) => {
    const { topic, group } = c.req.valid('param');
    const body = c.req.valid('json');
    const ac = new AbortController();
    const abort = () => ac.abort();
    c.req.raw.signal.addEventListener('abort', abort, { once: true });
    deps.shutdown.addEventListener('abort', abort, { once: true });
    try {
      const messages = await deps.service.receive(topic, group, {
        max: body.max,
        waitMs: Math.round(body.waitSeconds * 1000),
        invisibleMs: body.invisibleSeconds * 1000,
        filter: body.filter?.expression ?? '*',
        signal: ac.signal,
      });
      return c.json({ messages: messages.map(toDeliveredJson) }, 200);
    } finally {
      deps.shutdown.removeEventListener('abort', abort);
    }
  });

  app.openapi(ackRoute, async (c) => {
    const { topic, group } = c.req.valid('param');
    const { receiptHandles } = c.req.valid('json');
    const results = await deps.service.ack(topic, group, receiptHandles);
    return c.json(
      {
        results: results.map((r, i) => ({
          receiptHandle: receiptHandles[i]!,
          status: codeName(r.code),
          code: r.code,
          ...(r.code !== Code.OK ? { message: r.message } : {}),
        })),
      },
      200,
    );
  });

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Sluice REST API',
      version: '1',
      description: 'Send, receive and acknowledge messages over HTTP. Errors are application/problem+json with an apache.rocketmq.v2 numeric code.',
    },
  });
  return app;
}
