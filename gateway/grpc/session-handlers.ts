/** QueryRoute, QueryAssignment, Heartbeat, NotifyClientTermination. */
import { Code, errors } from '../../common/errors.js';
import type { MessagingServiceHandlers } from '../../common/generated/apache/rocketmq/v2/MessagingService.js';
import { checkTopicName } from '../../common/names.js';
import { qualify, toResource } from './client-context.js';
import { unary } from './handler-kit.js';
import type { MessagingContext } from './messaging-context.js';
import { OK_STATUS } from './public-status.js';
import { gatewayEndpoints, provisionalQueues, toMessageQueues } from './route-mapping.js';

type SessionHandlers = Pick<
  MessagingServiceHandlers,
  'QueryRoute' | 'QueryAssignment' | 'Heartbeat' | 'NotifyClientTermination'
>;

export function sessionHandlers(m: MessagingContext): SessionHandlers {
  const { logger } = m;
  return {
    QueryRoute: unary(logger, 'QueryRoute', async (req, ctx, call) => {
      const topic = checkTopicName(qualify(req.topic, ctx.namespace, 'topic'));
      m.registry.noteTopic(ctx.clientId, topic);
      const endpoints = gatewayEndpoints(req.endpoints, call.getHost(), m.defaultPort);
      const resource = toResource(topic, ctx.namespace);
      const route = await m.routes.route(topic);
      if (route.status?.code === Code.TOPIC_NOT_FOUND) {
        // Brokers that create topics on first send: a producer may start before its topic exists.
        const creators = (await m.cluster.masters()).filter((b) => b.autoCreateTopics);
        if (creators.length === 0) throw errors.topicNotFound(topic);
        return {
          status: OK_STATUS,
          message_queues: provisionalQueues(
            creators.map((b) => b.brokerName),
            resource,
            endpoints,
          ),
        };
      }
      const queues = toMessageQueues(route, resource, endpoints);
      if (queues.length === 0) throw errors.unavailable(`no broker serves topic '${topic}'`);
      return { status: OK_STATUS, message_queues: queues };
    }),

    QueryAssignment: unary(logger, 'QueryAssignment', async (req, ctx, call) => {
      const topic = checkTopicName(qualify(req.topic, ctx.namespace, 'topic'));
      qualify(req.group, ctx.namespace, 'group');
      const endpoints = gatewayEndpoints(req.endpoints, call.getHost(), m.defaultPort);
      const readable = await m.routes.readable(topic);
      const resource = toResource(topic, ctx.namespace);
      // One assignment per broker: the gateway spreads a receive over that broker's queues.
      return {
        status: OK_STATUS,
        assignments: provisionalQueues(
          readable.map((b) => b.brokerName),
          resource,
          endpoints,
        ).map((message_queue) => ({ message_queue })),
      };
    }),

    Heartbeat: unary(logger, 'Heartbeat', () => ({ status: OK_STATUS })),

    NotifyClientTermination: unary(logger, 'NotifyClientTermination', (_req, ctx) => {
      if (ctx.clientId) m.registry.forget(ctx.clientId);
      return { status: OK_STATUS };
    }),
  };
}
