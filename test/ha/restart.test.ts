/**
 * Restarts under load (SIGKILL):
 *  - a slave comes back, resumes from its own offset (the master's session
 *    starts at the end the slave's store recovered), catches up, and its
 *    commitlog matches the master's byte for byte;
 *  - a master comes back on its data, the slave reconnects and replication
 *    resumes from the slave's offset: no gap, no byte twice.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import {
  commitlogChecksum,
  HA_BROKER_CONFIG,
  HaClient,
  startProducer,
  statsOf,
  waitCaughtUp,
} from './ha-helpers.js';

async function startPair(
  role: 'SYNC_MASTER' | 'ASYNC_MASTER',
  flushDiskType: 'ASYNC_FLUSH' | 'SYNC_FLUSH',
): Promise<Cluster> {
  const config = { ...HA_BROKER_CONFIG, flushDiskType };
  const c = await startCluster({
    brokers: [
      { name: 'broker-a', id: 0, role, config },
      { name: 'broker-a', id: 1, role: 'SLAVE', config },
    ],
  });
  await waitFor('slave in sync', async () => {
    const s = await statsOf(c.brokers[0]!.addr);
    return s.haInSyncSlaves === '1' || undefined;
  });
  return c;
}

/** The commitlog end a restarted broker's store recovered (from its log line). */
function storeRecovered(lines: string[]): number {
  for (const l of lines) {
    try {
      const e = JSON.parse(l) as { msg?: string; maxPhysicalOffset?: number };
      if (e.msg === 'message store started') return e.maxPhysicalOffset ?? -1;
    } catch {
      // not JSON (the boot line)
    }
  }
  return -1;
}

/** Where the master's replication session to a slave started (from its log line). */
function sessionStart(lines: string[]): number | undefined {
  for (const l of lines) {
    try {
      const e = JSON.parse(l) as { msg?: string; from?: number };
      if (e.msg === 'slave connected; replicating') return e.from;
    } catch {
      // not JSON (the boot line)
    }
  }
  return undefined;
}

/** Master and slave hold the same bytes from the master's minimum to its end. */
async function expectIdenticalLogs(c: Cluster): Promise<number> {
  const [m, s] = [c.brokers[0]!, c.brokers[1]!];
  const end = await waitCaughtUp(m.addr, s.addr);
  const min = Number((await statsOf(m.addr)).minPhysicalOffset);
  const master = commitlogChecksum(join(c.dir, 'broker-a-0'), min, end);
  expect(commitlogChecksum(join(c.dir, 'broker-a-1'), min, end)).toBe(master);
  return end;
}

/** Every acknowledged body is on the slave exactly once. */
async function expectAllOnSlaveOnce(c: Cluster, topic: string, acked: Iterable<string>) {
  const slave = new HaClient(c.brokers[1]!.addr);
  try {
    const bodies = await slave.readAll(topic, HA_BROKER_CONFIG.defaultTopicQueueNums);
    expect(new Set(bodies).size).toBe(bodies.length);
    const have = new Set(bodies);
    const missing = [...acked].filter((b) => !have.has(b));
    expect(missing).toEqual([]);
  } finally {
    slave.close();
  }
}

describe('slave SIGKILLed and restarted under load (ASYNC_MASTER, SYNC_FLUSH)', () => {
  let c: Cluster;
  beforeAll(async () => {
    // Async replication with sync flush: the one pairing no other test runs
    // (ASYNC_FLUSH runs in master-loss with both roles, SYNC_MASTER + SYNC_FLUSH below).
    c = await startPair('ASYNC_MASTER', 'SYNC_FLUSH');
  });
  afterAll(async () => {
    await c?.close();
  });

  it('catches up and matches the master byte for byte', async () => {
    const [m, s] = [c.brokers[0]!, c.brokers[1]!];
    const p = startProducer(m.addr, 'SlaveRestart', { concurrency: 3 });
    await waitFor('load', () => p.stats.acked.size >= 2_000, 30_000, 20);
    await s.kill('SIGKILL');
    const atKill = p.stats.acked.size;
    await waitFor('load while the slave is down', () => p.stats.acked.size >= atKill + 2_000);
    const killedEnd = Number((await statsOf(m.addr)).maxPhysicalOffset);
    const [slaveLines, masterLines] = [s.lines.length, m.lines.length];
    await s.start();
    // It resumed from its own offset: the master's new session starts exactly where
    // the restarted slave's store recovered to (not at zero, not at the master's end).
    const recovered = storeRecovered(s.lines.slice(slaveLines));
    expect(recovered).toBeGreaterThan(0);
    expect(recovered).toBeLessThan(killedEnd);
    const session = await waitFor('the master logged the new session', () =>
      sessionStart(m.lines.slice(masterLines)),
    );
    expect(session).toBe(recovered);
    const atStart = p.stats.acked.size;
    await waitFor('load after the restart', () => p.stats.acked.size >= atStart + 2_000);
    const stats = await p.stop();
    expect(stats.failed).toBe(0);
    const end = await expectIdenticalLogs(c);
    expect(end).toBeGreaterThan(killedEnd);
    await expectAllOnSlaveOnce(c, 'SlaveRestart', stats.acked.keys());
    expect(s.lines.some((l) => l.includes('replicating from master'))).toBe(true);
  });
});

describe('master SIGKILLed and restarted under load (SYNC_MASTER, SYNC_FLUSH)', () => {
  let c: Cluster;
  beforeAll(async () => {
    // Sync replication with sync flush on both sides: the strictest pairing.
    c = await startPair('SYNC_MASTER', 'SYNC_FLUSH');
  });
  afterAll(async () => {
    await c?.close();
  });

  it('resumes from the slave offset with no gap and no duplicate bytes', async () => {
    const [m, s] = [c.brokers[0]!, c.brokers[1]!];
    const p = startProducer(m.addr, 'MasterRestart', { concurrency: 3 });
    await waitFor('load', () => p.stats.acked.size >= 2_000, 30_000, 20);
    await m.kill('SIGKILL');
    const slaveEndAtKill = Number((await statsOf(s.addr)).maxPhysicalOffset);
    const linesBefore = m.lines.length;
    await m.start();
    const atStart = p.stats.acked.size;
    await waitFor('load after the restart', () => p.stats.acked.size >= atStart + 2_000, 30_000);
    const stats = await p.stop();
    // The master logged where it resumed: the slave's own end of log (bytes still in
    // flight at the kill may have landed after it was read).
    const resumed = sessionStart(m.lines.slice(linesBefore));
    expect(resumed).toBeGreaterThanOrEqual(slaveEndAtKill);
    expect(resumed!).toBeLessThanOrEqual(storeRecovered(m.lines.slice(linesBefore)));
    await expectIdenticalLogs(c);
    await expectAllOnSlaveOnce(c, 'MasterRestart', stats.acked.keys());
    expect(Number((await statsOf(s.addr)).haReconnects)).toBeGreaterThanOrEqual(1);
  });
});
