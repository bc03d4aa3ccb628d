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
import { clusterCommand } from './cluster.js';
import { standaloneCommand } from './standalone.js';

const LAZY: Record<string, () => Promise<Command>> = {
  admin: async () => (await import('./admin/program.js')).mqadminProgram().name('admin'),
  namesrv: async () => {
    const [{ componentCommand }, { namesrvComponent }] = await Promise.all([
      import('../common/cli.js'),
      import('../namesrv/main.js'),
    ]);
    return componentCommand(namesrvComponent).name('namesrv');
  },
  broker: async () => {
    const [{ componentCommand }, { brokerComponent }] = await Promise.all([
      import('../common/cli.js'),
      import('../broker/main.js'),
    ]);
    return componentCommand(brokerComponent).name('broker');
  },
  gateway: async () => {
    const [{ componentCommand }, { gatewayComponent }] = await Promise.all([
      import('../common/cli.js'),
      import('../gateway/main.js'),
    ]);
    return componentCommand(gatewayComponent).name('gateway');
  },
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
