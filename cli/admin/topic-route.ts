/** `mqadmin topicRoute`: which broker groups serve a topic, with queue counts and perm. */
import { brokerAddrMap } from '../../common/broker-addrs.js';
import { adminCommand } from './context.js';
import { permString, table } from './format.js';

export function topicRouteCommand() {
  return adminCommand<{ topic: string; list?: boolean }>(
    'topicRoute',
    'Show the route of a topic: broker groups, addresses, queues, permission',
    (cmd) =>
      cmd
        .requiredOption('-t, --topic <topic>', 'topic name')
        // RocketMQ prints JSON unless -l asks for a list; here the list is the default.
        .option('-l, --list', 'print a table (the default; --json for JSON)'),
    async (ctx, opts) => {
      const route = await ctx.namesrv.route(opts.topic);
      if (ctx.json) {
        ctx.printJson({
          topic: route.topic,
          queueDatas: route.queue_datas.map((q) => ({
            brokerName: q.broker_name,
            readQueueNums: q.read_queue_nums,
            writeQueueNums: q.write_queue_nums,
            perm: q.perm,
            messageType: q.message_type,
          })),
          brokerDatas: route.broker_datas.map((b) => ({
            cluster: b.cluster,
            brokerName: b.broker_name,
            brokerAddrs: Object.fromEntries(brokerAddrMap(b.broker_addrs)),
          })),
        });
        return;
      }
      const brokers = new Map(route.broker_datas.map((b) => [b.broker_name, b]));
      let read = 0;
      let write = 0;
      const rows = route.queue_datas.map((q) => {
        const b = brokers.get(q.broker_name);
        read += q.read_queue_nums;
        write += q.write_queue_nums;
        const addrs = [...brokerAddrMap(b?.broker_addrs ?? {})]
          .map(([id, addr]) => `${id}:${addr}`)
          .join(',');
        return [
          b?.cluster ?? '-',
          q.broker_name,
          `{${addrs}}`,
          q.read_queue_nums,
          q.write_queue_nums,
          permString(q.perm),
        ];
      });
      rows.push(['Total', `${route.queue_datas.length} brokers`, '', read, write, '']);
      ctx.out(
        table(
          ['ClusterName', 'BrokerName', 'BrokerAddrs', 'ReadQueue', 'WriteQueue', 'Perm'],
          rows,
        ),
      );
    },
  );
}
