/**
 * Replication basics with real processes: SYNC_MASTER refuses without a
 * slave, answers once a slave has the bytes, the slave's commitlog is a byte
 * copy, consume queues are rebuilt, metadata follows, sends to a slave are
 * refused, and a second slave catches up from zero.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../common/errors.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import {
  commitlogChecksum,
  HA_BROKER_CONFIG,
  HaClient,
  OK,
  statsOf,
  waitCaughtUp,
} from './ha-helpers.js';

describe('replication: SYNC_MASTER with slaves', () => {
  let c: Cluster;
  let master: HaClient;

  beforeAll(async () => {
    c = await startCluster({
      brokers: [
        {
          name: 'broker-a',
          id: 0,
          role: 'SYNC_MASTER',
          config: { ...HA_BROKER_CONFIG, slaveTimeout: 2_000 },
        },
      ],
    });
    master = new HaClient(c.brokers[0]!.addr);
  });

  afterAll(async () => {
    master?.close();
    await c?.close();
  });

  it('answers SLAVE_NOT_AVAILABLE while no slave is connected (the message is stored anyway)', async () => {
    const results = await master.send('HaNoSlave', ['lonely']);
    expect(results[0]!.status?.code).toBe(Code.HA_NOT_AVAILABLE);
    expect(results[0]!.status?.message).toMatch(/SLAVE_NOT_AVAILABLE/);
    const stats = await statsOf(master.addr);
    expect(stats.haRole).toBe('SYNC_MASTER');
    expect(stats.haConnectedSlaves).toBe('0');
    expect(Number(stats.haSyncSlaveNotAvailable)).toBeGreaterThan(0);
  });

  it('replicates to a new slave from zero, byte for byte, then answers sends OK', async () => {
    const { Node } = await import('../harness/cluster.js');
    const slave = new Node(
      'broker-a-1',
      'mqbroker',
      [
        '-n',
        c.namesrvAddr,
        'brokerName=broker-a',
        'brokerId=1',
        'brokerRole=SLAVE',
        `storePathRootDir=${join(c.dir, 'broker-a-1')}`,
        'mapedFileSizeCommitLog=16777216',
        'mapedFileSizeConsumeQueue=60000',
        ...Object.entries(HA_BROKER_CONFIG).map(([k, v]) => `${k}=${v}`),
      ],
      'listenPort',
      join(c.dir, 'broker-a-1.log'),
    );
    await slave.start();
    try {
      await waitFor('slave connected', async () => {
        const s = await statsOf(master.addr);
        return s.haInSyncSlaves === '1' || undefined;
      });
      const bodies = Array.from({ length: 500 }, (_, i) => `m-${i}`);
      for (let i = 0; i < bodies.length; i += 50) {
        const results = await master.send('HaSync', bodies.slice(i, i + 50));
        for (const r of results) expect(r.status?.code).toBe(OK);
      }
      const end = await waitCaughtUp(master.addr, slave.addr);
      const min = Number((await statsOf(master.addr)).minPhysicalOffset);
      expect(commitlogChecksum(join(c.dir, 'broker-a-1'), min, end)).toBe(
        commitlogChecksum(join(c.dir, 'broker-a-0'), min, end),
      );

      // Consume queues rebuilt on the slave: the same messages by queue offset.
      const onSlave = new HaClient(slave.addr);
      try {
        const got = await onSlave.readAll('HaSync', 4);
        expect(got.sort()).toEqual([...bodies].sort());
        // Metadata followed: the slave knows the topic, with the master's queue count.
        await waitFor('topic config on the slave', async () =>
          (await onSlave.topics()).includes('HaSync'),
        );
        // Slaves are read-only.
        await expect(onSlave.send('HaSync', ['to-slave'])).rejects.toMatchObject({
          code: Code.FORBIDDEN,
          reason: 'NOT_MASTER',
        });
        const s = await statsOf(slave.addr);
        expect(s.haRole).toBe('SLAVE');
        expect(s.haConnected).toBe('true');
        expect(s.haMasterAddress).toBe(master.addr);
        expect(Number(s.haReplicationLagSamples)).toBeGreaterThan(0);
        const m = await statsOf(master.addr);
        expect(m.haConnectedSlaves).toBe('1');
        expect(m.haReplicationLagBytes).toBe('0');
      } finally {
        onSlave.close();
      }
    } finally {
      await slave.stop();
      slave.child.dispose();
    }
  });
});
