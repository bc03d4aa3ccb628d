/**
 * `mqadmin clusterList`: every registered broker with its role and runtime
 * figures (asked of each broker; `-` when it does not answer).
 */
import { type AdminContext, adminCommand, brokersOf, intArg } from './context.js';
import { permString, table } from './format.js';

/** Runtime keys of GetBrokerStatus shown, by column (RocketMQ's names first). */
const VERSION_KEYS = ['brokerVersionDesc', 'version'];
const IN_TPS_KEYS = ['putTps'];
const OUT_TPS_KEYS = ['getTransferedTps', 'getTps'];

function first(stats: Record<string, string> | undefined, keys: string[]): string {
  for (const k of keys) {
    const v = stats?.[k];
    if (v !== undefined && v !== '') return v.split(' ')[0]!;
  }
  return '-';
}

/** One slave of a master, from its `haSlave.<id>.*` status keys. */
interface SlaveLag {
  brokerId: number;
  addr: string;
  ackedOffset: number;
  lagBytes: number;
  lagMs: number;
  inSync: boolean;
}

/** Replication as a broker reports it (broker/ha/ha-service.ts); undefined without HA figures. */
export function replicationOf(stats: Record<string, string> | undefined):
  | {
      role: string;
      connectedSlaves?: number;
      slaves?: SlaveLag[];
      masterAddr?: string;
      connected?: boolean;
      lagBytes: number | null;
      lagMs: number | null;
    }
  | undefined {
  const role = stats?.haRole;
  if (!stats || !role) return undefined;
  const num = (v: string | undefined) => (v === undefined || v === '' ? null : Number(v));
  if (role === 'SLAVE') {
    return {
      role,
      masterAddr: stats.haMasterAddress ?? '',
      connected: stats.haConnected === 'true',
      lagBytes: num(stats.haReplicationLagBytes),
      lagMs: num(stats.haReplicationLagMsMax),
    };
  }
  const slaves: SlaveLag[] = [];
  for (const [key, addr] of Object.entries(stats)) {
    const m = /^haSlave\.(\d+)\.addr$/.exec(key);
    if (!m) continue;
    const p = `haSlave.${m[1]}.`;
    slaves.push({
      brokerId: Number(m[1]),
      addr,
      ackedOffset: Number(stats[`${p}ackedOffset`]),
      lagBytes: Number(stats[`${p}lagBytes`]),
      lagMs: Number(stats[`${p}lagMs`]),
      inSync: stats[`${p}inSync`] === 'true',
    });
  }
  slaves.sort((a, b) => a.brokerId - b.brokerId);
  return {
    role,
    connectedSlaves: Number(stats.haConnectedSlaves ?? slaves.length),
    slaves,
    lagBytes: num(stats.haReplicationLagBytes),
    lagMs: num(stats.haReplicationLagMs),
  };
}

/**
 * The HALag column: a master's worst slave (bytes/ms, how many slaves), or
 * `no slave` when none is connected; a slave's own lag, or `no master`
 * while it has no stream; `-` when the broker reports no replication figures.
 */
function haLag(stats: Record<string, string> | undefined): string {
  const r = replicationOf(stats);
  if (!r) return '-';
  if (r.role === 'SLAVE') {
    if (!r.connected) return 'no master';
    return r.lagBytes === null ? '-' : `${r.lagBytes}B${r.lagMs === null ? '' : `/${r.lagMs}ms`}`;
  }
  if (r.connectedSlaves === 0) return 'no slave';
  if (r.lagBytes === null) return '-';
  const ms = r.lagMs === null ? '' : `/${r.lagMs}ms`;
  const n = r.connectedSlaves ?? 0;
  return `${r.lagBytes}B${ms}${n > 1 ? ` (worst of ${n})` : ''}`;
}

interface ClusterListFlags {
  clusterName?: string;
  moreStats?: boolean;
  interval?: number;
}

export function clusterListCommand() {
  return adminCommand<ClusterListFlags>(
    'clusterList',
    'List the brokers of every cluster (or of -c) with their status',
    (cmd) =>
      cmd
        .option('-c, --clusterName <name>', 'only this cluster')
        .option('-m, --moreStats', 'accepted for RocketMQ; no effect')
        .option('-i, --interval <seconds>', 'print again every N seconds until stopped', intArg(1)),
    async (ctx, opts) => {
      if (opts.moreStats)
        ctx.ignored(
          '-m, --moreStats',
          'no per-day totals are kept; brokerStatus shows every figure',
        );
      const seconds = opts.interval;
      for (;;) {
        await printClusterList(ctx, opts);
        if (seconds === undefined) return;
        await new Promise((r) => setTimeout(r, seconds * 1_000));
      }
    },
  );
}

/** One clusterList table (or JSON document). */
async function printClusterList(ctx: AdminContext, opts: ClusterListFlags): Promise<void> {
  const info = await ctx.namesrv.clusterInfo();
  const brokers = brokersOf(info).filter(
    (b) => !opts.clusterName || b.cluster === opts.clusterName,
  );
  const stats = await Promise.all(
    brokers.map((b) => ctx.brokers.status(b.addr).catch(() => undefined)),
  );
  const now = Date.now();
  const rows = brokers.map((b, i) => {
    const live = info.live[b.addr];
    return { ...b, live, stats: stats[i] };
  });
  if (ctx.json) {
    ctx.printJson({
      brokers: rows.map((r) => ({
        cluster: r.cluster,
        brokerName: r.brokerName,
        brokerId: r.brokerId,
        addr: r.addr,
        role: r.live?.broker_role ?? '',
        lastUpdateTimestampMs: r.live?.last_update_timestamp_ms ?? 0,
        maxPhysicalOffset: r.live?.max_physical_offset ?? 0,
        replication: replicationOf(r.stats) ?? null,
        status: r.stats ?? null,
      })),
    });
    return;
  }
  ctx.out(
    table(
      [
        'Cluster Name',
        'Broker Name',
        'BID',
        'Addr',
        'Role',
        'Version',
        'InTPS',
        'OutTPS',
        'Perm',
        'SPACE',
        'HALag',
        'Heartbeat',
      ],
      rows.map((r) => {
        const perm = r.stats?.perm;
        const space = r.stats?.diskUsedRatio;
        const lastUpdate = r.live?.last_update_timestamp_ms ?? 0;
        return [
          r.cluster,
          r.brokerName,
          r.brokerId,
          r.addr,
          r.live?.broker_role || '-',
          first(r.stats, VERSION_KEYS),
          first(r.stats, IN_TPS_KEYS),
          first(r.stats, OUT_TPS_KEYS),
          perm === undefined ? '-' : permString(Number(perm)),
          space === undefined ? '-' : Number(space).toFixed(4),
          haLag(r.stats),
          lastUpdate ? `${Math.max(0, Math.round((now - lastUpdate) / 1000))}s ago` : '-',
        ];
      }),
    ),
  );
}
