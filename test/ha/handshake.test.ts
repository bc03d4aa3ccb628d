/**
 * Replication handshake checks with real processes (one SYNC_MASTER):
 *  - a slave with another mapedFileSizeCommitLog is refused at once: one
 *    clear error on each side, no data, no fast reconnect loop;
 *  - a slave ahead of its master (the master's store is gone) is refused,
 *    naming both offsets, and never counts as in sync (SYNC sends answer
 *    SLAVE_NOT_AVAILABLE);
 *  - a slave whose last record differs from the master's bytes at the same
 *    offset (the master wrote other records there) is refused as diverged,
 *    even when its end falls on one of the master's record boundaries.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../common/errors.js';
import { type Cluster, Node, startCluster, TEST_BROKER_DEFAULTS } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { HA_BROKER_CONFIG, HaClient, OK, statsOf, waitCaughtUp } from './ha-helpers.js';

const TOPIC = 'Handshake';

interface LogEntry {
  level?: number;
  msg?: string;
  err?: string;
  [k: string]: unknown;
}

function entries(lines: string[]): LogEntry[] {
  const out: LogEntry[] = [];
  for (const l of lines) {
    try {
      out.push(JSON.parse(l) as LogEntry);
    } catch {
      // the boot line
    }
  }
  return out;
}

const ERROR = 50;
const refusedOnMaster = (n: Node, from: number) =>
  entries(n.lines.slice(from)).filter(
    (e) => e.level === ERROR && e.msg?.startsWith('slave refused:'),
  );
const refusedOnSlave = (n: Node, from: number) =>
  entries(n.lines.slice(from)).filter(
    (e) => e.level === ERROR && e.msg?.startsWith('the master refused this slave'),
  );

/** Fixed-width bodies, so every record of this test has the same size. */
const bodies = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}`);

describe('replication handshake checks', () => {
  let c: Cluster;
  let master: HaClient;
  const extra: Node[] = [];

  beforeAll(async () => {
    c = await startCluster({
      brokers: [
        { name: 'broker-a', id: 0, role: 'SYNC_MASTER', config: HA_BROKER_CONFIG },
        { name: 'broker-a', id: 1, role: 'SLAVE', config: HA_BROKER_CONFIG },
      ],
    });
    master = new HaClient(c.brokers[0]!.addr);
    await waitFor('slave in sync', async () => {
      const s = await statsOf(master.addr);
      return s.haInSyncSlaves === '1' || undefined;
    });
  });

  afterAll(async () => {
    master?.close();
    for (const n of extra) {
      await n.stop();
      n.child.dispose();
    }
    await c?.close();
  });

  it('refuses a slave with another segment size: one clear error, no data, no fast retry loop', async () => {
    for (const r of await master.send(TOPIC, bodies('a', 100))) expect(r.status?.code).toBe(OK);
    await waitCaughtUp(master.addr, c.brokers[1]!.addr);
    const masterLines = c.brokers[0]!.lines.length;
    const label = 'broker-a-2';
    const odd = new Node(
      label,
      'mqbroker',
      [
        '-n',
        c.namesrvAddr,
        'brokerName=broker-a',
        'brokerId=2',
        'brokerRole=SLAVE',
        `storePathRootDir=${join(c.dir, label)}`,
        ...Object.entries({
          ...TEST_BROKER_DEFAULTS,
          ...HA_BROKER_CONFIG,
          mapedFileSizeCommitLog: TEST_BROKER_DEFAULTS.mapedFileSizeCommitLog / 2,
        }).map(([k, v]) => `${k}=${v}`),
      ],
      'listenPort',
      join(c.dir, `${label}.log`),
    );
    extra.push(odd);
    await odd.start();
    const [onSlave] = await waitFor('the slave logged the refusal', () => {
      const e = refusedOnSlave(odd, 0);
      return e.length > 0 ? e : undefined;
    });
    expect(onSlave!.err).toMatch(
      new RegExp(
        `mapedFileSizeCommitLog=${TEST_BROKER_DEFAULTS.mapedFileSizeCommitLog / 2}, this master ${TEST_BROKER_DEFAULTS.mapedFileSizeCommitLog}`,
      ),
    );
    const [onMaster] = await waitFor('the master logged the refusal', () => {
      const e = refusedOnMaster(c.brokers[0]!, masterLines);
      return e.length > 0 ? e : undefined;
    });
    expect(onMaster).toMatchObject({
      slaveSegmentSize: TEST_BROKER_DEFAULTS.mapedFileSizeCommitLog / 2,
      masterSegmentSize: TEST_BROKER_DEFAULTS.mapedFileSizeCommitLog,
    });
    const before = await statsOf(odd.addr);
    expect(before.haRefusedByMaster).toMatch(/mapedFileSizeCommitLog/);
    // Nothing happens for a while: no bytes copied, no reconnect, no second error line.
    await new Promise((r) => setTimeout(r, 2_500));
    const after = await statsOf(odd.addr);
    expect(after.maxPhysicalOffset).toBe('0');
    expect(after.haReconnects).toBe(before.haReconnects);
    expect(refusedOnSlave(odd, 0)).toHaveLength(1);
    expect(refusedOnMaster(c.brokers[0]!, masterLines)).toHaveLength(1);
    const m = await statsOf(master.addr);
    expect(m.haConnectedSlaves).toBe('1');
    await odd.kill('SIGKILL');
  });

  it('refuses a slave ahead of its master, naming both offsets; SYNC sends answer SLAVE_NOT_AVAILABLE', async () => {
    const [m0, s1] = [c.brokers[0]!, c.brokers[1]!];
    const slaveEnd = Number((await statsOf(s1.addr)).maxPhysicalOffset);
    expect(slaveEnd).toBeGreaterThan(0);
    // The master loses its whole store (as an ASYNC master losing its page cache, only more so).
    await m0.kill('SIGKILL');
    rmSync(join(c.dir, 'broker-a-0'), { recursive: true, force: true });
    const slaveLines = s1.lines.length;
    const masterLines = m0.lines.length;
    await m0.start();
    master.close();
    master = new HaClient(m0.addr);
    const [onSlave] = await waitFor(
      'the slave logged the refusal',
      () => {
        const e = refusedOnSlave(s1, slaveLines);
        return e.length > 0 ? e : undefined;
      },
      20_000,
    );
    expect(onSlave!.err).toContain(`slave ends at ${slaveEnd}, master at 0`);
    const [onMaster] = await waitFor('the master logged the refusal', () => {
      const e = refusedOnMaster(m0, masterLines);
      return e.length > 0 ? e : undefined;
    });
    expect(onMaster).toMatchObject({ slaveMaxOffset: slaveEnd, masterMaxOffset: 0 });
    expect(onMaster!.msg).toMatch(/ahead of the master/);
    const [r] = await master.send(TOPIC, bodies('x', 1));
    expect(r!.status?.code).toBe(Code.HA_NOT_AVAILABLE);
    expect(r!.status?.message).toMatch(/SLAVE_NOT_AVAILABLE/);
    const s = await statsOf(master.addr);
    expect(s.haConnectedSlaves).toBe('0');
    expect((await statsOf(s1.addr)).haRefusedByMaster).toMatch(/ahead of the master/);
  });

  it('refuses a slave whose last record differs from the master bytes there (diverged)', async () => {
    const [m0, s1] = [c.brokers[0]!, c.brokers[1]!];
    const slaveEnd = Number((await statsOf(s1.addr)).maxPhysicalOffset);
    // The new master writes other records over the same offsets, past the slave's end.
    const offsets: number[] = [];
    const more = bodies('b', 150);
    for (let i = 0; i < more.length; i += 50) {
      for (const r of await master.send(TOPIC, more.slice(i, i + 50))) {
        expect(r.status?.code).toBe(Code.HA_NOT_AVAILABLE); // stored, but no slave in sync
        offsets.push(Number(r.physical_offset));
      }
    }
    expect(Number((await statsOf(m0.addr)).maxPhysicalOffset)).toBeGreaterThan(slaveEnd);
    // Same record size on both: the slave's end is a record boundary of the master
    // too, so only the bytes tell them apart.
    expect(offsets).toContain(slaveEnd);
    // A restarted slave handshakes at once.
    await s1.kill('SIGKILL');
    const masterLines = m0.lines.length;
    const slaveLines = s1.lines.length;
    await s1.start();
    const [onSlave] = await waitFor('the slave logged the refusal', () => {
      const e = refusedOnSlave(s1, slaveLines);
      return e.length > 0 ? e : undefined;
    });
    expect(onSlave!.err).toMatch(/diverged from the master/);
    const [onMaster] = await waitFor('the master logged the refusal', () => {
      const e = refusedOnMaster(m0, masterLines);
      return e.length > 0 ? e : undefined;
    });
    expect(onMaster!.msg).toMatch(/diverged/);
    expect(onMaster!.slaveMaxOffset).toBe(slaveEnd);
    expect(onMaster!.slaveLastRecordOffset).toBeLessThan(slaveEnd);
    // Never counted as in sync: a SYNC send is not acked on the diverged bytes.
    const [r] = await master.send(TOPIC, bodies('y', 1));
    expect(r!.status?.code).toBe(Code.HA_NOT_AVAILABLE);
    expect((await statsOf(master.addr)).haConnectedSlaves).toBe('0');
  });
});
