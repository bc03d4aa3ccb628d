/**
 * `mqadmin wipeWritePerm` / `addWritePerm`: take a broker group out of (or
 * back into) the write path on every name server of the list. The name
 * server also tells the group's master, which persists the permission and
 * refuses writes itself.
 */
import { adminCommand } from './context.js';
import { reportEach } from './each-namesrv.js';

function permCommand(name: 'wipeWritePerm' | 'addWritePerm') {
  const wipe = name === 'wipeWritePerm';
  return adminCommand<{ brokerName: string }>(
    name,
    wipe
      ? 'Stop new writes to a broker group (on every name server of -n)'
      : 'Let a broker group take writes again (on every name server of -n)',
    (cmd) => cmd.requiredOption('-b, --brokerName <name>', 'broker name'),
    async (ctx, opts) => {
      const results = wipe
        ? await ctx.namesrv.wipeWritePerm(opts.brokerName)
        : await ctx.namesrv.addWritePerm(opts.brokerName);
      const verb = wipe ? 'wipe' : 'add';
      const ok = reportEach(
        ctx,
        results,
        (addr, r) =>
          `${verb} write perm of broker[${opts.brokerName}] in name server[${addr}] OK, ${r.affected_topics}`,
      );
      for (const r of ok) {
        if (r.value.broker_error)
          ctx.warn(`warning: name server ${r.addr}: ${r.value.broker_error}`);
      }
      if (ctx.json) {
        ctx.printJson({
          brokerName: opts.brokerName,
          results: results.map((r) => ({
            namesrv: r.addr,
            affectedTopics: r.value?.affected_topics ?? null,
            brokerError: r.value?.broker_error || null,
            error: r.error?.message ?? null,
          })),
        });
      }
    },
  );
}

export const wipeWritePermCommand = () => permCommand('wipeWritePerm');
export const addWritePermCommand = () => permCommand('addWritePerm');
