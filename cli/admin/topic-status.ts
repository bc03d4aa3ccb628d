/** `mqadmin topicStatus`: min/max offset and last write time of every queue of a topic. */
import { errors } from '../../common/errors.js';
import { adminCommand, routeBrokers } from './context.js';
import { formatTime, table } from './format.js';

export function topicStatusCommand() {
  return adminCommand<{ topic: string; cluster?: string }>(
    'topicStatus',
    'Show min/max offsets of every queue of a topic',
    (cmd) =>
      cmd
        .requiredOption('-t, --topic <topic>', 'topic name')
        .option('-c, --cluster <name>', "only this cluster's brokers"),
    async (ctx, opts) => {
      const route = await ctx.namesrv.route(opts.topic);
      const brokers = routeBrokers(route).filter(
        (b) => !opts.cluster || b.cluster === opts.cluster,
      );
      if (brokers.length === 0)
        throw errors.notFound(`topic '${opts.topic}' has no broker in cluster '${opts.cluster}'`);
      const statuses = await Promise.all(
        brokers.map(async (b) => ({
          broker: b,
          status: await ctx.brokers.topicStatus(b.addr, opts.topic),
        })),
      );
      const rows = statuses.flatMap(({ broker, status }) =>
        [...status.queues]
          .sort((a, b) => a.queue_id - b.queue_id)
          .map((q) => ({
            brokerName: status.broker_name || broker.brokerName,
            queueId: q.queue_id,
            minOffset: q.min_offset,
            maxOffset: q.max_offset,
            lastUpdateTimestampMs: q.last_update_timestamp_ms,
          })),
      );
      if (ctx.json) {
        ctx.printJson({ topic: opts.topic, queues: rows });
        return;
      }
      ctx.out(
        table(
          ['Broker Name', 'QID', 'Min Offset', 'Max Offset', 'Last Updated'],
          rows.map((r) => [
            r.brokerName,
            r.queueId,
            r.minOffset,
            r.maxOffset,
            formatTime(r.lastUpdateTimestampMs),
          ]),
        ),
      );
    },
  );
}
