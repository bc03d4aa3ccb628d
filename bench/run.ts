/**
 * `npm run bench [NAME ...] [-- ARGS]`: runs benchmarks one after another in
 * child processes, so each starts from a quiet machine and its figures are not
 * skewed by the previous one's leftovers. No name lists what there is; `all`
 * runs every benchmark in the order below (store first: the others build on it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCHES: Record<string, string> = {
  store: 'commitlog append / flush / read / recovery / RSS (issue 3)',
  broker: 'internal gRPC send, pop + ack, timers (issue 5)',
  gateway: 'REST send / receive / ack / latency / long polls, NATS side by side (issue 6)',
  grpc: 'official RocketMQ SDK through the gateway vs REST (issue 7)',
  ha: 'SYNC vs ASYNC master, replication lag, failover time (issue 8)',
};

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const names = args.filter((a) => a in BENCHES || a === 'all');
const rest = args.filter((a) => !(a in BENCHES) && a !== 'all');

if (names.length === 0) {
  const unknown = rest.find((a) => !a.startsWith('-'));
  if (unknown) process.stderr.write(`bench: no benchmark named "${unknown}"\n`);
  process.stdout.write(
    'usage: npm run bench NAME [NAME ...] | all   (extra --flags go to each)\n\n',
  );
  for (const [name, what] of Object.entries(BENCHES)) {
    process.stdout.write(`  ${name.padEnd(8)} ${what}\n`);
  }
  process.exit(unknown ? 2 : 0);
}

const run = names.includes('all') ? Object.keys(BENCHES) : names;
let failed = 0;
for (const name of run) {
  const file = join(here, `${name}.ts`);
  if (!existsSync(file)) throw new Error(`bench/${name}.ts is missing`);
  process.stdout.write(`\n### bench ${name}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...rest], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`bench ${name} exited with ${r.status ?? r.signal}\n`);
  }
}
process.exit(failed === 0 ? 0 : 1);
