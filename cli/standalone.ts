/**
 * `sluice standalone` (what `npm start` runs): one name server, one master
 * broker and one gateway on this machine, data under ./data, each a child
 * process; prints where they listen and a curl line to try. Ctrl-C stops
 * them in reverse order and says whether every one stopped cleanly (exit
 * status 1 when one had to be SIGKILLed or exited non-zero).
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_STOP_GRACE_MS, ManagedChild } from './supervisor.js';

export interface StandaloneOptions {
  data: string;
  namesrvPort: number;
  brokerPort: number;
  httpPort: number;
  grpcPort: number;
}

export async function runStandalone(opts: StandaloneOptions): Promise<void> {
  const data = resolve(opts.data);
  mkdirSync(join(data, 'logs'), { recursive: true });
  const log = (name: string) => join(data, 'logs', `${name}.log`);
  const namesrv = new ManagedChild({
    name: 'namesrv',
    bin: 'mqnamesrv',
    args: [
      `listenPort=${opts.namesrvPort}`,
      `kvConfigPath=${join(data, 'namesrv', 'kvConfig.json')}`,
    ],
    logFile: log('namesrv'),
    detached: true,
  });
  const children: ManagedChild[] = [namesrv];
  /** Stops every child, last started first; true when all exited 0 within the grace period. */
  const stopAll = async (): Promise<boolean> => {
    let clean = true;
    for (const c of [...children].reverse()) {
      const r = await c.stop();
      if (r.forced) {
        clean = false;
        process.stderr.write(
          `${c.spec.name} did not stop within ${DEFAULT_STOP_GRACE_MS} ms of SIGTERM; killed with SIGKILL (see ${c.spec.logFile})\n`,
        );
      } else if (r.code !== 0) {
        clean = false;
        process.stderr.write(
          `${c.spec.name} exited with ${r.signal ?? `code ${r.code}`} (see ${c.spec.logFile})\n`,
        );
      }
    }
    for (const c of children) c.dispose();
    return clean;
  };
  let stopping = false;
  /** `failed`: a child died on its own; the run fails whatever the stop does. */
  const onSignal = (failed = false) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nStopping Sluice…\n');
    void stopAll().then((clean) => {
      if (clean && !failed) process.stdout.write('Stopped cleanly.\n');
      process.exit(clean && !failed ? 0 : 1);
    });
  };
  process.on('SIGINT', () => onSignal());
  process.on('SIGTERM', () => onSignal());

  try {
    // With a fixed name server port the three start side by side (the broker
    // retries its registration and the gateway its readiness until the name
    // server answers), so their start-ups (mostly module loading) overlap on
    // two cores. With port 0 the name server must bind first so the others
    // learn its port.
    const nsStarting = namesrv.start();
    const namesrvPort = opts.namesrvPort === 0 ? (await nsStarting)[2] : opts.namesrvPort;
    const namesrvAddr = `127.0.0.1:${namesrvPort}`;
    const broker = new ManagedChild({
      name: 'broker-a',
      bin: 'mqbroker',
      args: [
        '-n',
        namesrvAddr,
        `listenPort=${opts.brokerPort}`,
        `storePathRootDir=${join(data, 'broker-a')}`,
        'brokerName=broker-a',
      ],
      logFile: log('broker-a'),
      detached: true,
    });
    const gateway = new ManagedChild({
      name: 'gateway',
      bin: 'mqgateway',
      args: ['-n', namesrvAddr, `httpPort=${opts.httpPort}`, `grpcPort=${opts.grpcPort}`],
      // The standalone gateway keeps routes in memory (DESIGN §1) even when the
      // shell exports REDIS_URL for something else.
      env: { REDIS_URL: undefined },
      logFile: log('gateway'),
      detached: true,
    });
    children.push(broker, gateway);
    const starts = [nsStarting, broker.start(), gateway.start()] as const;
    // Every start has ended (ready or failed) before a failure stops them all.
    await Promise.allSettled(starts);
    const [ns, b, g] = await Promise.all(starts);
    const http = `http://127.0.0.1:${g[2]}`;
    process.stdout.write(
      [
        '',
        'Sluice standalone is running:',
        `  name server  127.0.0.1:${ns[2]}`,
        `  broker-a     ${b[2]}:${b[3]}   (data ${join(data, 'broker-a')})`,
        `  gateway      ${http}  (REST)   127.0.0.1:${g[4]}  (gRPC)`,
        `  logs         ${join(data, 'logs')}`,
        '',
        'Try it:',
        `  curl -s -w '\\n' -X POST ${http}/v1/topics/quickstart/messages -H 'content-type: application/json' -d '{"body":"hello"}'`,
        `  curl -s -w '\\n' -X POST ${http}/v1/topics/quickstart/groups/g1/receive -H 'content-type: application/json' -d '{"max":1}'`,
        '',
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
    // If a child dies, say so and stop the rest: a half cluster is worse than none.
    for (const c of children) {
      void c.waitExit().then((code) => {
        if (stopping) return;
        process.stderr.write(
          `${c.spec.name} exited (${code}); see ${c.spec.logFile}\n${c.tail(10)}\n`,
        );
        onSignal(true);
      });
    }
  } catch (err) {
    process.stderr.write(`sluice standalone: ${(err as Error).message}\n`);
    await stopAll();
    process.exit(1);
  }
}

/** A TCP port number (0 = any free port); anything else is a usage error. */
export function portArg(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value.trim()) || port > 65_535)
    throw new InvalidArgumentError(`expected a port number 0..65535, got '${value}'`);
  return port;
}

export function standaloneCommand(): Command {
  return new Command('standalone')
    .description('run a name server, a master broker and a gateway on this machine')
    .option('--data <dir>', 'data directory', './data')
    .option('--namesrv-port <port>', 'name server port', portArg, 9876)
    .option('--broker-port <port>', 'broker port', portArg, 10911)
    .option('--http-port <port>', 'gateway REST port', portArg, 8080)
    .option('--grpc-port <port>', 'gateway gRPC port', portArg, 8081)
    .action(async (o: StandaloneOptions) => {
      await runStandalone(o);
    });
}
