/**
 * `mqadmin resetOffsetByTime`: move a consumer group's offsets on every queue
 * of a topic to the first message stored at or after a time. With `-f false`
 * (RocketMQ's non-forced reset) an offset only ever moves back: a queue whose
 * committed offset is already at or before that message keeps it.
 */
import { Code, errors } from '../../common/errors.js';
import type { TopicRoute__Output } from '../../common/generated/sluice/v1/TopicRoute.js';
import { checkGroupName, checkTopicName } from '../../common/names.js';
import {
  type AdminContext,
  adminCommand,
  type BrokerTarget,
  boolArg,
  routeBrokers,
} from './context.js';
import { formatTime, parseTimestamp, table } from './format.js';

interface QueueResult {
  queue_id: number;
  offset: number;
}

/** RocketMQ's `isForce=false`: per queue, the earlier of the committed offset and the one at `timestamp`. */
async function resetBackOnly(
  ctx: AdminContext,
  route: TopicRoute__Output,
  broker: BrokerTarget,
  group: string,
  topic: string,
  timestamp: number,
): Promise<QueueResult[]> {
  const queues = route.queue_datas.find((q) => q.broker_name === broker.brokerName);
  if (!queues) throw errors.topicNotFound(topic);
  const committed = new Map(
    (await ctx.brokers.consumerOffsets(broker.addr, { consumer_group: group, topic })).offsets.map(
      (o) => [o.queue_id, Number(o.offset)],
    ),
  );
  const results: QueueResult[] = [];
  const moves: QueueResult[] = [];
  for (let queueId = 0; queueId < queues.read_queue_nums; queueId++) {
    const atTime = await ctx.brokers.searchOffsetByTime(broker.addr, {
      topic,
      queue_id: queueId,
      timestamp_ms: timestamp,
    });
    const current = committed.get(queueId);
    if (current === undefined) continue;
    if (atTime < current) moves.push({ queue_id: queueId, offset: atTime });
    results.push({ queue_id: queueId, offset: Math.min(atTime, current) });
  }
  if (moves.length > 0) {
    const res = await ctx.brokers.updateConsumerOffsets(broker.addr, {
      consumer_group: group,
      offsets: moves.map((m) => ({ topic, ...m })),
    });
    const bad = res.results.find((s) => s.code !== Code.OK);
    if (bad) throw errors.fromStatus(bad.code, bad.message, bad.reason);
  }
  return results;
}

export function resetOffsetByTimeCommand() {
  return adminCommand<{ groupName: string; topic: string; timestamp: string; force?: boolean }>(
    'resetOffsetByTime',
    "Reset a consumer group's offsets of a topic to a point in time",
    (cmd) =>
      cmd
        .requiredOption('-g, --groupName <group>', 'consumer group')
        .requiredOption('-t, --topic <topic>', 'topic')
        .requiredOption('-s, --timestamp <time>', 'now, epoch ms or yyyy-MM-dd#HH:mm:ss:SSS')
        .option(
          '-f, --force [bool]',
          'true (default): set every queue; false: only move offsets back',
          boolArg,
        ),
    async (ctx, opts) => {
      checkGroupName(opts.groupName);
      checkTopicName(opts.topic);
      const timestamp = parseTimestamp(opts.timestamp);
      const route = await ctx.namesrv.route(opts.topic);
      const masters = routeBrokers(route).filter((b) => b.brokerId === 0);
      const results = await Promise.all(
        masters.map(async (b) => ({
          brokerName: b.brokerName,
          offsets:
            opts.force === false
              ? await resetBackOnly(ctx, route, b, opts.groupName, opts.topic, timestamp)
              : (
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
          force: opts.force !== false,
          offsets: rows,
        });
        return;
      }
      ctx.out(
        `rollback consumer offset by specified group[${opts.groupName}], topic[${opts.topic}], force[${opts.force !== false}], timestamp(string)[${formatTime(timestamp)}], timestamp(long)[${timestamp}]`,
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
