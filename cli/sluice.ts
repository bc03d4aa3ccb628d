/**
 * `sluice`: the umbrella command. `sluice standalone` runs a whole cluster on
 * this machine, `sluice cluster --conf DIR` a deploy/conf template;
 * `sluice namesrv|broker|gateway|admin …` do exactly what the mq* binaries do.
 *
 * The server components and mqadmin are imported only when their subcommand
 * runs (or for help): together they cost ~0.5 s of module loading, which
 * `npm start` would otherwise pay before it starts a single child.
 */
import { Command } from 'commander';
import type { ComponentSpec } from '../common/cli.js';
import type { Schema } from '../common/config/options.js';
import { clusterCommand } from './cluster.js';
import { standaloneCommand } from './standalone.js';

/** The `sluice NAME` command of a server component, loaded when asked for. */
function lazyComponent<S extends Schema>(
  name: string,
  load: () => Promise<ComponentSpec<S>>,
): () => Promise<Command> {
  return async () => {
    const [{ componentCommand }, spec] = await Promise.all([import('../common/cli.js'), load()]);
    return componentCommand(spec).name(name);
  };
}

const LAZY: Record<string, () => Promise<Command>> = {
  admin: async () => (await import('./admin/program.js')).mqadminProgram().name('admin'),
  namesrv: lazyComponent(
    'namesrv',
    async () => (await import('../namesrv/main.js')).namesrvComponent,
  ),
  broker: lazyComponent('broker', async () => (await import('../broker/main.js')).brokerComponent),
  gateway: lazyComponent(
    'gateway',
    async () => (await import('../gateway/main.js')).gatewayComponent,
  ),
};

const program = new Command('sluice')
  .description('Sluice: a RocketMQ-style message queue with a REST and gRPC gateway')
  .addCommand(standaloneCommand())
  .addCommand(clusterCommand());

try {
  // First non-option word: the subcommand. standalone and cluster need none of
  // the lazy ones; help, an unknown word or no word at all lists every one.
  const sub = process.argv.slice(2).find((a) => !a.startsWith('-'));
  const eager = sub === 'standalone' || sub === 'cluster';
  const wanted = eager ? [] : sub !== undefined && sub in LAZY ? [sub] : Object.keys(LAZY);
  for (const cmd of await Promise.all(wanted.map((n) => LAZY[n]!()))) program.addCommand(cmd);
  await program.parseAsync();
} catch (err) {
  process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
