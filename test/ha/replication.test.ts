/**
 * Replication basics with real processes, one SYNC_MASTER and slaves added
 * one by one: without a slave a send answers SLAVE_NOT_AVAILABLE (stored
 * anyway); a new slave catches up from zero byte for byte, with consume
 * queues and metadata; several slaves follow one master and any of them
 * acks; a connected slave that stops acking gives FLUSH_SLAVE_TIMEOUT;
 * slaves refuse sends; groups, offsets and timer progress reach the slave;
 * mqadmin clusterList shows every slave's lag (a stopped one is not hidden
 * behind the one that keeps up) and "no slave" once none is connected; a
 * slave configured with haMasterAddress follows without a name server; the
 * slave's index answers lookups by key and by message id.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../common/errors.js';
import type { QueryMessageByIdRequest } from '../../common/generated/sluice/v1/QueryMessageByIdRequest.js';
import type { QueryMessageByKeyRequest } from '../../common/generated/sluice/v1/QueryMessageByKeyRequest.js';
import type { QueryMessageResponse__Output } from '../../common/generated/sluice/v1/QueryMessageResponse.js';
import { callUnary } from '../../common/grpc.js';
import { type Cluster, Node, startCluster, TEST_BROKER_DEFAULTS } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { mqadmin } from '../namesrv/harness.js';
import {
  commitlogChecksum,
  HA_BROKER_CONFIG,
  HaClient,
  OK,
  statsOf,
  waitCaughtUp,
} from './ha-helpers.js';

const SLAVE_TIMEOUT_MS = 1_500;

interface SlaveRow {
  brokerId: number;
  addr: string;
  ackedOffset: number;
  lagBytes: number;
  lagMs: number;
  inSync: boolean;
}

interface ClusterListJson {
  brokers: Array<{
    brokerName: string;
    brokerId: number;
    addr: string;
    role: string;
    replication: {
      role: string;
      connectedSlaves?: number;
      slaves?: SlaveRow[];
      masterAddr?: string;
      connected?: boolean;
      lagBytes: number | null;
      lagMs: number | null;
    } | null;
  }>;
}

describe('replication: one SYNC_MASTER, slaves added one by one', () => {
  let c: Cluster;
  let master: HaClient;
  const slaves: Node[] = [];
  const sent: string[] = [];

  async function startSlave(
    id: number,
    opts: { namesrvAddr?: string; config?: Record<string, string | number> } = {},
  ): Promise<Node> {
    const label = `broker-a-${id}`;
    const n = new Node(
      label,
      'mqbroker',
      [
        '-n',
        opts.namesrvAddr ?? c.namesrvAddr,
        'brokerName=broker-a',
        `brokerId=${id}`,
        'brokerRole=SLAVE',
        `storePathRootDir=${join(c.dir, label)}`,
        ...Object.entries({ ...TEST_BROKER_DEFAULTS, ...HA_BROKER_CONFIG, ...opts.config }).map(
          ([k, v]) => `${k}=${v}`,
        ),
      ],
      'listenPort',
      join(c.dir, `${label}.log`),
    );
    await n.start();
    slaves.push(n);
    return n;
  }

  async function sendOk(n: number, prefix: string): Promise<void> {
    const bodies = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    for (let i = 0; i < n; i += 50) {
      const results = await master.send('HaSync', bodies.slice(i, i + 50));
      for (const r of results) expect(r.status?.code).toBe(OK);
    }
    sent.push(...bodies);
  }

  function expectSameBytes(slaveId: number, end: number): void {
    expect(commitlogChecksum(join(c.dir, `broker-a-${slaveId}`), 0, end)).toBe(
      commitlogChecksum(join(c.dir, 'broker-a-0'), 0, end),
    );
  }

  beforeAll(async () => {
    c = await startCluster({
      brokers: [
        {
          name: 'broker-a',
          id: 0,
          role: 'SYNC_MASTER',
          config: { ...HA_BROKER_CONFIG, slaveTimeout: SLAVE_TIMEOUT_MS },
        },
      ],
    });
    master = new HaClient(c.brokers[0]!.addr);
  });

  afterAll(async () => {
    master?.close();
    for (const s of slaves) {
      if (s.child.running) process.kill(s.child.pid!, 'SIGCONT');
      await s.stop();
      s.child.dispose();
    }
    await c?.close();
  });

  it('answers SLAVE_NOT_AVAILABLE while no slave is connected; the message is stored anyway', async () => {
    const bodies = Array.from({ length: 300 }, (_, i) => `early-${i}`);
    const results = await master.send('HaSync', bodies);
    for (const r of results) {
      expect(r.status?.code).toBe(Code.HA_NOT_AVAILABLE);
      expect(r.status?.message).toMatch(/SLAVE_NOT_AVAILABLE/);
      expect(r.physical_offset).toBeGreaterThanOrEqual(0);
    }
    sent.push(...bodies);
    const stats = await statsOf(master.addr);
    expect(stats.haRole).toBe('SYNC_MASTER');
    expect(stats.haConnectedSlaves).toBe('0');
    expect(stats.haSyncSlaveNotAvailable).toBe('1');
  });

  it('a new slave catches up from zero, byte for byte, with consume queues and metadata', async () => {
    const slave = await startSlave(1);
    const end = await waitCaughtUp(master.addr, slave.addr);
    expectSameBytes(1, end);
    await waitFor('slave in sync', async () => {
      const s = await statsOf(master.addr);
      return s.haInSyncSlaves === '1' || undefined;
    });
    await sendOk(200, 'sync');
    const [indexed] = await master.send('HaSync', ['indexed-by-key']);
    expect(indexed!.status?.code).toBe(OK);
    sent.push('indexed-by-key');
    const end2 = await waitCaughtUp(master.addr, slave.addr);
    expectSameBytes(1, end2);

    const onSlave = new HaClient(slave.addr);
    try {
      // Metadata followed: the slave knows the topic (pull needs its config).
      await waitFor('topic config on the slave', async () =>
        (await onSlave.topics()).includes('HaSync'),
      );
      // Consume queues rebuilt on the slave: the same messages by queue offset.
      const got = await onSlave.readAll('HaSync', HA_BROKER_CONFIG.defaultTopicQueueNums);
      expect(got.sort()).toEqual([...sent].sort());
      // The index was rebuilt on the slave: lookups by key and by message id (UNIQ_KEY).
      const bodiesOf = (r: QueryMessageResponse__Output) =>
        r.messages.map((m) => m.message?.body.toString());
      await waitFor('lookup by key on the slave', async () => {
        const r = await callUnary<QueryMessageByKeyRequest, QueryMessageResponse__Output>(
          onSlave.client,
          onSlave.client.QueryMessageByKey,
          {
            topic: 'HaSync',
            key: 'indexed-by-key',
            max: 4,
          },
        );
        return bodiesOf(r).join() === 'indexed-by-key' || undefined;
      });
      const byId = await callUnary<QueryMessageByIdRequest, QueryMessageResponse__Output>(
        onSlave.client,
        onSlave.client.QueryMessageById,
        {
          topic: 'HaSync',
          message_id: indexed!.message_id,
        },
      );
      expect(bodiesOf(byId)).toEqual(['indexed-by-key']);
      // Slaves are read-only.
      await expect(onSlave.send('HaSync', ['to-slave'])).rejects.toMatchObject({
        code: Code.FORBIDDEN,
        reason: 'NOT_MASTER',
      });
      const s = await statsOf(slave.addr);
      expect(s.haRole).toBe('SLAVE');
      expect(s.haConnected).toBe('true');
      expect(s.haMasterAddress).toBe(master.addr);
      expect(s.haReplicationLagBytes).toBe('0');
      expect(Number(s.haReplicationLagSamples)).toBeGreaterThan(0);
      expect(Number(s.haLastMetadataSyncMs)).toBeGreaterThan(0);
      const m = await statsOf(master.addr);
      expect(m.haConnectedSlaves).toBe('1');
      expect(m.haReplicationLagBytes).toBe('0');
      expect(m.haSlaves).toBe(`1@${slave.addr}:${end2}`);
    } finally {
      onSlave.close();
    }
  });

  it('several slaves follow one master; any of them acks; clusterList shows the lag of each', async () => {
    const second = await startSlave(2);
    await waitFor('two slaves in sync', async () => {
      const s = await statsOf(master.addr);
      return s.haInSyncSlaves === '2' || undefined;
    });
    // Slave 1 freezes (SIGSTOP): slave 2 alone acks, and slave 1's lag must show,
    // not be hidden behind slave 2 keeping up.
    process.kill(slaves[0]!.child.pid!, 'SIGSTOP');
    await sendOk(100, 'while-frozen');
    const list = await waitFor(
      'clusterList shows slave 1 behind and slave 2 caught up',
      async () => {
        const res = await mqadmin([
          'clusterList',
          '-n',
          c.namesrvAddr,
          '--json',
          '--timeout',
          '1000',
        ]);
        const parsed = JSON.parse(res.stdout) as ClusterListJson;
        const slaveRows = parsed.brokers.find((b) => b.brokerId === 0)?.replication?.slaves ?? [];
        const [s1, s2] = [1, 2].map((id) => slaveRows.find((x) => x.brokerId === id));
        return (s1 && s2 && s1.lagBytes > 0 && s2.lagBytes === 0 && parsed) || undefined;
      },
    );
    const masterRow = list.brokers.find((b) => b.brokerId === 0)!;
    expect(masterRow.role).toBe('SYNC_MASTER');
    const rep = masterRow.replication!;
    expect(rep.role).toBe('SYNC_MASTER');
    expect(rep.connectedSlaves).toBe(2);
    const [s1, s2] = [rep.slaves![0]!, rep.slaves![1]!];
    expect([s1.brokerId, s1.addr, s2.brokerId, s2.addr]).toEqual([
      1,
      slaves[0]!.addr,
      2,
      second.addr,
    ]);
    expect(s1.lagMs).toBeGreaterThan(0);
    expect(s2.lagMs).toBe(0);
    expect(s2.ackedOffset - s1.ackedOffset).toBe(s1.lagBytes);
    // The broker's figure is the worst slave's, in bytes and ms.
    expect(rep.lagBytes).toBe(s1.lagBytes);
    expect(rep.lagMs).toBeGreaterThanOrEqual(s1.lagMs);
    const slaveRow = list.brokers.find((b) => b.brokerId === 2)!;
    expect(slaveRow.role).toBe('SLAVE');
    expect(slaveRow.replication).toMatchObject({
      role: 'SLAVE',
      masterAddr: master.addr,
      connected: true,
      lagBytes: 0,
    });
    // The table's HALag column: the worst slave, and how many there are.
    const text = await mqadmin(['clusterList', '-n', c.namesrvAddr, '--timeout', '1000']);
    const masterLine = text.stdout.split('\n').find((l) => l.includes(` ${master.addr} `))!;
    expect(masterLine).toMatch(new RegExp(`\\s${s1.lagBytes}B/\\d+ms \\(worst of 2\\)\\s`));
    // brokerStatus shows the per-slave figures too.
    const status = await mqadmin(['brokerStatus', '-n', c.namesrvAddr, '-b', master.addr]);
    expect(status.stdout).toMatch(/^haSlave\.1\.lagBytes\s*: [1-9]\d*$/m);
    expect(status.stdout).toMatch(/^haSlave\.2\.lagBytes\s*: 0$/m);

    // The first slave dies (SIGKILL): the second one alone keeps sends answered OK.
    await slaves[0]!.kill('SIGKILL');
    await waitFor('one slave left', async () => {
      const s = await statsOf(master.addr);
      return s.haConnectedSlaves === '1' || undefined;
    });
    await sendOk(100, 'second');
    const end = await waitCaughtUp(master.addr, second.addr);
    expectSameBytes(2, end);
  });

  it('a connected slave that stops acking makes sends answer FLUSH_SLAVE_TIMEOUT', async () => {
    const second = slaves[1]!;
    process.kill(second.child.pid!, 'SIGSTOP');
    try {
      const t0 = Date.now();
      const results = await master.send('HaSync', ['frozen-slave']);
      const waited = Date.now() - t0;
      expect(results[0]!.status?.code).toBe(Code.SLAVE_PERSISTENCE_TIMEOUT);
      expect(results[0]!.status?.message).toMatch(/FLUSH_SLAVE_TIMEOUT/);
      expect(waited).toBeGreaterThanOrEqual(SLAVE_TIMEOUT_MS - 50);
      expect(waited).toBeLessThan(SLAVE_TIMEOUT_MS + 1_500);
      expect(Number((await statsOf(master.addr)).haSyncTimeouts)).toBe(1);
    } finally {
      process.kill(second.child.pid!, 'SIGCONT');
    }
    // Once it runs again it acks, and sends are answered OK again.
    await waitCaughtUp(master.addr, second.addr);
    await sendOk(10, 'thawed');
  });

  it('replicates subscription groups, consumer offsets and timer progress', async () => {
    const slave = slaves[1]!;
    const call = <Res>(client: HaClient, method: string, req: unknown) =>
      callUnary<unknown, Res>(client.client, (client.client as any)[method], req);
    await call(master, 'UpdateSubscriptionGroup', {
      group_name: 'meta-group',
      consume_enable: true,
      retry_max_times: 5,
    });
    await call(master, 'UpdateConsumerOffsets', {
      consumer_group: 'meta-group',
      offsets: [{ topic: 'HaSync', queue_id: 1, offset: 7 }],
    });
    // A 1 s delay message: the timer delivers it on the master and its progress moves.
    const linesBefore = slave.lines.length;
    const [delayed] = await call<{ results: Array<{ status: { code: number } }> }>(
      master,
      'SendMessages',
      {
        entries: [
          {
            message: { topic: 'HaSync', body: Buffer.from('later'), delay_level: 1 },
            queue_id: -1,
          },
        ],
      },
    ).then((r) => r.results);
    expect(delayed!.status.code).toBe(OK);
    await waitFor('timer delivered on the master', async () =>
      Number((await statsOf(master.addr)).timerDelivered) >= 1 ? true : undefined,
    );

    const onSlave = new HaClient(slave.addr);
    try {
      await waitFor('group and offsets on the slave', async () => {
        const groups = await call<{
          groups: Array<{ group_name: string; retry_max_times: number }>;
        }>(onSlave, 'GetAllSubscriptionGroups', {});
        const g = groups.groups.find((x) => x.group_name === 'meta-group');
        const offsets = await call<{ offsets: Array<{ queue_id: number; offset: number }> }>(
          onSlave,
          'GetConsumerOffsets',
          { consumer_group: 'meta-group', topic: 'HaSync' },
        );
        return (
          (g?.retry_max_times === 5 &&
            offsets.offsets.some((o) => o.queue_id === 1 && o.offset === 7)) ||
          undefined
        );
      });
      // Timer progress: the slave applied a newer base of the broker's '#timer' reader.
      await waitFor(
        'timer progress on the slave',
        () =>
          slave.lines.slice(linesBefore).some((l) => {
            try {
              const e = JSON.parse(l) as { msg?: string; readers?: number };
              return e.msg === 'replicated metadata applied' && (e.readers ?? 0) > 0;
            } catch {
              return false;
            }
          }) || undefined,
      );
      // The delayed message itself reached the slave through the commitlog.
      await waitCaughtUp(master.addr, slave.addr);
      const bodies = await onSlave.readAll('HaSync', HA_BROKER_CONFIG.defaultTopicQueueNums);
      expect(bodies).toContain('later');
    } finally {
      onSlave.close();
    }
  });
  it('a deleted and re-created topic ends up with the same queues on the slave as on the master', async () => {
    const slave = slaves[1]!;
    const queues = HA_BROKER_CONFIG.defaultTopicQueueNums;
    const ok = async (bodies: string[]) => {
      const results = await master.send('HaGone', bodies);
      for (const r of results) expect(r.status?.code).toBe(OK);
      return results;
    };
    const old = await ok(Array.from({ length: 20 }, (_, i) => `old-${i}`));
    await callUnary(master.client, master.client.DeleteTopic, { topic: 'HaGone' });
    await ok(Array.from({ length: 8 }, (_, i) => `new-${i}`));
    /** [queue, queue offset, body] of every message a pull from offset 0 gives. */
    const contents = async (client: HaClient) => {
      const out: Array<[number, number, string]> = [];
      for (let q = 0; q < queues; q++) {
        for (let offset = 0; ; ) {
          const res = await client.pull('HaGone', q, offset, 32);
          for (const m of res.messages) {
            out.push([q, Number(m.queue_offset), m.message?.body.toString() ?? '']);
          }
          if (res.messages.length === 0 || res.next_offset <= offset) break;
          offset = res.next_offset;
        }
      }
      return out;
    };
    const onMaster = await contents(master);
    expect(onMaster.map(([, , b]) => b).sort()).toEqual(
      Array.from({ length: 8 }, (_, i) => `new-${i}`).sort(),
    );
    // Offsets continue after the deleted topic's.
    for (const [q, offset] of onMaster) {
      const before = old.filter((r) => r.queue_id === q).map((r) => Number(r.queue_offset));
      expect(offset).toBeGreaterThan(Math.max(-1, ...before));
    }
    const onSlave = new HaClient(slave.addr);
    try {
      await waitCaughtUp(master.addr, slave.addr);
      // The deletion reaches the slave with the metadata (deletedTopics.json).
      await waitFor(
        'the slave has the master queues of HaGone',
        async () =>
          JSON.stringify(await contents(onSlave)) === JSON.stringify(onMaster) || undefined,
      );
    } finally {
      onSlave.close();
    }
  });

  it('a slave configured with haMasterAddress follows without any name server', async () => {
    // Nothing listens on the name server address it is given: the master is only known by config.
    const direct = await startSlave(3, {
      namesrvAddr: '127.0.0.1:1',
      config: { haMasterAddress: master.addr },
    });
    await sendOk(50, 'direct');
    const end = await waitCaughtUp(master.addr, direct.addr);
    expectSameBytes(3, end);
    const s = await statsOf(direct.addr);
    expect(s.haMasterAddress).toBe(master.addr);
    expect(s.haConnected).toBe('true');
    await direct.kill('SIGKILL');
    await waitFor('the direct slave gone from the master', async () => {
      const m = await statsOf(master.addr);
      return m.haConnectedSlaves === '1' || undefined;
    });
  });

  it('clusterList shows "no slave" once the last slave is SIGKILLed', async () => {
    await slaves[1]!.kill('SIGKILL');
    await waitFor('no slave connected', async () => {
      const m = await statsOf(master.addr);
      return m.haConnectedSlaves === '0' || undefined;
    });
    const res = await mqadmin(['clusterList', '-n', c.namesrvAddr, '--json', '--timeout', '1000']);
    const masterRow = (JSON.parse(res.stdout) as ClusterListJson).brokers.find(
      (b) => b.brokerId === 0,
    )!;
    expect(masterRow.replication).toMatchObject({
      role: 'SYNC_MASTER',
      connectedSlaves: 0,
      slaves: [],
      lagBytes: null,
    });
    const text = await mqadmin(['clusterList', '-n', c.namesrvAddr, '--timeout', '1000']);
    const masterLine = text.stdout.split('\n').find((l) => l.includes(` ${master.addr} `))!;
    expect(masterLine).toMatch(/\sSYNC_MASTER\s.*\sno slave\s/);
    // And a SYNC_MASTER send says so too.
    const [r] = await master.send('HaSync', ['alone']);
    expect(r!.status?.code).toBe(Code.HA_NOT_AVAILABLE);
  });
});
