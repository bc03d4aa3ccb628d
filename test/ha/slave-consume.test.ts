/**
 * Read/write separation through the gateway: a consumer group (offset-based,
 * as RocketMQ's push consumers read: pull + committed offsets) gets the
 * messages master A stored before it was SIGKILLed from slave A, continuing
 * from the offsets the master had replicated (duplicates allowed, counted);
 * the slave is not promoted (still SLAVE, refuses sends). When master A
 * returns, it takes the offsets committed on the slave meanwhile (slave
 * handshake) and the slave's offsets are not moved back by the master's
 * stale copy, so a consumer that keeps going across the switch back gets
 * nothing again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../common/errors.js';
import type { GetConsumerOffsetsRequest } from '../../common/generated/sluice/v1/GetConsumerOffsetsRequest.js';
import type { GetConsumerOffsetsResponse__Output } from '../../common/generated/sluice/v1/GetConsumerOffsetsResponse.js';
import { callUnary } from '../../common/grpc.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { HA_BROKER_CONFIG, HaClient, OK, rest, statsOf } from './ha-helpers.js';

const TOPIC = 'SlaveRead';
const GROUP = 'slave-readers';
const QUEUES = HA_BROKER_CONFIG.defaultTopicQueueNums;

async function groupOffsets(addr: string): Promise<string> {
  const c = new HaClient(addr);
  try {
    const res = await callUnary<GetConsumerOffsetsRequest, GetConsumerOffsetsResponse__Output>(
      c.client,
      c.client.GetConsumerOffsets,
      { consumer_group: GROUP, topic: TOPIC },
    );
    return res.offsets
      .map((o) => `${o.queue_id}:${o.offset}`)
      .sort()
      .join(',');
  } finally {
    c.close();
  }
}

describe('consuming from slave A while master A is down', () => {
  let c: Cluster;
  let master: HaClient;
  const delivered = new Map<string, number>();

  /**
   * One round of the group's consumer through the gateway: read the committed
   * offsets, pull each queue from there, commit what was read. Answers the
   * bodies read (none when the gateway answered an error).
   */
  async function consumeRound(max = 8): Promise<string[]> {
    const base = `/v1/topics/${TOPIC}/groups/${GROUP}`;
    const committed = await rest(c.http, 'GET', `${base}/offsets`);
    if (committed.status !== 200) return [];
    const at = new Map<number, number>();
    for (const o of committed.json.offsets as Array<{ queueId: number; offset: number }>) {
      at.set(o.queueId, o.offset);
    }
    const got: string[] = [];
    for (let q = 0; q < QUEUES; q++) {
      const r = await rest(c.http, 'POST', `${base}/pull`, {
        queueId: q,
        offset: at.get(q) ?? 0,
        max,
      });
      if (r.status !== 200 || r.json.messages.length === 0) continue;
      for (const m of r.json.messages as Array<{ body: string }>) {
        delivered.set(m.body, (delivered.get(m.body) ?? 0) + 1);
        got.push(m.body);
      }
      await rest(c.http, 'PUT', `${base}/offsets`, {
        offsets: [{ queueId: q, offset: r.json.nextOffset }],
      });
    }
    return got;
  }

  beforeAll(async () => {
    c = await startCluster({
      namesrvConfig: { scanNotActiveBrokerInterval: 500 },
      brokers: [
        { name: 'broker-a', id: 0, role: 'SYNC_MASTER', config: HA_BROKER_CONFIG },
        { name: 'broker-a', id: 1, role: 'SLAVE', config: HA_BROKER_CONFIG },
      ],
      gateway: { config: { routeTtlMs: 1_000 } },
    });
    master = new HaClient(c.brokers[0]!.addr);
    await waitFor('slave in sync', async () => {
      const s = await statsOf(master.addr);
      return s.haInSyncSlaves === '1' || undefined;
    });
  });

  afterAll(async () => {
    master?.close();
    await c?.close();
  });

  it('delivers what master A stored, from slave A, once the route drops the master', async () => {
    const bodies = Array.from({ length: 200 }, (_, i) => `sr-${i}`);
    for (let i = 0; i < bodies.length; i += 50) {
      for (const r of await master.send(TOPIC, bodies.slice(i, i + 50))) {
        expect(r.status?.code).toBe(OK);
      }
    }
    // Half of them consumed (offsets committed) on the master.
    await waitFor('100 consumed from the master', async () => {
      await consumeRound();
      return delivered.size >= 100 || undefined;
    });
    // The group's offsets reach the slave (consumer offsets + metadata sync).
    const slaveAddr = c.brokers[1]!.addr;
    await waitFor('offsets replicated', async () => {
      const m = await groupOffsets(master.addr);
      return (m !== '' && m === (await groupOffsets(slaveAddr))) || undefined;
    });
    const consumedBefore = delivered.size;

    const killedAt = Date.now();
    await c.brokers[0]!.kill('SIGKILL');
    let firstFromSlaveMs = -1;
    await waitFor(
      'every message delivered',
      async () => {
        const got = await consumeRound(32);
        if (got.length > 0 && firstFromSlaveMs < 0) firstFromSlaveMs = Date.now() - killedAt;
        return bodies.every((b) => delivered.has(b)) || undefined;
      },
      40_000,
      10,
    );
    const duplicates = [...delivered.values()].reduce((n, k) => n + k - 1, 0);
    console.log(
      `[slave read] consumed from master before the kill ${consumedBefore}, first delivery from ` +
        `slave A ${firstFromSlaveMs} ms after SIGKILL, duplicates ${duplicates}`,
    );
    expect(firstFromSlaveMs).toBeGreaterThan(0);
    expect(delivered.size).toBe(bodies.length);
    const s = await statsOf(slaveAddr);
    expect(s.haConnected).toBe('false');
    // Classic mode: no promotion. The slave is still a SLAVE and refuses sends.
    expect(s.haRole).toBe('SLAVE');
    const onSlave = new HaClient(slaveAddr);
    try {
      await expect(onSlave.send(TOPIC, ['to-slave'])).rejects.toMatchObject({
        code: Code.FORBIDDEN,
        reason: 'NOT_MASTER',
      });
    } finally {
      onSlave.close();
    }
  });

  it('switches back to master A when it returns, without delivering again what the slave delivered', async () => {
    const slaveOffsets = await groupOffsets(c.brokers[1]!.addr);
    const seen = new Set(delivered.keys());
    const countBefore = new Map(delivered);
    // The consumer keeps going while master A restarts and the gateway switches back:
    // whatever it gets now was already delivered (nothing new was sent).
    let consuming = true;
    const consumer = (async () => {
      while (consuming) {
        await consumeRound(32).catch(() => []);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await c.brokers[0]!.start();
    await waitFor('slave back in sync', async () => {
      const s = await statsOf(master.addr);
      return s.haInSyncSlaves === '1' || undefined;
    });
    // The master took the offsets committed on the slave while it was down.
    await waitFor("master has the slave's offsets", async () =>
      (await groupOffsets(master.addr)) === slaveOffsets ? true : undefined,
    );
    // Past a gateway route refresh (routeTtlMs), the consumer is reading from the master.
    const until = Date.now() + 2_000;
    await waitFor(
      'consumer ran past a route refresh',
      () => Date.now() > until || undefined,
      5_000,
    );
    consuming = false;
    await consumer;
    const again = [...seen].reduce((n, b) => n + (delivered.get(b)! - countBefore.get(b)!), 0);
    console.log(`[slave read] delivered again after the switch back: ${again}`);
    expect(again).toBe(0);
    // The slave's offsets never went back (metadata sync from the returned master).
    expect(await groupOffsets(c.brokers[1]!.addr)).toBe(slaveOffsets);
    const fresh = Array.from({ length: 10 }, (_, i) => `back-${i}`);
    for (const r of await master.send(TOPIC, fresh)) expect(r.status?.code).toBe(OK);
    await waitFor(
      'new messages consumed',
      async () => {
        await consumeRound(32);
        return fresh.every((b) => delivered.has(b)) || undefined;
      },
      30_000,
      10,
    );
    // Consumed through the master: its own offsets of the group cover the new messages.
    await waitFor('master offsets cover everything', async () => {
      const offsets = await groupOffsets(master.addr);
      const sum = offsets
        .split(',')
        .filter(Boolean)
        .reduce((n, e) => n + Number(e.split(':')[1]), 0);
      return sum === 210 || undefined;
    });
  });
});
