/** SendMessage, EndTransaction, RecallMessage. */
import { errors } from '../../common/errors.js';
import type { MessagingServiceHandlers } from '../../common/generated/apache/rocketmq/v2/MessagingService.js';
import type { SendResultEntry } from '../../common/generated/apache/rocketmq/v2/SendResultEntry.js';
import { checkTopicName } from '../../common/names.js';
import { qualify } from './client-context.js';
import { unary } from './handler-kit.js';
import { toInternalMessage } from './message-mapping.js';
import type { MessagingContext } from './messaging-context.js';
import { OK_STATUS, publicStatus, summarize } from './public-status.js';

type PublishHandlers = Pick<
  MessagingServiceHandlers,
  'SendMessage' | 'EndTransaction' | 'RecallMessage'
>;

export function publishHandlers(m: MessagingContext): PublishHandlers {
  const { logger, options } = m;
  return {
    SendMessage: unary(logger, 'SendMessage', async (req, ctx) => {
      if (req.messages.length === 0)
        throw errors.badRequest('a SendMessageRequest needs at least one message');
      const topic = checkTopicName(qualify(req.messages[0]!.topic, ctx.namespace, 'topic'));
      let total = 0;
      for (const msg of req.messages) {
        if (qualify(msg.topic, ctx.namespace, 'topic') !== topic) {
          throw errors.badRequest(
            'every message of one SendMessageRequest must have the same topic',
          );
        }
        total += msg.body.length;
      }
      if (total > options.maxRequestBytes)
        throw errors.payloadTooLarge(total, options.maxRequestBytes);
      for (const msg of req.messages) {
        if (msg.body.length > options.maxMessageSize)
          throw errors.bodyTooLarge(msg.body.length, options.maxMessageSize);
      }
      m.registry.noteTopic(ctx.clientId, topic);
      const now = Date.now();
      const messages = req.messages.map((msg) =>
        toInternalMessage(msg, topic, { peer: ctx.peer, producerGroup: ctx.clientId, now }),
      );
      const outcomes = await m.service.send(topic, messages);
      const entries: SendResultEntry[] = outcomes.map((o, i) => {
        if (o.transactionId && o.broker) m.transactions.remember(o.transactionId, o.broker);
        return {
          status: publicStatus(o.status.code, o.status.message),
          message_id: o.messageId || messages[i]!.message_id || '',
          transaction_id: o.transactionId ?? '',
          offset: o.offset ?? 0,
          recall_handle: '',
        };
      });
      return { status: summarize(outcomes.map((o) => o.status)), entries };
    }),

    EndTransaction: unary(logger, 'EndTransaction', async (req, ctx) => {
      const topic = checkTopicName(qualify(req.topic, ctx.namespace, 'topic'));
      if (req.resolution !== 'COMMIT' && req.resolution !== 'ROLLBACK') {
        throw errors.badRequest(
          `transaction resolution must be COMMIT or ROLLBACK, not ${req.resolution}`,
        );
      }
      await m.transactions.end({
        topic,
        messageId: req.message_id,
        transactionId: req.transaction_id,
        commit: req.resolution === 'COMMIT',
        fromCheck: req.source === 'SOURCE_SERVER_CHECK',
      });
      return { status: OK_STATUS };
    }),

    // An unimplemented RPC: NOT_IMPLEMENTED, not UNSUPPORTED (rule in public-status.ts).
    RecallMessage: unary(logger, 'RecallMessage', () => {
      throw errors.notImplemented('RecallMessage (cancelling a delayed message)');
    }),
  };
}
