/**
 * `mqadmin clusterList`: every registered broker with its role and runtime
 * figures (asked of each broker; `-` when it does not answer).
 */
import { adminCommand, brokersOf } from './context.js';
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

/** Replication lag of a slave (or the worst slave of a master), in bytes; `-` without replication. */
function haLag(stats: Record<string, string> | undefined): string {
  const bytes = stats?.haReplicationLagBytes;
  return bytes === undefined || bytes === '' ? '-' : `${bytes}B`;
}

export function clusterListCommand() {
  return adminCommand<{ clusterName?: string }>(
    'clusterList',
    'List the brokers of every cluster (or of -c) with their status',
    (cmd) => cmd.option('-c, --clusterName <name>', 'only this cluster'),
    async (ctx, opts) => {
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
    },
  );
}
