/**
 * `sluice cluster --conf deploy/conf/2m-2s-async`: runs a whole template
 * topology on this machine — name servers, every broker `.properties` of the
 * directory (masters before slaves), a gateway — each a child process whose
 * boot line is its readiness signal. Prints what runs where; Ctrl-C / SIGTERM
 * stops the gateway, then slaves, then masters, then name servers.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { parseProperties } from '../common/config/properties.js';
import { errors } from '../common/errors.js';
import { expandHome } from '../common/paths.js';
import { table } from './admin/format.js';
import { portArg } from './standalone.js';
import { DEFAULT_READY_TIMEOUT_MS, ManagedChild } from './supervisor.js';

/** Name servers of a cluster listen on consecutive ports from here unless told otherwise. */
export const DEFAULT_CLUSTER_NAMESRV_PORT = 9876;
/** Broker defaults the template files may leave out (RocketMQ's). */
const BROKER_FILE_DEFAULTS = {
  brokerName: 'broker-a',
  brokerId: '0',
  brokerRole: 'ASYNC_MASTER',
  storePathRootDir: '~/store',
};
/** Paths under the store root that `--data` must not leave pointing elsewhere. */
const STORE_PATH_KEYS = [
  'storePathCommitLog',
  'storePathConsumeQueue',
  'storePathIndex',
  'storeCheckpoint',
  'abortFile',
];
const SPECIAL_FILES = new Set(['namesrv.properties', 'gateway.properties']);

export interface ClusterOptions {
  /** Template directory with broker-*.properties (and optionally namesrv/gateway.properties). */
  conf: string;
  /** How many name servers to start. */
  namesrv: number;
  /** Port of the first name server (later ones count up); default from namesrv.properties, else 9876. */
  namesrvPort?: number;
  /** Put every store (`DIR/<brokerName>-<brokerId>`), KV config and log under this directory. */
  data?: string;
  /** Where child logs go; default DATA/logs with --data, else ~/logs/sluice. */
  logs?: string;
  gateway: boolean;
  /** Every process listens on a free port (listenPort=0 …); the table shows the real ones. */
  freePorts: boolean;
  /** Extra key=value settings for every broker / the gateway. */
  brokerArgs: string[];
  gatewayArgs: string[];
  readyTimeoutMs: number;
}

export type MemberRole = 'NAMESRV' | 'ASYNC_MASTER' | 'SYNC_MASTER' | 'SLAVE' | 'GATEWAY';

export interface ClusterMember {
  role: MemberRole;
  name: string;
  /** `host:port` (gateway: `http=host:port grpc=host:port`). */
  address: string;
  store: string;
  log: string;
  /** The template file a broker came from. */
  file?: string;
  child: ManagedChild;
}

export interface RunningCluster {
  namesrvAddrs: string[];
  members: ClusterMember[];
  /** Resolves when a child exits without being asked. */
  unexpectedExit: Promise<ClusterMember>;
  /** Stops everything in order: gateway, slaves, masters, name servers. */
  stop(options?: { waitForSelfExitMs?: number }): Promise<void>;
}

interface BrokerFile {
  file: string;
  name: string;
  brokerName: string;
  brokerId: number;
  role: MemberRole;
  storeRoot: string;
  keys: Record<string, string>;
}

function readProps(path: string): Record<string, string> {
  return Object.fromEntries(
    parseProperties(readFileSync(path, 'utf8')).map((e) => [e.key, e.value]),
  );
}

/** Broker files of a template, masters first (then by name). */
export function readBrokerFiles(conf: string, data?: string): BrokerFile[] {
  if (!existsSync(conf)) throw errors.badRequest(`template directory ${conf} does not exist`);
  const files = readdirSync(conf)
    .filter((f) => f.endsWith('.properties') && !SPECIAL_FILES.has(f))
    .sort();
  const brokers = files.map((f): BrokerFile => {
    const keys = { ...BROKER_FILE_DEFAULTS, ...readProps(join(conf, f)) };
    const brokerId = Number(keys.brokerId);
    const role = (brokerId > 0 ? 'SLAVE' : keys.brokerRole) as MemberRole;
    return {
      file: join(conf, f),
      name: basename(f, '.properties'),
      brokerName: keys.brokerName,
      brokerId,
      role,
      storeRoot: data
        ? join(data, `${keys.brokerName}-${brokerId}`)
        : expandHome(keys.storePathRootDir),
      keys,
    };
  });
  if (brokers.length === 0) throw errors.badRequest(`no broker .properties files in ${conf}`);
  const rank = (b: BrokerFile) => (b.role === 'SLAVE' ? 1 : 0);
  return brokers.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

/** A name server's boot line says 0.0.0.0 when it binds every interface; clients use loopback. */
function reachable(host: string, port: string): string {
  return `${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`;
}

/**
 * Starts the topology and resolves once every process printed its boot line.
 * On any failure, stops what it started and rejects.
 *
 * @example
 *   const c = await startCluster({ ...DEFAULT_CLUSTER_OPTIONS, conf: 'deploy/conf/2m-noslave', data: tmp, freePorts: true, gateway: false });
 *   console.log(c.namesrvAddrs);
 *   await c.stop();
 */
export async function startCluster(opts: ClusterOptions): Promise<RunningCluster> {
  const conf = resolve(opts.conf);
  const data = opts.data ? resolve(opts.data) : undefined;
  const brokers = readBrokerFiles(conf, data);
  const logs = resolve(
    opts.logs ?? (data ? join(data, 'logs') : join(homedir(), 'logs', 'sluice')),
  );
  mkdirSync(logs, { recursive: true });
  if (data) mkdirSync(data, { recursive: true });

  const members: ClusterMember[] = [];
  let stopping = false;
  let onUnexpected: (m: ClusterMember) => void = () => undefined;
  const unexpectedExit = new Promise<ClusterMember>((res) => {
    onUnexpected = res;
  });

  const stop = async ({ waitForSelfExitMs = 0 } = {}) => {
    stopping = true;
    const order: MemberRole[][] = [
      ['GATEWAY'],
      ['SLAVE'],
      ['ASYNC_MASTER', 'SYNC_MASTER'],
      ['NAMESRV'],
    ];
    for (const roles of order) {
      await Promise.all(
        members
          .filter((m) => roles.includes(m.role))
          .map(async (m) => {
            if (waitForSelfExitMs > 0) {
              await Promise.race([
                m.child.waitExit(),
                new Promise((r) => setTimeout(r, waitForSelfExitMs)),
              ]);
            }
            await m.child.stop();
            m.child.dispose();
          }),
      );
    }
  };

  const start = (m: ClusterMember): Promise<RegExpExecArray> => {
    members.push(m);
    const ready = m.child.start(opts.readyTimeoutMs);
    // waitExit() follows the process spawned by start() just above.
    void m.child.waitExit().then(() => {
      if (!stopping && m.address) onUnexpected(m);
    });
    return ready;
  };

  try {
    // Name servers.
    const nsFile = join(conf, 'namesrv.properties');
    const nsProps = existsSync(nsFile) ? readProps(nsFile) : {};
    const basePort = opts.namesrvPort ?? Number(nsProps.listenPort ?? DEFAULT_CLUSTER_NAMESRV_PORT);
    const nsMembers = Array.from({ length: opts.namesrv }, (_, i): ClusterMember => {
      const name = opts.namesrv === 1 ? 'namesrv' : `namesrv-${i + 1}`;
      const args = existsSync(nsFile) ? ['-c', nsFile] : [];
      args.push(`listenPort=${opts.freePorts ? 0 : basePort + i}`);
      // Metrics ports are fixed numbers (0 = off): off with free ports, one per name server else.
      const metricsPort = Number(nsProps.metricsPort ?? 0);
      if (opts.freePorts) args.push('metricsPort=0');
      else if (metricsPort > 0 && opts.namesrv > 1) args.push(`metricsPort=${metricsPort + i}`);
      let kv: string | undefined;
      if (data) kv = join(data, name, 'kvConfig.json');
      else if (opts.namesrv > 1) kv = join(homedir(), 'namesrv', name, 'kvConfig.json');
      if (kv) args.push(`kvConfigPath=${kv}`);
      const log = join(logs, `${name}.log`);
      return {
        role: 'NAMESRV',
        name,
        address: '',
        store: kv ?? expandHome(nsProps.kvConfigPath ?? '~/namesrv/kvConfig.json'),
        log,
        child: new ManagedChild({ name, bin: 'mqnamesrv', args, logFile: log }),
      };
    });
    await Promise.all(
      nsMembers.map(async (m) => {
        const match = await start(m);
        m.address = reachable(match[1]!, match[2]!);
      }),
    );
    const namesrvAddrs = nsMembers.map((m) => m.address);
    const namesrvList = namesrvAddrs.join(';');

    // Brokers: masters, then slaves (a slave finds its master through the name servers).
    const brokerMember = (b: BrokerFile): ClusterMember => {
      const args = ['-c', b.file, '-n', namesrvList];
      if (data) {
        args.push(`storePathRootDir=${b.storeRoot}`);
        for (const key of STORE_PATH_KEYS) if (b.keys[key]) args.push(`${key}=`);
      }
      // metricsPort=0 turns the metrics port off: a fixed one could be taken.
      if (opts.freePorts) args.push('listenPort=0', 'metricsPort=0');
      args.push(...opts.brokerArgs);
      const log = join(logs, `${b.name}.log`);
      return {
        role: b.role,
        name: b.name,
        address: '',
        store: b.storeRoot,
        log,
        file: b.file,
        child: new ManagedChild({ name: b.name, bin: 'mqbroker', args, logFile: log }),
      };
    };
    for (const tier of [
      brokers.filter((b) => b.role !== 'SLAVE'),
      brokers.filter((b) => b.role === 'SLAVE'),
    ]) {
      await Promise.all(
        tier.map(async (b) => {
          const m = brokerMember(b);
          const match = await start(m);
          m.address = reachable(match[2]!, match[3]!);
        }),
      );
    }

    if (opts.gateway) {
      const gwFile = join(conf, 'gateway.properties');
      const args = [...(existsSync(gwFile) ? ['-c', gwFile] : []), '-n', namesrvList];
      if (opts.freePorts) args.push('httpPort=0', 'grpcPort=0');
      args.push(...opts.gatewayArgs);
      const log = join(logs, 'gateway.log');
      const m: ClusterMember = {
        role: 'GATEWAY',
        name: 'gateway',
        address: '',
        store: '-',
        log,
        child: new ManagedChild({ name: 'gateway', bin: 'mqgateway', args, logFile: log }),
      };
      try {
        const match = await start(m);
        m.address = `http=${reachable(match[1]!, match[2]!)} grpc=${reachable(match[3]!, match[4]!)}`;
      } catch (err) {
        throw errors.unavailable(
          `${(err as Error).message}\n(run with --no-gateway to start without one)`,
          err,
        );
      }
    }
    return { namesrvAddrs, members, unexpectedExit, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** What runs where, as `sluice cluster` prints it. */
export function formatClusterTable(members: readonly ClusterMember[]): string {
  return table(
    ['Role', 'Name', 'Address', 'Store', 'Log'],
    members.map((m) => [m.role, m.name, m.address, m.store, m.log]),
  );
}

/** JSON description of a running cluster (`--json`). */
export function clusterJson(cluster: RunningCluster): unknown {
  return {
    namesrvAddr: cluster.namesrvAddrs.join(';'),
    members: cluster.members.map((m) => ({
      role: m.role,
      name: m.name,
      address: m.address,
      store: m.store,
      log: m.log,
      pid: m.child.pid ?? null,
    })),
  };
}

export interface RunClusterOptions extends ClusterOptions {
  json?: boolean;
}

/**
 * Starts the cluster, prints the table, runs until SIGINT/SIGTERM (or until a
 * child dies), then stops everything in order. Sets process.exitCode.
 */
export async function runCluster(opts: RunClusterOptions): Promise<void> {
  const cluster = await startCluster(opts);
  const out = (s: string) => process.stdout.write(`${s}\n`);
  if (opts.json) {
    out(JSON.stringify(clusterJson(cluster)));
  } else {
    const addr = cluster.namesrvAddrs.join(';');
    out('');
    out(`Sluice cluster from ${resolve(opts.conf)} is running:`);
    out(formatClusterTable(cluster.members));
    out('');
    out(`  export NAMESRV_ADDR='${addr}'`);
    out(`  mqadmin clusterList -n '${addr}'`);
    out('');
    out('Press Ctrl-C to stop.');
  }

  const reason = await new Promise<{ signal?: NodeJS.Signals; died?: ClusterMember }>((res) => {
    const onSignal = (signal: NodeJS.Signals) => res({ signal });
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    void cluster.unexpectedExit.then((died) => res({ died }));
  });
  // A second signal while stopping: kill everything now.
  const force = () => {
    for (const m of cluster.members) void m.child.kill('SIGKILL');
  };
  process.once('SIGINT', force);
  process.once('SIGTERM', force);

  if (reason.died) {
    process.stderr.write(
      `${reason.died.name} exited unexpectedly; see ${reason.died.log}\n${reason.died.child.tail(10)}\nStopping the cluster…\n`,
    );
    process.exitCode = 1;
  } else if (!opts.json) {
    out('\nStopping the cluster (gateway, slaves, masters, name servers)…');
  }
  // Ctrl-C on a terminal reaches every child of the process group at once:
  // give them a moment to finish their own clean shutdown before SIGTERM,
  // which they would take as a second signal and exit without cleaning up.
  const viaTerminal = reason.signal === 'SIGINT' && process.stdin.isTTY === true;
  await cluster.stop({ waitForSelfExitMs: viaTerminal ? 5_000 : 0 });
  process.off('SIGINT', force);
  process.off('SIGTERM', force);
  if (!opts.json) out('Stopped.');
}

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return Number(value);
}

function keyValue(value: string, previous: string[]): string[] {
  if (value.indexOf('=') <= 0) throw new InvalidArgumentError(`expected key=value, got '${value}'`);
  return [...previous, value];
}

/**
 * The `cluster` subcommand for the umbrella `sluice` program.
 *
 * @example program.addCommand(clusterCommand());
 */
export function clusterCommand(): Command {
  return new Command('cluster')
    .description('run a deploy/conf template (name servers, brokers, gateway) on this machine')
    .requiredOption('--conf <dir>', 'template directory, e.g. deploy/conf/2m-2s-async')
    .option('--namesrv <n>', 'how many name servers', positiveInt, 1)
    .option(
      '--namesrv-port <port>',
      'port of the first name server (default: namesrv.properties, else 9876)',
      portArg,
    )
    .option(
      '--data <dir>',
      'put every store (DIR/<brokerName>-<brokerId>), KV config and log under DIR',
    )
    .option('--logs <dir>', 'log directory (default: DATA/logs with --data, else ~/logs/sluice)')
    .option('--no-gateway', 'do not start a gateway')
    .option(
      '--free-ports',
      'let every process pick a free port (the table shows them); metrics ports are then off',
    )
    .option('--broker-arg <key=value>', 'extra setting for every broker (repeatable)', keyValue, [])
    .option('--gateway-arg <key=value>', 'extra setting for the gateway (repeatable)', keyValue, [])
    .option(
      '--ready-timeout <ms>',
      'how long each process may take to boot',
      positiveInt,
      DEFAULT_READY_TIMEOUT_MS,
    )
    .option('--json', 'print one JSON line describing the cluster instead of a table')
    .action(async (o: Record<string, unknown>) => {
      try {
        await runCluster({
          conf: o.conf as string,
          namesrv: o.namesrv as number,
          namesrvPort: o.namesrvPort as number | undefined,
          data: o.data as string | undefined,
          logs: o.logs as string | undefined,
          gateway: o.gateway as boolean,
          freePorts: (o.freePorts as boolean | undefined) ?? false,
          brokerArgs: o.brokerArg as string[],
          gatewayArgs: o.gatewayArg as string[],
          readyTimeoutMs: o.readyTimeout as number,
          json: (o.json as boolean | undefined) ?? false,
        });
      } catch (err) {
        process.stderr.write(
          `sluice cluster: ${err instanceof Error ? err.message : String(err)}\n`,
        );
        process.exitCode = 1;
      }
    });
}
