/**
 * `mqadmin consumerProgress`: per queue, how far a consumer group has come
 * against the broker's max offset. Asks every broker group (its master, or a
 * slave when the master is gone).
 */
import { Code, isSluiceError } from '../../common/errors.js';
import { checkGroupName } from '../../common/names.js';
import { adminCommand, boolArg, groupLeaders } from './context.js';
import { formatTime, table } from './format.js';

export function consumerProgressCommand() {
  return adminCommand<{ groupName: string; topic?: string; showClientIP?: boolean }>(
    'consumerProgress',
    "Show a consumer group's offsets and lag per queue",
    (cmd) =>
      cmd
        .requiredOption('-g, --groupName <group>', 'consumer group')
        .option('-t, --topic <topic>', 'only this topic')
        .option('-s, --showClientIP [bool]', 'accepted for RocketMQ; no effect', boolArg),
    async (ctx, opts) => {
      checkGroupName(opts.groupName);
      if (opts.showClientIP)
        ctx.ignored(
          '-s, --showClientIP',
          'pop consumers do not own queues, so no client per queue',
        );
      const leaders = groupLeaders(await ctx.namesrv.clusterInfo());
      const answers = await Promise.all(
        leaders.map((b) =>
          ctx.brokers
            .consumerProgress(b.addr, { consumer_group: opts.groupName, topic: opts.topic ?? '' })
            .then((r) => ({
              broker: b,
              queues: r.queues,
              brokerName: r.broker_name || b.brokerName,
            }))
            .catch((err: unknown) => {
              if (
                isSluiceError(err, Code.CONSUMER_GROUP_NOT_FOUND) ||
                isSluiceError(err, Code.TOPIC_NOT_FOUND)
              ) {
                return { broker: b, queues: [], brokerName: b.brokerName };
              }
              throw err;
            }),
        ),
      );
      const rows = answers
        .flatMap((a) =>
          a.queues.map((q) => ({
            topic: q.topic,
            brokerName: a.brokerName,
            queueId: q.queue_id,
            brokerOffset: q.broker_offset,
            consumerOffset: q.consumer_offset,
            inFlight: q.in_flight,
            diff: Math.max(0, q.broker_offset - q.consumer_offset),
            lastTimestampMs: q.last_timestamp_ms,
          })),
        )
        .sort(
          (a, b) =>
            a.topic.localeCompare(b.topic) ||
            a.brokerName.localeCompare(b.brokerName) ||
            a.queueId - b.queueId,
        );
      const diffTotal = rows.reduce((sum, r) => sum + r.diff, 0);
      if (ctx.json) {
        ctx.printJson({ group: opts.groupName, queues: rows, diffTotal });
        return;
      }
      ctx.out(
        table(
          [
            'Topic',
            'Broker Name',
            'QID',
            'Broker Offset',
            'Consumer Offset',
            'Inflight',
            'Diff',
            'LastTime',
          ],
          rows.map((r) => [
            r.topic,
            r.brokerName,
            r.queueId,
            r.brokerOffset,
            r.consumerOffset,
            r.inFlight,
            r.diff,
            formatTime(r.lastTimestampMs),
          ]),
        ),
      );
      ctx.out('');
      ctx.out(`Diff Total: ${diffTotal}`);
    },
  );
}
