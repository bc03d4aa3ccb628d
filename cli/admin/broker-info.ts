/** `mqadmin brokerStatus` / `getBrokerConfig`: runtime figures and effective config of brokers. */

import { errors } from '../../common/errors.js';
import type { AdminContext, BrokerTarget } from './context.js';
import { adminCommand, brokersOf, isAddress } from './context.js';
import { keyValues } from './format.js';

/** `-b ADDR|NAME` (every broker of that group for a name) or `-c CLUSTER` (all its brokers). */
async function resolveBrokers(
  ctx: AdminContext,
  flags: { brokerAddr?: string; clusterName?: string },
): Promise<BrokerTarget[]> {
  if (!flags.brokerAddr === !flags.clusterName)
    throw errors.badRequest('name a broker (-b) or a cluster (-c), one of the two');
  const b = flags.brokerAddr;
  if (b && isAddress(b)) return [{ cluster: '', brokerName: '', brokerId: -1, addr: b }];
  const all = brokersOf(await ctx.namesrv.clusterInfo());
  const found = b
    ? all.filter((t) => t.brokerName === b)
    : all.filter((t) => t.cluster === flags.clusterName);
  if (found.length === 0) {
    throw errors.notFound(
      b
        ? `broker '${b}' is not registered`
        : `cluster '${flags.clusterName}' has no brokers registered`,
    );
  }
  return found;
}

function infoCommand(name: 'brokerStatus' | 'getBrokerConfig') {
  const status = name === 'brokerStatus';
  return adminCommand<{ brokerAddr?: string; clusterName?: string }>(
    name,
    status
      ? 'Show runtime figures of a broker (-b) or of every broker of a cluster (-c)'
      : 'Show the effective config of a broker (-b) or of every broker of a cluster (-c)',
    (cmd) =>
      cmd
        .option('-b, --brokerAddr <addr|name>', 'broker address (or broker name)')
        .option('-c, --clusterName <name>', 'every broker of this cluster'),
    async (ctx, opts) => {
      const targets = await resolveBrokers(ctx, opts);
      const answers = await Promise.all(
        targets.map(async (t) => ({
          addr: t.addr,
          values: await (status ? ctx.brokers.status(t.addr) : ctx.brokers.config(t.addr)),
        })),
      );
      if (ctx.json) {
        ctx.printJson(Object.fromEntries(answers.map((a) => [a.addr, a.values])));
        return;
      }
      const blocks = answers.map((a) =>
        status && answers.length === 1
          ? keyValues(a.values, ':')
          : `============${a.addr}============\n${keyValues(a.values, status ? ':' : '=')}`,
      );
      ctx.out(blocks.join('\n\n'));
    },
  );
}

export const brokerStatusCommand = () => infoCommand('brokerStatus');
export const getBrokerConfigCommand = () => infoCommand('getBrokerConfig');
