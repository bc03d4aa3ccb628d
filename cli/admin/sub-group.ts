/**
 * `mqadmin updateSubGroup` / `deleteSubGroup`: consumer group config on every
 * master of a cluster (-c) or one broker (-b). Flags left out keep the
 * group's current value on that broker (RocketMQ's defaults for a new group).
 */
import type { SubscriptionGroupConfig } from '../../common/generated/sluice/v1/SubscriptionGroupConfig.js';
import { checkGroupName } from '../../common/names.js';
import { adminCommand, boolArg, intArg, resolveMasters } from './context.js';

/**
 * A new group as RocketMQ's SubscriptionGroupConfig starts. retry_max_times
 * is left unset: the broker applies its maxReconsumeTimes.
 */
export const NEW_SUBSCRIPTION_GROUP: Omit<SubscriptionGroupConfig, 'group_name'> = {
  consume_enable: true,
  consume_broadcast_enable: true,
  consume_message_orderly: false,
  which_broker_when_consume_slowly: 1,
};

interface UpdateFlags {
  groupName: string;
  clusterName?: string;
  brokerAddr?: string;
  consumeEnable?: boolean;
  consumeBroadcastEnable?: boolean;
  consumeMessageOrderly?: boolean;
  retryMaxTimes?: number;
  whichBrokerWhenConsumeSlowly?: number;
  consumeFromMinEnable?: boolean;
  retryQueueNums?: number;
  brokerId?: number;
  notifyConsumerIdsChanged?: boolean;
}

/** RocketMQ flags of updateSubGroup that Sluice accepts without effect, and why. */
const IGNORED_UPDATE_FLAGS: readonly [keyof UpdateFlags, string, string][] = [
  [
    'consumeFromMinEnable',
    '-m, --consumeFromMinEnable',
    'a new group starts from the committed offset, else the queue start',
  ],
  ['retryQueueNums', '-q, --retryQueueNums', 'every group has one %RETRY% topic queue per broker'],
  ['brokerId', '-i, --brokerId', 'consumers read from the master; see -w for slow consumers'],
  [
    'notifyConsumerIdsChanged',
    '-a, --notifyConsumerIdsChanged',
    'pop consumers do not rebalance queues',
  ],
];

export function updateSubGroupCommand() {
  return adminCommand<UpdateFlags>(
    'updateSubGroup',
    'Create or update a consumer group on a cluster (-c) or one broker (-b)',
    (cmd) =>
      cmd
        .requiredOption('-g, --groupName <group>', 'consumer group')
        .option('-c, --clusterName <name>', 'every master of this cluster')
        .option('-b, --brokerAddr <addr|name>', 'one broker, by address or broker name')
        .option('-s, --consumeEnable [bool]', 'let the group consume', boolArg)
        .option('-d, --consumeBroadcastEnable [bool]', 'allow broadcast consumption', boolArg)
        .option(
          '-o, --consumeMessageOrderly [bool]',
          'FIFO: next message of a message group only after the previous is settled',
          boolArg,
        )
        .option(
          '-r, --retryMaxTimes <n>',
          'deliveries before a message goes to the DLQ',
          intArg(1, 1000),
        )
        .option(
          '-w, --whichBrokerWhenConsumeSlowly <id>',
          'broker id suggested to slow consumers',
          intArg(0),
        )
        .option('-m, --consumeFromMinEnable [bool]', 'accepted for RocketMQ; no effect', boolArg)
        .option('-q, --retryQueueNums <n>', 'accepted for RocketMQ; no effect', intArg(1))
        .option('-i, --brokerId <id>', 'accepted for RocketMQ; no effect', intArg(0))
        .option(
          '-a, --notifyConsumerIdsChanged [bool]',
          'accepted for RocketMQ; no effect',
          boolArg,
        ),
    async (ctx, opts) => {
      checkGroupName(opts.groupName);
      for (const [key, flag, why] of IGNORED_UPDATE_FLAGS) {
        if (opts[key] !== undefined) ctx.ignored(flag, why);
      }
      const targets = await resolveMasters(ctx, opts);
      const results = await Promise.all(
        targets.map(async (t) => {
          const existing = (await ctx.brokers.subscriptionGroups(t.addr)).find(
            (g) => g.group_name === opts.groupName,
          );
          const config: SubscriptionGroupConfig = {
            ...NEW_SUBSCRIPTION_GROUP,
            ...existing,
            group_name: opts.groupName,
            ...(opts.consumeEnable !== undefined && { consume_enable: opts.consumeEnable }),
            ...(opts.consumeBroadcastEnable !== undefined && {
              consume_broadcast_enable: opts.consumeBroadcastEnable,
            }),
            ...(opts.consumeMessageOrderly !== undefined && {
              consume_message_orderly: opts.consumeMessageOrderly,
            }),
            ...(opts.retryMaxTimes !== undefined && { retry_max_times: opts.retryMaxTimes }),
            ...(opts.whichBrokerWhenConsumeSlowly !== undefined && {
              which_broker_when_consume_slowly: opts.whichBrokerWhenConsumeSlowly,
            }),
          };
          await ctx.brokers.updateSubscriptionGroup(t.addr, config);
          return { addr: t.addr, config };
        }),
      );
      if (ctx.json) {
        ctx.printJson({ updated: results });
        return;
      }
      for (const r of results) {
        ctx.out(`create subscription group to ${r.addr} success.`);
        ctx.out(
          `SubscriptionGroupConfig [groupName=${r.config.group_name}, consumeEnable=${r.config.consume_enable}, consumeBroadcastEnable=${r.config.consume_broadcast_enable}, consumeMessageOrderly=${r.config.consume_message_orderly}, retryMaxTimes=${r.config.retry_max_times ?? 'broker default'}, whichBrokerWhenConsumeSlowly=${r.config.which_broker_when_consume_slowly}]`,
        );
      }
    },
  );
}

export function deleteSubGroupCommand() {
  return adminCommand<{
    groupName: string;
    clusterName?: string;
    brokerAddr?: string;
    removeOffset?: boolean;
  }>(
    'deleteSubGroup',
    'Delete a consumer group (and its offsets) from a cluster (-c) or one broker (-b)',
    (cmd) =>
      cmd
        .requiredOption('-g, --groupName <group>', 'consumer group')
        .option('-c, --clusterName <name>', 'every master of this cluster')
        .option('-b, --brokerAddr <addr|name>', 'one broker, by address or broker name')
        .option('-r, --removeOffset [bool]', 'remove the offsets too (always done)', boolArg),
    async (ctx, opts) => {
      checkGroupName(opts.groupName);
      if (opts.removeOffset === false)
        ctx.ignored('-r false', 'a deleted group never keeps its offsets in Sluice');
      const targets = await resolveMasters(ctx, opts);
      await Promise.all(
        targets.map((t) => ctx.brokers.deleteSubscriptionGroup(t.addr, opts.groupName)),
      );
      if (ctx.json)
        ctx.printJson({ group: opts.groupName, deletedFrom: targets.map((t) => t.addr) });
      else
        for (const t of targets)
          ctx.out(`delete subscription group [${opts.groupName}] from broker [${t.addr}] success.`);
    },
  );
}
