/**
 * The mqadmin program: RocketMQ's command names and flags, one subcommand
 * per file in this folder. Usage errors print one line and exit 1.
 */
import { Command } from 'commander';
import { brokerStatusCommand, getBrokerConfigCommand } from './broker-info.js';
import { clusterListCommand } from './cluster-list.js';
import { consumerProgressCommand } from './consumer-progress.js';
import { deleteTopicCommand } from './delete-topic.js';
import { deleteKvConfigCommand, getKvConfigCommand, updateKvConfigCommand } from './kv-config.js';
import { queryMsgByIdCommand, queryMsgByKeyCommand } from './query-msg.js';
import { resetOffsetByTimeCommand } from './reset-offset.js';
import { deleteSubGroupCommand, updateSubGroupCommand } from './sub-group.js';
import { topicListCommand } from './topic-list.js';
import { topicRouteCommand } from './topic-route.js';
import { topicStatusCommand } from './topic-status.js';
import { updateTopicCommand } from './update-topic.js';
import { addWritePermCommand, wipeWritePermCommand } from './write-perm.js';

export const ADMIN_COMMANDS: (() => Command)[] = [
  clusterListCommand,
  topicListCommand,
  updateTopicCommand,
  deleteTopicCommand,
  topicRouteCommand,
  topicStatusCommand,
  updateSubGroupCommand,
  deleteSubGroupCommand,
  consumerProgressCommand,
  queryMsgByIdCommand,
  queryMsgByKeyCommand,
  resetOffsetByTimeCommand,
  wipeWritePermCommand,
  addWritePermCommand,
  brokerStatusCommand,
  getBrokerConfigCommand,
  updateKvConfigCommand,
  deleteKvConfigCommand,
  getKvConfigCommand,
];

/** commander's error text (possibly several lines) as one line. */
function oneLine(text: string): string {
  return text
    .replace(/\s*\n\s*/g, ' ')
    .replace(/^error: /, '')
    .trim();
}

/**
 * Builds the program; `parseAsync(process.argv)` runs it.
 *
 * @example await mqadminProgram().parseAsync(['node', 'mqadmin', 'clusterList', '-n', '127.0.0.1:9876']);
 */
export function mqadminProgram(): Command {
  const program: Command = new Command('mqadmin')
    .description('Sluice admin tool: RocketMQ mqadmin commands against name servers and brokers')
    .usage('<command> [options]')
    .addHelpText(
      'after',
      `
Name servers come from -n (";"-separated) or NAMESRV_ADDR. Tables by default, --json for scripts.
See 'mqadmin help <command>' for the flags of a command.`,
    );
  for (const make of ADMIN_COMMANDS) {
    const cmd = make();
    cmd.configureOutput({
      outputError: (text, write) => write(`mqadmin ${cmd.name()}: ${oneLine(text)}\n`),
    });
    program.addCommand(cmd);
  }
  // commander's own help command prints the whole help and exits 1 for an
  // unknown command; ours says which command is unknown, in one line.
  program.helpCommand(false);
  program.addCommand(
    new Command('help')
      .description('display help for command')
      .argument('[command]', 'the command to explain')
      .action((name: string | undefined) => {
        if (name === undefined) {
          program.outputHelp();
          return;
        }
        const cmd = program.commands.find((c) => c.name() === name);
        if (!cmd) program.error(`unknown command '${name}'`, { code: 'mqadmin.unknownCommand' });
        cmd.outputHelp();
      }),
  );
  program.configureOutput({ outputError: (text, write) => write(`mqadmin: ${oneLine(text)}\n`) });
  return program;
}
