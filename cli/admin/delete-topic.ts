/** `mqadmin deleteTopic`: delete a topic from every master of a cluster (all clusters without -c). */
import { checkTopicName } from '../../common/names.js';
import { adminCommand } from './context.js';

export function deleteTopicCommand() {
  return adminCommand<{ topic: string; clusterName?: string }>(
    'deleteTopic',
    'Delete a topic from a cluster (-c) or from every cluster',
    (cmd) =>
      cmd
        .requiredOption('-t, --topic <topic>', 'topic name')
        .option('-c, --clusterName <name>', 'cluster to delete it from (default: all)'),
    async (ctx, opts) => {
      checkTopicName(opts.topic);
      await ctx.namesrv.deleteTopic({ topic: opts.topic, cluster_name: opts.clusterName ?? '' });
      if (ctx.json)
        ctx.printJson({ topic: opts.topic, cluster: opts.clusterName ?? null, deleted: true });
      else
        ctx.out(`delete topic [${opts.topic}] from cluster [${opts.clusterName ?? '*'}] success.`);
    },
  );
}
