/**
 * ReceiveMessage, AckMessage, ChangeInvisibleDuration,
 * ForwardMessageToDeadLetterQueue. Spans (tracing on) are the core's
 * (gateway/core/message-tracing.ts), with the call's traceparent/tracestate
 * metadata as the request's context.
 */
import { Code, errors, isSluiceError } from '../../common/errors.js';
import type { MessagingServiceHandlers } from '../../common/generated/apache/rocketmq/v2/MessagingService.js';
import type { ReceiveMessageRequest__Output } from '../../common/generated/apache/rocketmq/v2/ReceiveMessageRequest.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { checkGroupName, checkTopicName } from '../../common/names.js';
import { extractTraceMetadata } from '../../common/telemetry/grpc-metadata.js';
import type { ReceiveOptions } from '../core/gateway-service.js';
import { traceReceive, traceSettle } from '../core/message-tracing.js';
import { qualify } from './client-context.js';
import { serverStream, unary, withCallSignal } from './handler-kit.js';
import { toPublicMessage } from './message-mapping.js';
import type { MessagingContext } from './messaging-context.js';
import { toMillis, toTimestamp } from './proto-time.js';
import { OK_STATUS, publicStatus, summarize, toPublicStatus } from './public-status.js';

type ConsumeHandlers = Pick<
  MessagingServiceHandlers,
  'ReceiveMessage' | 'AckMessage' | 'ChangeInvisibleDuration' | 'ForwardMessageToDeadLetterQueue'
>;

/**
 * How long a receive may wait: what the client asks (or the default), at most
 * the maximum, and short enough to answer before the client's deadline.
 */
export function longPollMs(
  asked: number | undefined,
  deadline: Date | number,
  now: number,
  opts: { defaultLongPollingMs: number; maxLongPollingMs: number; deadlineMarginMs: number },
): number {
  let wait = Math.min(asked ?? opts.defaultLongPollingMs, opts.maxLongPollingMs);
  const until = deadline instanceof Date ? deadline.getTime() : deadline;
  if (Number.isFinite(until)) wait = Math.min(wait, until - now - opts.deadlineMarginMs);
  return Math.max(0, wait);
}

export function consumeHandlers(m: MessagingContext): ConsumeHandlers {
  const { logger, options } = m;

  /** Receives; a topic the route cache still believes unknown is looked up afresh once. */
  const receive = async (
    topic: string,
    group: string,
    opts: ReceiveOptions,
  ): Promise<StoredMessage__Output[]> => {
    try {
      return await m.service.receive(topic, group, opts);
    } catch (err) {
      if (!isSluiceError(err, Code.TOPIC_NOT_FOUND)) throw err;
      await m.routes.invalidate(topic);
      return m.service.receive(topic, group, opts);
    }
  };

  const receiveRequest = (req: ReceiveMessageRequest__Output, namespace: string) => {
    const group = checkGroupName(qualify(req.group, namespace, 'group'));
    const topic = checkTopicName(qualify(req.message_queue?.topic, namespace, 'topic'));
    const filter = req.filter_expression;
    if (filter?.type === 'SQL') throw errors.unsupported('SQL92 filtering');
    if (req.batch_size <= 0)
      throw errors.badRequest(`batch_size must be at least 1, not ${req.batch_size}`);
    return {
      group,
      topic,
      filter: filter?.expression.trim() || '*',
      max: Math.min(req.batch_size, options.maxReceiveBatch),
      invisibleMs: toMillis(req.invisible_duration) ?? options.defaultInvisibleMs,
    };
  };

  return {
    ReceiveMessage: serverStream(logger, 'ReceiveMessage', async (req, ctx, call) => {
      const r = receiveRequest(req, ctx.namespace);
      m.registry.noteTopic(ctx.clientId, r.topic);
      const waitMs = longPollMs(
        toMillis(req.long_polling_timeout),
        call.getDeadline(),
        Date.now(),
        options,
      );
      const startedAt = Date.now();
      const started = performance.now();
      const messages = await withCallSignal(call, m.shutdown, (signal) =>
        receive(r.topic, r.group, {
          max: r.max,
          waitMs,
          invisibleMs: r.invisibleMs,
          filter: r.filter,
          signal,
        }),
      );
      if (call.cancelled) {
        // The client went away before anything was written: the next receive of
        // the group gets these, else their broker shows them again at once,
        // without counting a delivery attempt (as REST does).
        m.service.unclaimed(r.topic, r.group, r.filter, messages);
        return;
      }
      m.metrics?.receiveDuration.observe({ topic: r.topic }, (performance.now() - started) / 1000);
      if (messages.length === 0) {
        call.write({ status: publicStatus(Code.MESSAGE_NOT_FOUND, 'no new message') });
        return;
      }
      m.metrics?.countDelivered(r.topic, messages);
      traceReceive(r.topic, r.group, messages, extractTraceMetadata(call.metadata), startedAt);
      call.write({ status: OK_STATUS });
      for (const msg of messages) {
        call.write({
          message: toPublicMessage(msg, {
            namespace: ctx.namespace,
            invisibleMs: r.invisibleMs,
            readFrom: r.topic,
          }),
        });
      }
      call.write({ delivery_timestamp: toTimestamp(Date.now()) });
    }),

    AckMessage: unary(logger, 'AckMessage', async (req, ctx, call) => {
      const group = checkGroupName(qualify(req.group, ctx.namespace, 'group'));
      const topic = checkTopicName(qualify(req.topic, ctx.namespace, 'topic'));
      if (req.entries.length === 0)
        throw errors.badRequest('an AckMessageRequest needs at least one entry');
      const handles = req.entries.map((e) => e.receipt_handle);
      const results = await traceSettle(
        {
          operation: 'ack',
          topic,
          group,
          handles,
          request: extractTraceMetadata(call.metadata),
          failures: (rs) => rs.filter((s) => s.code !== Code.OK).length,
        },
        () => m.acks.ack(topic, group, handles),
      );
      m.metrics?.countAcked(topic, results);
      const statuses = results.map((s) => publicStatus(s.code, s.message));
      return {
        status: summarize(statuses),
        entries: req.entries.map((e, i) => ({
          message_id: e.message_id,
          receipt_handle: e.receipt_handle,
          status: statuses[i] ?? toPublicStatus(errors.internal('no answer')),
        })),
      };
    }),

    ChangeInvisibleDuration: unary(logger, 'ChangeInvisibleDuration', async (req, ctx, call) => {
      const group = checkGroupName(qualify(req.group, ctx.namespace, 'group'));
      const topic = checkTopicName(qualify(req.topic, ctx.namespace, 'topic'));
      const ms = toMillis(req.invisible_duration);
      if (ms === undefined || ms < 0)
        throw errors.illegalInvisibleTime(ms ?? -1, 'invisible_duration is required');
      const receipt_handle = await traceSettle(
        {
          operation: 'change_invisible',
          topic,
          group,
          handles: [req.receipt_handle],
          request: extractTraceMetadata(call.metadata),
          renewed: (handle) => handle,
        },
        () => m.service.changeInvisible(topic, group, req.receipt_handle, ms),
      );
      return { status: OK_STATUS, receipt_handle };
    }),

    ForwardMessageToDeadLetterQueue: unary(
      logger,
      'ForwardMessageToDeadLetterQueue',
      async (req, ctx, call) => {
        const group = checkGroupName(qualify(req.group, ctx.namespace, 'group'));
        const topic = checkTopicName(qualify(req.topic, ctx.namespace, 'topic'));
        await traceSettle(
          {
            operation: 'dead_letter',
            topic,
            group,
            handles: [req.receipt_handle],
            request: extractTraceMetadata(call.metadata),
          },
          () => m.service.deadLetter(topic, group, req.receipt_handle),
        );
        return { status: OK_STATUS };
      },
    ),
  };
}
