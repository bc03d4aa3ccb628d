/** Admin and query endpoints: cluster, topics, routes, group progress, message lookups. */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { brokerAddrsJson } from '../../../common/broker-addrs.js';
import { errors } from '../../../common/errors.js';
import type { AdminService } from '../../core/admin-service.js';
import type { AppDeps } from '../deps.js';
import { toDeliveredJson } from '../message-json.js';
import { jsonBody, jsonResponse, mount, problems } from '../route.js';
import {
  ClusterQuerySchema,
  ClusterResponseSchema,
  DeliveredMessageSchema,
  GroupParam,
  MessageByIdQuerySchema,
  MessageIdParam,
  MessageListSchema,
  MessagesByKeyQuerySchema,
  ProgressQuerySchema,
  ProgressResponseSchema,
  RouteResponseSchema,
  TopicListSchema,
  TopicParam,
  TopicPutRequestSchema,
  TopicPutResponseSchema,
} from '../schemas.js';
import { parse, readJson } from '../validate.js';

const clusterRoute = createRoute({
  method: 'get',
  path: '/v1/cluster',
  summary: 'Clusters, brokers and their liveness (as mqadmin clusterList)',
  responses: { 200: jsonResponse('the cluster', ClusterResponseSchema), ...problems(503) },
});

const topicsRoute = createRoute({
  method: 'get',
  path: '/v1/topics',
  summary: 'Every topic the name servers know',
  responses: { 200: jsonResponse('topic names', TopicListSchema), ...problems(503) },
});

const putTopicRoute = createRoute({
  method: 'put',
  path: '/v1/topics/{topic}',
  summary: 'Create or update a topic (as mqadmin updateTopic)',
  description: 'Without cluster or broker the topic goes to every master of the (only) cluster.',
  request: { params: TopicParam, body: jsonBody(TopicPutRequestSchema, false) },
  responses: {
    200: jsonResponse('brokers that hold the topic', TopicPutResponseSchema),
    ...problems(400, 503),
  },
});

const deleteTopicRoute = createRoute({
  method: 'delete',
  path: '/v1/topics/{topic}',
  summary: 'Delete a topic from the brokers and name servers (as mqadmin deleteTopic)',
  request: { params: TopicParam, query: ClusterQuerySchema },
  responses: { 204: { description: 'deleted' }, ...problems(400, 503) },
});

const routeRoute = createRoute({
  method: 'get',
  path: '/v1/topics/{topic}/route',
  summary: "A topic's route: its queues per broker and the brokers' addresses",
  request: { params: TopicParam },
  responses: { 200: jsonResponse('the route', RouteResponseSchema), ...problems(400, 404, 503) },
});

const progressRoute = createRoute({
  method: 'get',
  path: '/v1/groups/{group}/progress',
  summary: "A consumer group's progress: offsets, lag and in-flight messages per queue",
  request: { params: GroupParam, query: ProgressQuerySchema },
  responses: {
    200: jsonResponse('progress per queue', ProgressResponseSchema),
    ...problems(400, 404, 503),
  },
});

const byIdRoute = createRoute({
  method: 'get',
  path: '/v1/messages/{id}',
  summary: 'A message by its id',
  request: { params: MessageIdParam, query: MessageByIdQuerySchema },
  responses: {
    200: jsonResponse('the message', DeliveredMessageSchema),
    ...problems(400, 404, 503),
  },
});

const byKeyRoute = createRoute({
  method: 'get',
  path: '/v1/topics/{topic}/messages',
  summary: 'Messages of a topic carrying a key',
  request: { params: TopicParam, query: MessagesByKeyQuerySchema },
  responses: {
    200: jsonResponse('matching messages, oldest first', MessageListSchema),
    ...problems(400, 404, 503),
  },
});

export function mountAdmin(app: OpenAPIHono, deps: AppDeps): void {
  const admin = (): AdminService => {
    if (!deps.admin) throw errors.notImplemented('admin endpoints on this gateway');
    return deps.admin;
  };

  mount(app, clusterRoute, async (c) => c.json(await admin().cluster(), 200));

  mount(app, topicsRoute, async (c) => c.json({ topics: await admin().topics() }, 200));

  mount(app, putTopicRoute, async (c) => {
    const { topic } = parse(TopicParam, c.req.param(), 'path');
    const spec = parse(TopicPutRequestSchema, await readJson(c), 'body');
    return c.json({ topic, brokers: await admin().putTopic(topic, spec) }, 200);
  });

  mount(app, deleteTopicRoute, async (c) => {
    const { topic } = parse(TopicParam, c.req.param(), 'path');
    const q = parse(ClusterQuerySchema, c.req.query(), 'query');
    await admin().deleteTopic(topic, q.cluster);
    return c.body(null, 204);
  });

  mount(app, routeRoute, async (c) => {
    const { topic } = parse(TopicParam, c.req.param(), 'path');
    const route = await admin().route(topic);
    return c.json(
      {
        topic,
        queues: route.queue_datas.map((q) => ({
          broker: q.broker_name,
          readQueueNums: q.read_queue_nums,
          writeQueueNums: q.write_queue_nums,
          perm: q.perm,
          messageType: q.message_type,
        })),
        brokers: route.broker_datas.map((b) => ({
          cluster: b.cluster,
          brokerName: b.broker_name,
          addrs: brokerAddrsJson(b.broker_addrs),
        })),
      },
      200,
    );
  });

  mount(app, progressRoute, async (c) => {
    const { group } = parse(GroupParam, c.req.param(), 'path');
    const q = parse(ProgressQuerySchema, c.req.query(), 'query');
    return c.json(await admin().groupProgress(group, q.topic), 200);
  });

  mount(app, byIdRoute, async (c) => {
    const { id } = parse(MessageIdParam, c.req.param(), 'path');
    const q = parse(MessageByIdQuerySchema, c.req.query(), 'query');
    return c.json(toDeliveredJson(await admin().messageById(id, q.topic)), 200);
  });

  mount(app, byKeyRoute, async (c) => {
    const { topic } = parse(TopicParam, c.req.param(), 'path');
    const q = parse(MessagesByKeyQuerySchema, c.req.query(), 'query');
    const messages = await admin().messagesByKey(topic, q.key, {
      max: q.max,
      ...(q.begin !== undefined ? { begin: q.begin } : {}),
      ...(q.end !== undefined ? { end: q.end } : {}),
    });
    return c.json({ messages: messages.map(toDeliveredJson) }, 200);
  });
}
