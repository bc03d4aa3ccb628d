/**
 * Replication benchmark (`npx tsx bench/ha.ts`, `npm run bench:ha`).
 *
 * Real processes (name server, brokers, gateway) from test/harness; 1 KiB
 * messages through the broker's internal gRPC API.
 *   1. throughput: the same send load (SEND_BATCH per call, SEND_IN_FLIGHT
 *      calls in flight) against an ASYNC_MASTER and a SYNC_MASTER, each with
 *      one slave, both ASYNC_FLUSH, in alternating rounds of the same run;
 *      target SYNC ≥ 85 % of ASYNC;
 *   2. replication lag at a steady LAG_RATE msgs/s for LAG_SECONDS: the
 *      slave's own samples (master store timestamp → written on the slave,
 *      per replicated chunk, its first record), target p99 < 50 ms;
 *   3. failover: a consumer group pulling through the gateway every
 *      CONSUMER_POLL_MS; time from SIGKILL of the master to the first
 *      messages served from the slave — with shortened expiry and route
 *      refresh, and with every default (takes ~2 minutes; BENCH_HA_DEFAULTS=0
 *      skips it).
 *
 * Knobs: BENCH_HA_ROUND_MESSAGES, BENCH_HA_ROUNDS, BENCH_HA_IN_FLIGHT,
 * BENCH_HA_LAG_RATE, BENCH_HA_LAG_SECONDS, BENCH_HA_DEFAULTS.
 */
import type { BrokerClient } from '../common/generated/sluice/v1/Broker.js';
import type { SendMessagesRequest } from '../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse__Output } from '../common/generated/sluice/v1/SendMessagesResponse.js';
import { callUnary } from '../common/grpc.js';
import { brokerClient, brokerStats } from '../test/harness/clients.js';
import { type Cluster, startCluster } from '../test/harness/cluster.js';
import { waitFor } from '../test/harness/wait.js';
import { BENCH_BROKER_CONFIG } from './broker-config.js';

const env = (k: string, d: number) => Number(process.env[k] ?? d);
const SEND_BATCH = 128;
const BODY_BYTES = 1024;
const ROUND_MESSAGES = env('BENCH_HA_ROUND_MESSAGES', 128_000);
const ROUNDS = env('BENCH_HA_ROUNDS', 3);
const SEND_IN_FLIGHT = env('BENCH_HA_IN_FLIGHT', 8);
const LAG_RATE = env('BENCH_HA_LAG_RATE', 20_000);
const LAG_SECONDS = env('BENCH_HA_LAG_SECONDS', 10);
const LAG_BATCH = 100;
const RUN_DEFAULTS = env('BENCH_HA_DEFAULTS', 1) !== 0;
const CONSUMER_POLL_MS = 50;
const QUEUES = 8;
const BODY = Buffer.alloc(BODY_BYTES, 120);

const BROKER_CONFIG = { ...BENCH_BROKER_CONFIG, defaultTopicQueueNums: QUEUES };

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function send(
  client: BrokerClient,
  topic: string,
  n: number,
): Promise<SendMessagesResponse__Output> {
  return callUnary<SendMessagesRequest, SendMessagesResponse__Output>(
    client,
    client.SendMessages,
    {
      entries: Array.from({ length: n }, () => ({ message: { topic, body: BODY }, queue_id: -1 })),
    },
    30_000,
  );
}

interface Load {
  msgsPerSec: number;
  p50: number;
  p99: number;
  failed: number;
}

/** `total` messages, SEND_BATCH per call, SEND_IN_FLIGHT calls at a time. */
async function closedLoop(addr: string, topic: string, total: number): Promise<Load> {
  const client = brokerClient(addr);
  const latencies: number[] = [];
  let failed = 0;
  let issued = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (issued < total) {
      const n = Math.min(SEND_BATCH, total - issued);
      issued += n;
      const s = performance.now();
      const res = await send(client, topic, n);
      latencies.push(performance.now() - s);
      failed += res.results.filter((r) => r.status?.code !== 20000).length;
    }
  };
  await Promise.all(Array.from({ length: SEND_IN_FLIGHT }, worker));
  const ms = performance.now() - t0;
  client.close();
  latencies.sort((a, b) => a - b);
  return {
    msgsPerSec: (total * 1000) / ms,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    failed,
  };
}

/** LAG_RATE msgs/s for LAG_SECONDS, LAG_BATCH per call, paced against the clock. */
async function steadyLoad(addr: string, topic: string): Promise<Load> {
  const client = brokerClient(addr);
  const latencies: number[] = [];
  let failed = 0;
  let sent = 0;
  const total = LAG_RATE * LAG_SECONDS;
  const t0 = performance.now();
  const inflight = new Set<Promise<void>>();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * LAG_RATE));
    while (sent + LAG_BATCH <= due || (due === total && sent < total)) {
      const n = Math.min(LAG_BATCH, total - sent);
      sent += n;
      const s = performance.now();
      const p = send(client, topic, n).then((res) => {
        latencies.push(performance.now() - s);
        failed += res.results.filter((r) => r.status?.code !== 20000).length;
      });
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      if (inflight.size > 64) await Promise.race(inflight);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inflight);
  const ms = performance.now() - t0;
  client.close();
  latencies.sort((a, b) => a - b);
  return {
    msgsPerSec: (total * 1000) / ms,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    failed,
  };
}

async function waitInSync(addr: string): Promise<void> {
  await waitFor(
    `${addr} has a slave in sync`,
    async () => {
      const s = await brokerStats(addr);
      return s.haInSyncSlaves === '1' || undefined;
    },
    30_000,
  );
}

async function waitCaughtUp(master: string, slave: string): Promise<void> {
  await waitFor(
    `${slave} caught up`,
    async () => {
      const [m, s] = [await brokerStats(master), await brokerStats(slave)];
      return m.maxPhysicalOffset === s.maxPhysicalOffset || undefined;
    },
    60_000,
  );
}

async function throughputAndLag(): Promise<string[]> {
  const c = await startCluster({
    brokers: [
      { name: 'broker-a', id: 0, role: 'ASYNC_MASTER', config: BROKER_CONFIG },
      { name: 'broker-a', id: 1, role: 'SLAVE', config: BROKER_CONFIG },
      { name: 'broker-b', id: 0, role: 'SYNC_MASTER', config: BROKER_CONFIG },
      { name: 'broker-b', id: 1, role: 'SLAVE', config: BROKER_CONFIG },
    ],
  });
  const rows: string[] = [];
  try {
    const [asyncM, asyncS, syncM, syncS] = c.brokers.map((b) => b.addr) as [
      string,
      string,
      string,
      string,
    ];
    await waitInSync(asyncM);
    await waitInSync(syncM);
    // Warm-up: topics created, segments allocated, JIT warm.
    await closedLoop(asyncM, 'bench_ha', 16_000);
    await closedLoop(syncM, 'bench_ha', 16_000);
    const runs: Record<'ASYNC' | 'SYNC', Load[]> = { ASYNC: [], SYNC: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which goes first: CPU is shared with whatever else runs.
      const order: Array<'ASYNC' | 'SYNC'> = r % 2 === 0 ? ['ASYNC', 'SYNC'] : ['SYNC', 'ASYNC'];
      for (const role of order) {
        runs[role].push(
          await closedLoop(role === 'ASYNC' ? asyncM : syncM, 'bench_ha', ROUND_MESSAGES),
        );
      }
    }
    const summary = (role: 'ASYNC' | 'SYNC') => {
      const list = runs[role];
      const rate = list.reduce((n, l) => n + l.msgsPerSec, 0) / list.length;
      const p99 = Math.max(...list.map((l) => l.p99));
      const p50 = list.map((l) => l.p50).sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
      const failed = list.reduce((n, l) => n + l.failed, 0);
      return { rate, p50, p99, failed };
    };
    const a = summary('ASYNC');
    const s = summary('SYNC');
    const ratio = s.rate / a.rate;
    rows.push(
      row(
        `send ASYNC_MASTER + slave (${SEND_BATCH}×1 KiB/call, ${SEND_IN_FLIGHT} in flight, ${ROUNDS}×${ROUND_MESSAGES})`,
        `${fmt(a.rate)} msg/s, call p50 ${a.p50.toFixed(1)} ms p99 ${a.p99.toFixed(1)} ms${a.failed ? `, ${a.failed} failed` : ''}`,
        'ceiling',
        '',
      ),
      row(
        'send SYNC_MASTER + slave (same load, same run)',
        `${fmt(s.rate)} msg/s, call p50 ${s.p50.toFixed(1)} ms p99 ${s.p99.toFixed(1)} ms${s.failed ? `, ${s.failed} failed` : ''}`,
        '≥ 85 % of ASYNC',
        `${(ratio * 100).toFixed(1)} % ${ratio >= 0.85 ? 'yes' : 'NO'}`,
      ),
    );
    for (const [label, master, slave] of [
      ['ASYNC', asyncM, asyncS],
      ['SYNC', syncM, syncS],
    ] as const) {
      await waitCaughtUp(master, slave);
      const load = await steadyLoad(master, 'bench_ha_lag');
      const st = await brokerStats(slave);
      const p99 = Number(st.haReplicationLagMsP99);
      rows.push(
        row(
          `replication lag, ${label}_MASTER at ${fmt(LAG_RATE)} msg/s for ${LAG_SECONDS} s (achieved ${fmt(load.msgsPerSec)})`,
          `p50 ${st.haReplicationLagMsP50} ms, p99 ${p99} ms, max ${st.haReplicationLagMsMax} ms (${st.haReplicationLagSamples} chunks); send call p99 ${load.p99.toFixed(1)} ms`,
          'p99 < 50 ms',
          p99 < 50 ? 'yes' : 'NO',
        ),
      );
    }
  } finally {
    await c.close();
  }
  return rows;
}

async function failover(shortened: boolean): Promise<string> {
  const c: Cluster = await startCluster({
    namesrvConfig: shortened ? { scanNotActiveBrokerInterval: 500 } : {},
    brokers: [
      {
        name: 'broker-a',
        id: 0,
        role: 'SYNC_MASTER',
        config: shortened
          ? { brokerNotActiveTimeoutMillis: 3_000, registerBrokerInterval: 1_000 }
          : { registerBrokerInterval: 30_000 },
      },
      {
        name: 'broker-a',
        id: 1,
        role: 'SLAVE',
        config: shortened
          ? {
              brokerNotActiveTimeoutMillis: 3_000,
              registerBrokerInterval: 1_000,
              haSyncMetadataInterval: 200,
            }
          : { registerBrokerInterval: 30_000 },
      },
    ],
    gateway: shortened ? { config: { routeTtlMs: 1_000 } } : true,
  });
  try {
    const [master, slave] = [c.brokers[0]!.addr, c.brokers[1]!.addr];
    await waitInSync(master);
    const client = brokerClient(master);
    for (let i = 0; i < 5; i++) await send(client, 'bench_ha_failover', 100);
    client.close();
    await waitCaughtUp(master, slave);
    const base = `${c.http}/v1/topics/bench_ha_failover/groups/bench_ha_group`;
    const poll = async (): Promise<boolean> => {
      try {
        const r = await fetch(`${base}/pull`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ queueId: 0, offset: 0, max: 8 }),
        });
        const j = (await r.json()) as { messages?: unknown[] };
        return r.status === 200 && (j.messages?.length ?? 0) > 0;
      } catch {
        return false;
      }
    };
    // The slave must know the topic (metadata sync) before the master goes.
    await waitFor(
      'topic on the slave',
      async () => {
        const st = await brokerStats(slave);
        return Number(st.topics) >= 1 || undefined;
      },
      120_000,
    );
    await waitFor('consumer reading from the master', poll, 60_000);
    const killedAt = performance.now();
    await c.brokers[0]!.kill('SIGKILL');
    await waitFor('consumer reading from the slave', poll, 300_000, CONSUMER_POLL_MS);
    const ms = performance.now() - killedAt;
    return row(
      shortened
        ? 'failover: SIGKILL master → consumer served by slave (brokerNotActiveTimeoutMillis=3000, scanNotActiveBrokerInterval=500, routeTtlMs=1000)'
        : 'failover: SIGKILL master → consumer served by slave (all defaults: 120 s expiry, 10 s scan, 30 s route TTL)',
      `${(ms / 1000).toFixed(2)} s`,
      'report',
      '',
    );
  } finally {
    await c.close();
  }
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function row(what: string, result: string, target: string, met: string): string {
  return `| ${what} | ${result} | ${target} | ${met} |`;
}

async function main(): Promise<void> {
  const rows = ['| measure | result | target | met |', '|---|---|---|---|'];
  rows.push(...(await throughputAndLag()));
  rows.push(await failover(true));
  if (RUN_DEFAULTS) rows.push(await failover(false));
  console.log(rows.join('\n'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
