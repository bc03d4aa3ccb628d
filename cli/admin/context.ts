/**
 * What every mqadmin command shares: the common flags (-n, --json,
 * --timeout), the clients a command uses, and how brokers named on the
 * command line are found through the name server.
 */
import { Command, InvalidArgumentError } from 'commander';
import { brokerAddrMap } from '../../common/broker-addrs.js';
import { parseHostPortList } from '../../common/cli.js';
import { errors } from '../../common/errors.js';
import type { ClusterInfo__Output } from '../../common/generated/sluice/v1/ClusterInfo.js';
import type { TopicRoute__Output } from '../../common/generated/sluice/v1/TopicRoute.js';
import { DEFAULT_RPC_TIMEOUT_MS } from '../../common/grpc.js';
import { DEFAULT_NAMESRV_PORT } from '../../namesrv/options.js';
import { BrokerClients } from './broker-clients.js';
import { NamesrvClient } from './namesrv-client.js';

export const DEFAULT_NAMESRV_ADDR = `127.0.0.1:${DEFAULT_NAMESRV_PORT}`;

export interface CommonFlags {
  namesrvAddr?: string;
  json?: boolean;
  timeout: number;
}

export interface AdminIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: AdminIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

export class AdminContext {
  readonly namesrv: NamesrvClient;
  readonly brokers: BrokerClients;
  readonly json: boolean;
  /** Set when a command printed a partial failure and must exit non-zero. */
  failed = false;
  /** The subcommand running (for message prefixes). */
  command = '';

  constructor(
    flags: CommonFlags,
    readonly io: AdminIo = processIo,
  ) {
    // An empty NAMESRV_ADDR counts as unset.
    const list = flags.namesrvAddr ?? (process.env.NAMESRV_ADDR || DEFAULT_NAMESRV_ADDR);
    const addrs = parseHostPortList(list);
    this.namesrv = new NamesrvClient(addrs, flags.timeout);
    this.brokers = new BrokerClients(flags.timeout);
    this.json = flags.json ?? false;
  }

  out(text: string): void {
    this.io.out(text);
  }

  /** Prints `value` as indented JSON (the `--json` output). */
  printJson(value: unknown): void {
    this.io.out(JSON.stringify(value, null, 2));
  }

  warn(text: string): void {
    this.io.err(text);
  }

  /**
   * One stderr line for a RocketMQ flag that is accepted (so RocketMQ
   * scripts run unchanged) but has no effect in Sluice, as JVM-only config
   * keys are.
   */
  ignored(flag: string, why: string): void {
    this.io.err(`mqadmin ${this.command}: ignored: ${flag} (${why})`);
  }

  close(): void {
    this.namesrv.close();
    this.brokers.close();
  }
}

/** A commander argument parser for integers in [min, max]. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    if (!/^-?\d+$/.test(value.trim()))
      throw new InvalidArgumentError(`expected an integer, got '${value}'`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected ${min}..${max}, got ${n}`);
    return n;
  };
}

/** RocketMQ's boolean flags take `true`/`false`; a bare flag means true. */
export function boolArg(value: string): boolean {
  if (/^true$/i.test(value)) return true;
  if (/^false$/i.test(value)) return false;
  throw new InvalidArgumentError(`expected true or false, got '${value}'`);
}

/**
 * A subcommand with mqadmin's common flags; `run` gets a context whose
 * clients are closed afterwards.
 */
export function adminCommand<O extends object>(
  name: string,
  summary: string,
  configure: (cmd: Command) => void,
  run: (ctx: AdminContext, opts: O & CommonFlags) => Promise<void>,
): Command {
  const cmd = new Command(name).description(summary);
  configure(cmd);
  cmd
    .option(
      '-n, --namesrvAddr <addrs>',
      `name servers, ";"-separated (env NAMESRV_ADDR; default ${DEFAULT_NAMESRV_ADDR})`,
    )
    .option('--json', 'print JSON for scripts instead of a table')
    .option('--timeout <ms>', 'deadline of each call, ms', intArg(1), DEFAULT_RPC_TIMEOUT_MS)
    .action(async (opts: O & CommonFlags) => {
      const ctx = new AdminContext(opts);
      ctx.command = name;
      try {
        await run(ctx, opts);
      } finally {
        ctx.close();
      }
      if (ctx.failed) process.exitCode = 1;
    });
  return cmd;
}

/** True for `host:port`, false for a broker name. */
export function isAddress(value: string): boolean {
  return /^[^:\s]+:\d+$/.test(value);
}

export interface BrokerTarget {
  cluster: string;
  brokerName: string;
  brokerId: number;
  addr: string;
}

/** Every registered broker, sorted by cluster, name and id. */
export function brokersOf(info: ClusterInfo__Output): BrokerTarget[] {
  const out: BrokerTarget[] = [];
  for (const [cluster, names] of Object.entries(info.cluster_addr_table)) {
    for (const brokerName of names.broker_names) {
      const data = info.broker_addr_table[brokerName];
      for (const [brokerId, addr] of brokerAddrMap(data?.broker_addrs ?? {})) {
        out.push({ cluster, brokerName, brokerId, addr });
      }
    }
  }
  return out.sort(
    (a, b) =>
      a.cluster.localeCompare(b.cluster) ||
      a.brokerName.localeCompare(b.brokerName) ||
      a.brokerId - b.brokerId,
  );
}

/**
 * Masters named by `-b ADDR|NAME` or `-c CLUSTER` (one of the two): the
 * brokers RocketMQ's admin commands act on.
 */
export async function resolveMasters(
  ctx: AdminContext,
  flags: { brokerAddr?: string; clusterName?: string },
): Promise<BrokerTarget[]> {
  if (!flags.brokerAddr && !flags.clusterName)
    throw errors.badRequest('name a broker (-b) or a cluster (-c)');
  if (flags.brokerAddr && flags.clusterName)
    throw errors.badRequest('-b and -c exclude each other');
  const all = brokersOf(await ctx.namesrv.clusterInfo());
  const b = flags.brokerAddr;
  if (b) {
    const found = all.filter((t) =>
      isAddress(b) ? t.addr === b : t.brokerName === b && t.brokerId === 0,
    );
    if (found.length > 0) return found;
    if (isAddress(b)) return [{ cluster: '', brokerName: '', brokerId: -1, addr: b }];
    throw errors.notFound(`broker '${b}' has no master registered with the name server`);
  }
  const masters = all.filter((t) => t.cluster === flags.clusterName && t.brokerId === 0);
  if (masters.length === 0)
    throw errors.notFound(`cluster '${flags.clusterName}' has no master registered`);
  return masters;
}

/** Every broker (master, or any live one when the master is gone) per group of a topic's route. */
export function routeBrokers(route: TopicRoute__Output): BrokerTarget[] {
  const out: BrokerTarget[] = [];
  for (const data of route.broker_datas) {
    const [first] = brokerAddrMap(data.broker_addrs);
    if (!first) continue;
    out.push({
      cluster: data.cluster,
      brokerName: data.broker_name,
      brokerId: first[0],
      addr: first[1],
    });
  }
  return out.sort((a, b) => a.brokerName.localeCompare(b.brokerName));
}

/** One entry per broker group: its master, or its lowest-id broker. */
export function groupLeaders(info: ClusterInfo__Output): BrokerTarget[] {
  const seen = new Set<string>();
  return brokersOf(info).filter((t) => {
    if (seen.has(t.brokerName)) return false;
    seen.add(t.brokerName);
    return true;
  });
}
