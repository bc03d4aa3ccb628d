/** PullMessage, UpdateOffset, GetOffset, QueryOffset: offset-based consumption of one queue. */
import { Code, errors } from '../../common/errors.js';
import type { MessageQueue__Output } from '../../common/generated/apache/rocketmq/v2/MessageQueue.js';
import type { MessagingServiceHandlers } from '../../common/generated/apache/rocketmq/v2/MessagingService.js';
import { checkGroupName, checkTopicName } from '../../common/names.js';
import type { QueueRef } from '../core/offset-query.js';
import { qualify } from './client-context.js';
import { longPollMs } from './consume-handlers.js';
import { serverStream, unary, withCallSignal } from './handler-kit.js';
import { toPublicMessage } from './message-mapping.js';
import type { MessagingContext } from './messaging-context.js';
import { toMillis } from './proto-time.js';
import { OK_STATUS, publicStatus } from './public-status.js';

type PullHandlers = Pick<
  MessagingServiceHandlers,
  'PullMessage' | 'UpdateOffset' | 'GetOffset' | 'QueryOffset'
>;

function queueOf(mq: MessageQueue__Output | null, namespace: string): QueueRef {
  if (!mq) throw errors.badRequest('message_queue is required');
  return {
    topic: checkTopicName(qualify(mq.topic, namespace, 'topic')),
    brokerName: mq.broker?.name ?? '',
    queueId: mq.id,
  };
}

export function pullHandlers(m: MessagingContext): PullHandlers {
  const { logger, options } = m;
  return {
    PullMessage: serverStream(logger, 'PullMessage', async (req, ctx, call) => {
      const group = checkGroupName(qualify(req.group, ctx.namespace, 'group'));
      const queue = queueOf(req.message_queue, ctx.namespace);
      if (req.filter_expression?.type === 'SQL') throw errors.unsupported('SQL92 filtering');
      if (req.batch_size <= 0)
        throw errors.badRequest(`batch_size must be at least 1, not ${req.batch_size}`);
      if (!Number.isSafeInteger(req.offset) || req.offset < 0)
        throw errors.illegalOffset(`offset ${req.offset} is negative`);
      const waitMs = longPollMs(
        toMillis(req.long_polling_timeout),
        call.getDeadline(),
        Date.now(),
        options,
      );
      const res = await withCallSignal(call, m.shutdown, (signal) =>
        m.service.pull(queue.topic, group, {
          ...(queue.brokerName ? { broker: queue.brokerName } : {}),
          queueId: queue.queueId,
          offset: req.offset,
          max: Math.min(req.batch_size, options.maxReceiveBatch),
          waitMs,
          filter: req.filter_expression?.expression.trim() || '*',
          signal,
        }),
      );
      if (call.cancelled) return;
      call.write({
        status:
          res.messages.length > 0
            ? OK_STATUS
            : publicStatus(Code.MESSAGE_NOT_FOUND, 'no new message'),
      });
      for (const msg of res.messages)
        call.write({
          message: toPublicMessage(msg, { namespace: ctx.namespace, readFrom: queue.topic }),
        });
      call.write({ next_offset: res.nextOffset });
    }),

    UpdateOffset: unary(logger, 'UpdateOffset', async (req, ctx) => {
      const group = checkGroupName(qualify(req.group, ctx.namespace, 'group'));
      const queue = queueOf(req.message_queue, ctx.namespace);
      const [status] = await m.service.commitOffsets(queue.topic, group, [
        {
          ...(queue.brokerName ? { broker: queue.brokerName } : {}),
          queueId: queue.queueId,
          offset: req.offset,
        },
      ]);
      return { status: status ? publicStatus(status.code, status.message) : OK_STATUS };
    }),

    GetOffset: unary(logger, 'GetOffset', async (req, ctx) => {
      const group = checkGroupName(qualify(req.group, ctx.namespace, 'group'));
      const queue = queueOf(req.message_queue, ctx.namespace);
      const found = (await m.service.offsets(queue.topic, group)).find(
        (o) => o.queueId === queue.queueId && (!queue.brokerName || o.broker === queue.brokerName),
      );
      if (!found) {
        throw errors.offsetNotFound(
          `group '${group}' has committed no offset for queue ${queue.queueId} of '${queue.topic}'`,
        );
      }
      return { status: OK_STATUS, offset: found.offset };
    }),

    QueryOffset: unary(logger, 'QueryOffset', async (req, ctx) => {
      const queue = queueOf(req.message_queue, ctx.namespace);
      const policy = req.query_offset_policy;
      if (policy === 'TIMESTAMP' && !req.timestamp)
        throw errors.badRequest('the TIMESTAMP policy needs a timestamp');
      const offset = await m.offsetQuery.query(queue, policy, toMillis(req.timestamp) ?? 0);
      return { status: OK_STATUS, offset };
    }),
  };
}
