/**
 * `sluice`: the umbrella command. `sluice standalone` runs a whole cluster on
 * this machine, `sluice cluster --conf DIR` a deploy/conf template;
 * `sluice namesrv|broker|gateway|admin …` do exactly what the mq* binaries do.
 */
import { Command } from 'commander';
import { brokerComponent } from '../broker/main.js';
import { componentCommand } from '../common/cli.js';
import { gatewayComponent } from '../gateway/main.js';
import { namesrvComponent } from '../namesrv/main.js';
import { mqadminProgram } from './admin/program.js';
import { clusterCommand } from './cluster.js';
import { standaloneCommand } from './standalone.js';

const program = new Command('sluice')
  .description('Sluice: a RocketMQ-style message queue with a REST and gRPC gateway')
  .addCommand(standaloneCommand())
  .addCommand(clusterCommand())
  .addCommand(mqadminProgram().name('admin'))
  .addCommand(componentCommand(namesrvComponent).name('namesrv'))
  .addCommand(componentCommand(brokerComponent).name('broker'))
  .addCommand(componentCommand(gatewayComponent).name('gateway'));

try {
  await program.parseAsync();
} catch (err) {
  process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
