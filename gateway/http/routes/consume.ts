/**
 * Pop-style consumption: receive (long poll), ack, visibility, dead-letter,
 * and the SSE stream for clients that cannot hold a long poll open.
 */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { Code, codeName, toSluiceError } from '../../../common/errors.js';
import { toProblem } from '../../../common/errors-http.js';
import { dlqTopicOf } from '../../../common/names.js';
import { DEFAULT_SSE_HEARTBEAT_MS } from '../../options.js';
import type { AppDeps } from '../deps.js';
import { headersOf } from '../headers.js';
import { entryStatusJson, toDeliveredJson } from '../message-json.js';
import { jsonBody, jsonResponse, mount, problems } from '../route.js';
import {
  AckRequestSchema,
  AckResponseSchema,
  DeadLetterRequestSchema,
  DeadLetterResponseSchema,
  ReceiveRequestSchema,
  ReceiveResponseSchema,
  StreamQuerySchema,
  TopicGroupParams,
  VisibilityRequestSchema,
  VisibilityResponseSchema,
} from '../schemas.js';
import { traceReceive, traceSettle } from '../tracing.js';
import { parse, readJson } from '../validate.js';

/** Longest single wait of the stream's receive loop (a heartbeat covers the gaps). */
const STREAM_POLL_WAIT_MS = 20_000;
/** Pause after a retriable error before the stream tries again. */
const STREAM_ERROR_BACKOFF_MS = 1_000;

const base = '/v1/topics/{topic}/groups/{group}';

const receiveRoute = createRoute({
  method: 'post',
  path: `${base}/receive`,
  summary: 'Receive messages (long poll)',
  description:
    'Takes up to max messages; they stay invisible to the group for invisibleSeconds unless acked. ' +
    'With waitSeconds the request waits until a message arrives (answering at once when one does) or the time is up, ' +
    'then answers {"messages":[]}. An empty body takes every default.',
  request: { params: TopicGroupParams, body: jsonBody(ReceiveRequestSchema, false) },
  responses: {
    200: jsonResponse('messages, possibly none', ReceiveResponseSchema),
    ...problems(400, 404, 503),
  },
});

const ackRoute = createRoute({
  method: 'post',
  path: `${base}/ack`,
  summary: 'Acknowledge received messages',
  description:
    'Answers per receipt handle: OK, or INVALID_RECEIPT_HANDLE (40013) when stale or forged.',
  request: { params: TopicGroupParams, body: jsonBody(AckRequestSchema) },
  responses: {
    200: jsonResponse('per-handle results', AckResponseSchema),
    ...problems(400, 404, 503),
  },
});

const visibilityRoute = createRoute({
  method: 'post',
  path: `${base}/visibility`,
  summary: 'Change how long a received message stays invisible',
  description:
    'Returns a new receipt handle (the old one becomes stale). invisibleSeconds 0 = deliver again now.',
  request: { params: TopicGroupParams, body: jsonBody(VisibilityRequestSchema) },
  responses: {
    200: jsonResponse('the new receipt handle', VisibilityResponseSchema),
    ...problems(400, 404, 409, 503),
  },
});

const deadLetterRoute = createRoute({
  method: 'post',
  path: `${base}/dead-letter`,
  summary: "Move a received message to the group's dead-letter queue now",
  request: { params: TopicGroupParams, body: jsonBody(DeadLetterRequestSchema) },
  responses: {
    200: jsonResponse('moved', DeadLetterResponseSchema),
    ...problems(400, 404, 409, 501, 503),
  },
});

const streamRoute = createRoute({
  method: 'get',
  path: `${base}/stream`,
  summary: 'Streaming receive (server-sent events)',
  description:
    'Each delivered message is an `event: message` whose data is a DeliveredMessage (with receiptHandle; ack it ' +
    'with POST …/ack unless autoAck=true). A `: heartbeat` comment line is written every 15 s. A failure is an ' +
    '`event: error` with a problem+json body; the stream goes on after retriable ones.',
  request: { params: TopicGroupParams, query: StreamQuerySchema },
  responses: {
    200: {
      description: 'an event stream',
      content: { 'text/event-stream': { schema: z.string() } },
    },
    ...problems(400, 404, 503),
  },
});

/** An AbortSignal that fires when the client goes away or the gateway shuts down. */
function requestSignal(
  c: Context,
  deps: AppDeps,
): { signal: AbortSignal; abort: () => void; done: () => void } {
  const ac = new AbortController();
  const abort = () => ac.abort();
  c.req.raw.signal.addEventListener('abort', abort, { once: true });
  deps.shutdown.addEventListener('abort', abort, { once: true });
  if (deps.shutdown.aborted) ac.abort();
  return {
    signal: ac.signal,
    abort,
    done: () => {
      deps.shutdown.removeEventListener('abort', abort);
      c.req.raw.signal.removeEventListener('abort', abort);
    },
  };
}

export function mountConsume(app: OpenAPIHono, deps: AppDeps): void {
  mount(app, receiveRoute, async (c) => {
    const { topic, group } = parse(TopicGroupParams, c.req.param(), 'path');
    const body = parse(ReceiveRequestSchema, await readJson(c), 'body');
    const { signal, done } = requestSignal(c, deps);
    const startedAt = Date.now();
    const started = performance.now();
    try {
      const filter = body.filter?.expression ?? '*';
      const messages = await deps.service.receive(topic, group, {
        max: body.max,
        waitMs: Math.round(body.waitSeconds * 1000),
        invisibleMs: body.invisibleSeconds * 1000,
        filter,
        signal,
      });
      if (c.req.raw.signal.aborted && messages.length > 0) {
        // The client is gone: the next receive gets them (or their broker, uncounted).
        deps.service.unclaimed(topic, group, filter, messages);
        return c.json({ messages: [] }, 200);
      }
      deps.metrics?.receiveDuration.observe({ topic }, (performance.now() - started) / 1000);
      deps.metrics?.countDelivered(topic, messages);
      traceReceive(topic, group, messages, headersOf(c), startedAt);
      // One message: its trace context also as response headers, for clients
      // that propagate from headers without reading the body.
      const only = messages.length === 1 ? messages[0]!.message : undefined;
      if (only?.traceparent) {
        c.header('traceparent', only.traceparent);
        if (only.tracestate) c.header('tracestate', only.tracestate);
      }
      return c.json({ messages: messages.map(toDeliveredJson) }, 200);
    } finally {
      done();
    }
  });

  mount(app, ackRoute, async (c) => {
    const { topic, group } = parse(TopicGroupParams, c.req.param(), 'path');
    const { receiptHandles } = parse(AckRequestSchema, await readJson(c), 'body');
    const results = await traceSettle(
      'ack',
      topic,
      group,
      receiptHandles,
      headersOf(c),
      () => deps.service.ack(topic, group, receiptHandles),
      (rs) => rs.filter((r) => r.code !== Code.OK).length,
    );
    deps.metrics?.countAcked(topic, results);
    return c.json(
      {
        results: results.map((r, i) => ({
          receiptHandle: receiptHandles[i]!,
          ...entryStatusJson(r),
        })),
      },
      200,
    );
  });

  mount(app, visibilityRoute, async (c) => {
    const { topic, group } = parse(TopicGroupParams, c.req.param(), 'path');
    const body = parse(VisibilityRequestSchema, await readJson(c), 'body');
    const receiptHandle = await traceSettle(
      'change_invisible',
      topic,
      group,
      [body.receiptHandle],
      headersOf(c),
      () =>
        deps.service.changeInvisible(
          topic,
          group,
          body.receiptHandle,
          body.invisibleSeconds * 1000,
        ),
      undefined,
      (renewed) => renewed,
    );
    return c.json({ receiptHandle }, 200);
  });

  mount(app, deadLetterRoute, async (c) => {
    const { topic, group } = parse(TopicGroupParams, c.req.param(), 'path');
    const body = parse(DeadLetterRequestSchema, await readJson(c), 'body');
    await traceSettle('dead_letter', topic, group, [body.receiptHandle], headersOf(c), () =>
      deps.service.deadLetter(topic, group, body.receiptHandle),
    );
    return c.json(
      { status: codeName(Code.OK), code: Code.OK, deadLetterTopic: dlqTopicOf(group) },
      200,
    );
  });

  mount(app, streamRoute, async (c) => {
    const { topic, group } = parse(TopicGroupParams, c.req.param(), 'path');
    const q = parse(StreamQuerySchema, c.req.query(), 'query');
    // Unknown topic or no broker: a plain problem+json answer, before the stream starts.
    await deps.service.readableBrokers(topic, group);
    const heartbeatMs = deps.sseHeartbeatMs ?? DEFAULT_SSE_HEARTBEAT_MS;
    return streamSSE(c, async (stream) => {
      const { signal, abort, done } = requestSignal(c, deps);
      // The client went away: stop waiting at once, so nothing more is popped for it.
      stream.onAbort(abort);
      const beat = setInterval(() => {
        void stream.write(`: heartbeat ${Date.now()}\n\n`).catch(() => undefined);
      }, heartbeatMs);
      try {
        await stream.write(': connected\n\n');
        while (!signal.aborted && !stream.aborted) {
          try {
            const startedAt = Date.now();
            const messages = await deps.service.receive(topic, group, {
              max: q.max,
              waitMs: STREAM_POLL_WAIT_MS,
              invisibleMs: q.invisibleSeconds * 1000,
              filter: q.filter,
              signal,
            });
            if (stream.aborted) {
              deps.service.unclaimed(topic, group, q.filter, messages);
              break;
            }
            deps.metrics?.countDelivered(topic, messages);
            traceReceive(topic, group, messages, headersOf(c), startedAt);
            for (const m of messages) {
              const json = toDeliveredJson(m);
              await stream.writeSSE({
                event: 'message',
                id: json.messageId,
                data: JSON.stringify(json),
              });
            }
            if (q.autoAck === 'true' && messages.length > 0) {
              await deps.service.ack(
                topic,
                group,
                messages.map((m) => m.receipt_handle),
              );
            }
          } catch (err) {
            if (stream.aborted || signal.aborted) break;
            const e = toSluiceError(err);
            await stream.writeSSE({
              event: 'error',
              data: JSON.stringify(toProblem(e, c.req.path)),
            });
            if (!e.retriable) break;
            await stream.sleep(STREAM_ERROR_BACKOFF_MS);
          }
        }
      } finally {
        clearInterval(beat);
        done();
      }
    });
  });
}
