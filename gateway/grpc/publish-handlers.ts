/**
 * SendMessage, EndTransaction, RecallMessage. Spans (tracing on) are the
 * core's (gateway/core/message-tracing.ts): a message's parent is its
 * trace_context, else the call's traceparent/tracestate metadata, else a
 * new root.
 */
import { context } from '@opentelemetry/api';
import { errors } from '../../common/errors.js';
import type { MessagingServiceHandlers } from '../../common/generated/apache/rocketmq/v2/MessagingService.js';
import type { SendResultEntry } from '../../common/generated/apache/rocketmq/v2/SendResultEntry.js';
import { checkTopicName } from '../../common/names.js';
import {
  extractTraceMetadata,
  traceHeadersOfMetadata,
} from '../../common/telemetry/grpc-metadata.js';
import { contextOfTraceparent } from '../../common/telemetry/tracing.js';
import type { SendOutcome } from '../core/gateway-service.js';
import { startSendTrace, traceEndTransaction } from '../core/message-tracing.js';
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
    SendMessage: unary(logger, 'SendMessage', async (req, ctx, call) => {
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
      const trace = traceHeadersOfMetadata(call.metadata);
      const messages = req.messages.map((msg) =>
        toInternalMessage(msg, topic, { peer: ctx.peer, producerGroup: ctx.clientId, now, trace }),
      );
      const started = performance.now();
      const traced = startSendTrace(topic, messages);
      let outcomes: SendOutcome[];
      try {
        const send = () => m.service.send(topic, messages);
        outcomes = await (traced ? context.with(traced.context, send) : send());
      } catch (err) {
        traced?.end(undefined, err);
        throw err;
      }
      traced?.end(outcomes);
      m.metrics?.countSent(topic, messages, outcomes, (performance.now() - started) / 1000);
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

    EndTransaction: unary(logger, 'EndTransaction', async (req, ctx, call) => {
      const topic = checkTopicName(qualify(req.topic, ctx.namespace, 'topic'));
      if (req.resolution !== 'COMMIT' && req.resolution !== 'ROLLBACK') {
        throw errors.badRequest(
          `transaction resolution must be COMMIT or ROLLBACK, not ${req.resolution}`,
        );
      }
      const end = {
        topic,
        messageId: req.message_id,
        transactionId: req.transaction_id,
        commit: req.resolution === 'COMMIT',
        fromCheck: req.source === 'SOURCE_SERVER_CHECK',
      };
      await traceEndTransaction(
        {
          ...end,
          // The request's trace_context (a traceparent), else the call's metadata.
          request: contextOfTraceparent(req.trace_context) ?? extractTraceMetadata(call.metadata),
        },
        () => m.transactions.end(end),
      );
      return { status: OK_STATUS };
    }),

    // An unimplemented RPC: NOT_IMPLEMENTED, not UNSUPPORTED (rule in public-status.ts).
    RecallMessage: unary(logger, 'RecallMessage', () => {
      throw errors.notImplemented('RecallMessage (cancelling a delayed message)');
    }),
  };
}
