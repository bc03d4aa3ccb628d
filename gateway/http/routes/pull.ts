/**
 * Offset-based reading for replay and broadcast readers: pull one queue from
 * an offset, and read or commit a group's offsets.
 */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { AppDeps } from '../deps.js';
import { entryStatusJson, toDeliveredJson } from '../message-json.js';
import { jsonBody, jsonResponse, mount, problems } from '../route.js';
import {
  OffsetsListSchema,
  OffsetsRequestSchema,
  OffsetsResponseSchema,
  PullRequestSchema,
  PullResponseSchema,
  TopicGroupParams,
} from '../schemas.js';
import { parse, readJson } from '../validate.js';

const base = '/v1/topics/{topic}/groups/{group}';

const pullRoute = createRoute({
  method: 'post',
  path: `${base}/pull`,
  summary: 'Pull one queue from an offset (long poll)',
  description:
    'Reads up to max messages of queue queueId on broker broker from offset; nextOffset is where to continue. ' +
    'Pulling neither hides messages from other readers nor commits offsets (PUT …/offsets does). ' +
    'Read/write separation: when the master suggests it (slaveReadEnable, a reader far behind), the next pulls of ' +
    'the queue go to a slave; brokerId says which node answered (0 = master).',
  request: { params: TopicGroupParams, body: jsonBody(PullRequestSchema) },
  responses: {
    200: jsonResponse('messages and the next offset', PullResponseSchema),
    ...problems(400, 404, 503),
  },
});

const putOffsetsRoute = createRoute({
  method: 'put',
  path: `${base}/offsets`,
  summary: "Commit a group's offset per queue",
  request: { params: TopicGroupParams, body: jsonBody(OffsetsRequestSchema) },
  responses: {
    200: jsonResponse('per-entry results', OffsetsResponseSchema),
    ...problems(400, 404, 503),
  },
});

const getOffsetsRoute = createRoute({
  method: 'get',
  path: `${base}/offsets`,
  summary: "A group's committed offsets for the topic",
  request: { params: TopicGroupParams },
  responses: {
    200: jsonResponse('offsets per broker and queue', OffsetsListSchema),
    ...problems(400, 404, 503),
  },
});

export function mountPull(app: OpenAPIHono, deps: AppDeps): void {
  mount(app, pullRoute, async (c) => {
    const { topic, group } = parse(TopicGroupParams, c.req.param(), 'path');
    const body = parse(PullRequestSchema, await readJson(c), 'body');
    const ac = new AbortController();
    const abort = () => ac.abort();
    c.req.raw.signal.addEventListener('abort', abort, { once: true });
    deps.shutdown.addEventListener('abort', abort, { once: true });
    try {
      const out = await deps.service.pull(topic, group, {
        ...(body.broker ? { broker: body.broker } : {}),
        queueId: body.queueId,
        offset: body.offset,
        max: body.max,
        waitMs: Math.round(body.waitSeconds * 1000),
        filter: body.filter?.expression ?? '*',
        signal: ac.signal,
      });
      deps.metrics?.countDelivered(topic, out.messages);
      return c.json(
        {
          broker: out.broker,
          brokerId: out.brokerId,
          queueId: body.queueId,
          messages: out.messages.map(toDeliveredJson),
          nextOffset: out.nextOffset,
          minOffset: out.minOffset,
          maxOffset: out.maxOffset,
        },
        200,
      );
    } finally {
      deps.shutdown.removeEventListener('abort', abort);
    }
  });

  mount(app, putOffsetsRoute, async (c) => {
    const { topic, group } = parse(TopicGroupParams, c.req.param(), 'path');
    const { offsets } = parse(OffsetsRequestSchema, await readJson(c), 'body');
    const results = await deps.service.commitOffsets(topic, group, offsets);
    return c.json(
      {
        results: results.map((r, i) => ({
          ...(offsets[i]!.broker ? { broker: offsets[i]!.broker } : {}),
          queueId: offsets[i]!.queueId,
          ...entryStatusJson(r),
        })),
      },
      200,
    );
  });

  mount(app, getOffsetsRoute, async (c) => {
    const { topic, group } = parse(TopicGroupParams, c.req.param(), 'path');
    return c.json({ offsets: await deps.service.offsets(topic, group) }, 200);
  });
}
