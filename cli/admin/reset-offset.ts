/**
 * `mqadmin resetOffsetByTime`: move a consumer group's offsets on every queue
 * of a topic to the first message stored at or after a time.
 */
import { checkGroupName, checkTopicName } from '../../common/names.js';
import { adminCommand, routeBrokers } from './context.js';
import { formatTime, parseTimestamp, table } from './format.js';

export function resetOffsetByTimeCommand() {
  return adminCommand<{ groupName: string; topic: string; timestamp: string }>(
    'resetOffsetByTime',
    "Reset a consumer group's offsets of a topic to a point in time",
    (cmd) =>
      cmd
        .requiredOption('-g, --groupName <group>', 'consumer group')
        .requiredOption('-t, --topic <topic>', 'topic')
        .requiredOption('-s, --timestamp <time>', 'now, epoch ms or yyyy-MM-dd#HH:mm:ss:SSS'),
    async (ctx, opts) => {
      checkGroupName(opts.groupName);
      checkTopicName(opts.topic);
      const timestamp = parseTimestamp(opts.timestamp);
      const route = await ctx.namesrv.route(opts.topic);
      const masters = routeBrokers(route).filter((b) => b.brokerId === 0);
      const results = await Promise.all(
        masters.map(async (b) => ({
          brokerName: b.brokerName,
          offsets: (
            await ctx.brokers.resetOffsetByTime(b.addr, {
              consumer_group: opts.groupName,
              topic: opts.topic,
              timestamp_ms: timestamp,
            })
          ).offsets,
        })),
      );
      const rows = results.flatMap((r) =>
        [...r.offsets]
          .sort((a, b) => a.queue_id - b.queue_id)
          .map((o) => ({ brokerName: r.brokerName, queueId: o.queue_id, offset: o.offset })),
      );
      if (ctx.json) {
        ctx.printJson({
          group: opts.groupName,
          topic: opts.topic,
          timestampMs: timestamp,
          offsets: rows,
        });
        return;
      }
      ctx.out(
        `rollback consumer offset by specified group[${opts.groupName}], topic[${opts.topic}], timestamp(string)[${formatTime(timestamp)}], timestamp(long)[${timestamp}]`,
      );
      ctx.out(
        table(
          ['brokerName', 'queueId', 'offset'],
          rows.map((r) => [r.brokerName, r.queueId, r.offset]),
        ),
      );
    },
  );
}
