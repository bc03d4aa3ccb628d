/**
 * `sluice`: the umbrella command. `sluice standalone` runs a whole cluster on
 * this machine; `sluice namesrv|broker|gateway|admin …` run one component
 * exactly as the mq* binaries do.
 */
import { Command } from 'commander';
import { brokerComponent } from '../broker/main.js';
import { componentCommand } from '../common/cli.js';
import { gatewayComponent } from '../gateway/main.js';
import { namesrvComponent } from '../namesrv/main.js';
import { standaloneCommand } from './standalone.js';

const program = new Command('sluice')
  .description('Sluice: a RocketMQ-style message queue with a REST and gRPC gateway')
  .addCommand(standaloneCommand())
  .addCommand(componentCommand(namesrvComponent).name('namesrv'))
  .addCommand(componentCommand(brokerComponent).name('broker'))
  .addCommand(componentCommand(gatewayComponent).name('gateway'));

await program.parseAsync();
