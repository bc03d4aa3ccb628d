/**
 * mqadmin: RocketMQ's admin commands for Sluice. Any failure prints one line
 * on stderr and exits non-zero; no stack traces.
 */
import { mqadminProgram } from './admin/program.js';

const program = mqadminProgram();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  const name = process.argv[2];
  const prefix = program.commands.some((c) => c.name() === name) ? `mqadmin ${name}` : 'mqadmin';
  process.stderr.write(`${prefix}: ${message.replace(/\s*\n\s*/g, ' ').trim()}\n`);
  process.exitCode = 1;
}
