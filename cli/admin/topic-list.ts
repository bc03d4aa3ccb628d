/** `mqadmin topicList`: every topic the name server routes; `-c` adds its clusters. */
import { adminCommand } from './context.js';
import { table } from './format.js';

export function topicListCommand() {
  return adminCommand<{ clusterModel?: boolean }>(
    'topicList',
    'List every topic the name server knows',
    (cmd) => cmd.option('-c, --clusterModel', 'show the cluster of each topic'),
    async (ctx, opts) => {
      const topics = await ctx.namesrv.topicList();
      if (!opts.clusterModel) {
        if (ctx.json) ctx.printJson({ topics });
        else if (topics.length > 0) ctx.out(topics.join('\n'));
        return;
      }
      const routes = topics.length > 0 ? await ctx.namesrv.routes(topics) : [];
      const rows = routes.flatMap((r) =>
        [...new Set(r.broker_datas.map((b) => b.cluster))]
          .sort()
          .map((cluster) => ({ cluster, topic: r.topic })),
      );
      if (ctx.json) ctx.printJson({ topics: rows });
      else
        ctx.out(
          table(
            ['Cluster Name', 'Topic'],
            rows.map((r) => [r.cluster, r.topic]),
          ),
        );
    },
  );
}
