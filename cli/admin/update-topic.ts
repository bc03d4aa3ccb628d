/**
 * `mqadmin updateTopic`: create or update a topic on every master of a
 * cluster (-c) or on one broker (-b address or name), through the name
 * server, which shows it in routes at once.
 */
import { InvalidArgumentError } from 'commander';
import { errors } from '../../common/errors.js';
import type { TopicConfig } from '../../common/generated/sluice/v1/TopicConfig.js';
import { checkTopicName, Perm } from '../../common/names.js';
import { adminCommand, boolArg, brokersOf, intArg, isAddress } from './context.js';
import { permString } from './format.js';

/** RocketMQ's mqadmin creates 8 read and 8 write queues unless told otherwise. */
export const DEFAULT_ADMIN_TOPIC_QUEUE_NUMS = 8;
export const MESSAGE_TYPES = ['NORMAL', 'FIFO', 'DELAY', 'TRANSACTION', 'MIXED'] as const;

function permArg(value: string): number {
  const perm = intArg(1, 7)(value);
  if ((perm & Perm.READ_WRITE) === 0)
    throw new InvalidArgumentError('perm must include read (4) or write (2)');
  return perm;
}

/** RocketMQ 5's `-a +message.type=FIFO` (comma-separated +key=value). */
function attributesArg(value: string): string {
  let messageType = '';
  for (const part of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^\+?([\w.]+)=(.*)$/.exec(part);
    if (!m) throw new InvalidArgumentError(`attribute '${part}' is not +key=value`);
    if (m[1] !== 'message.type') throw new InvalidArgumentError(`unsupported attribute '${m[1]}'`);
    const type = m[2]!.toUpperCase();
    if (!(MESSAGE_TYPES as readonly string[]).includes(type)) {
      throw new InvalidArgumentError(`message.type must be one of ${MESSAGE_TYPES.join(', ')}`);
    }
    messageType = type;
  }
  return messageType;
}

interface Flags {
  topic: string;
  clusterName?: string;
  brokerAddr?: string;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  order?: boolean;
  attributes?: string;
  unit?: boolean;
  hasUnitSub?: boolean;
}

export function updateTopicCommand() {
  return adminCommand<Flags>(
    'updateTopic',
    'Create or update a topic on a cluster (-c) or one broker (-b)',
    (cmd) =>
      cmd
        .requiredOption('-t, --topic <topic>', 'topic name')
        .option('-c, --clusterName <name>', 'every master of this cluster')
        .option('-b, --brokerAddr <addr|name>', 'one broker, by address or broker name')
        .option(
          '-r, --readQueueNums <n>',
          'read queues',
          intArg(1, 1024),
          DEFAULT_ADMIN_TOPIC_QUEUE_NUMS,
        )
        .option(
          '-w, --writeQueueNums <n>',
          'write queues',
          intArg(1, 1024),
          DEFAULT_ADMIN_TOPIC_QUEUE_NUMS,
        )
        .option(
          '-p, --perm <perm>',
          'permission: 2 write, 4 read, 6 read+write',
          permArg,
          Perm.READ_WRITE,
        )
        .option('-o, --order [bool]', 'ordered (FIFO) topic', boolArg)
        .option('-a, --attributes <attrs>', 'attributes, e.g. +message.type=FIFO', attributesArg)
        .option('-u, --unit [bool]', 'accepted for RocketMQ; no effect', boolArg)
        .option('-s, --hasUnitSub [bool]', 'accepted for RocketMQ; no effect', boolArg),
    async (ctx, opts) => {
      checkTopicName(opts.topic);
      if (opts.unit !== undefined) ctx.ignored('-u, --unit', 'Sluice has no unit topics');
      if (opts.hasUnitSub !== undefined)
        ctx.ignored('-s, --hasUnitSub', 'Sluice has no unit subscriptions');
      if (!opts.clusterName === !opts.brokerAddr)
        throw errors.badRequest('name a cluster (-c) or a broker (-b), one of the two');
      let brokerName = opts.brokerAddr ?? '';
      if (brokerName && isAddress(brokerName)) {
        const found = brokersOf(await ctx.namesrv.clusterInfo()).find(
          (b) => b.addr === opts.brokerAddr,
        );
        if (!found) throw errors.notFound(`no broker registered at ${opts.brokerAddr}`);
        if (found.brokerId !== 0)
          throw errors.badRequest(`${opts.brokerAddr} is a slave; topics are created on masters`);
        brokerName = found.brokerName;
      }
      const order = opts.order ?? false;
      const config: TopicConfig = {
        topic_name: opts.topic,
        read_queue_nums: opts.readQueueNums,
        write_queue_nums: opts.writeQueueNums,
        perm: opts.perm,
        order,
        message_type: opts.attributes || (order ? 'FIFO' : ''),
      };
      const res = await ctx.namesrv.updateTopic({
        config,
        cluster_name: opts.clusterName ?? '',
        broker_name: brokerName,
      });
      if (ctx.json) {
        ctx.printJson({ topic: config, brokerNames: res.broker_names });
        return;
      }
      for (const name of res.broker_names) ctx.out(`create topic to ${name} success.`);
      ctx.out(
        `TopicConfig [topicName=${config.topic_name}, readQueueNums=${config.read_queue_nums}, writeQueueNums=${config.write_queue_nums}, perm=${permString(opts.perm)}, order=${order}, messageType=${config.message_type || 'NORMAL'}]`,
      );
    },
  );
}
