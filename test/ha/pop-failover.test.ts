/**
 * Pop consumers (REST /receive + /ack) keep working from slave A while master
 * A is down (issue 8, DESIGN.md §7): the gateway sends the broker's reads to
 * its slave as soon as a call to the master fails to connect, the slave pops
 * from its own state (starting at the offsets the master replicated), and
 * every message master A stored comes through — duplicates allowed and
 * counted, none lost. When master A returns the gateway reads from it again,
 * and a handle the slave issued is stale there (40013), not an error.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetadataApplier } from '../../broker/ha/metadata-applier.js';
import type { InflightEntry } from '../../broker/messaging/consume-state.js';
import { ConsumeStateStore } from '../../broker/messaging/consume-state-store.js';
import { ConsumerOffsetManager } from '../../broker/metadata/consumer-offset-manager.js';
import { SubscriptionGroupManager } from '../../broker/metadata/subscription-group-manager.js';
import { TopicConfigManager } from '../../broker/metadata/topic-config-manager.js';
import { masterAddrOf } from '../../common/broker-addrs.js';
import type { ClusterInfo__Output } from '../../common/generated/sluice/v1/ClusterInfo.js';
import type { Empty } from '../../common/generated/sluice/v1/Empty.js';
import type { GetConsumerOffsetsRequest } from '../../common/generated/sluice/v1/GetConsumerOffsetsRequest.js';
import type { GetConsumerOffsetsResponse__Output } from '../../common/generated/sluice/v1/GetConsumerOffsetsResponse.js';
import { callUnary } from '../../common/grpc.js';
import { silentLogger } from '../../common/logger.js';
import { RouteResolver } from '../../gateway/core/route-resolver.js';
import type { TopicRoute } from '../../gateway/route-cache/index.js';
import { MemoryRouteCache } from '../../gateway/route-cache/memory.js';
import { brokerStats, namesrvClient } from '../harness/clients.js';
import { type Cluster, startCluster } from '../harness/cluster.js';
import { makeTempDir } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';
import { HA_BROKER_CONFIG, HaClient, OK, rest, waitCaughtUp } from './ha-helpers.js';

const TOPIC = 'PopFailover';
const GROUP = 'pop-failover';
const N = 200;
const STALE = 40013;
const base = `/v1/topics/${TOPIC}/groups/${GROUP}`;

interface Delivered {
  body: string;
  receiptHandle: string;
  deliveryAttempt: number;
}

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

describe('pop consumers fail over to slave A while master A is down', () => {
  let c: Cluster;
  let master: HaClient;
  const delivered = new Map<string, number>();
  /** Popped from the slave and never acked there: settled on master A after the switch back. */
  const held: Delivered[] = [];

  /** One REST receive through the gateway (no ack); [] when the gateway answered an error. */
  async function receive(max = 32): Promise<Delivered[]> {
    const r = await rest(c.http, 'POST', `${base}/receive`, {
      max,
      waitSeconds: 0,
      invisibleSeconds: 30,
    });
    if (r.status !== 200) return [];
    const got = r.json.messages as Delivered[];
    for (const m of got) delivered.set(m.body, (delivered.get(m.body) ?? 0) + 1);
    return got;
  }

  /** Acks handles through the gateway; answers the per-handle codes. */
  async function ack(handles: string[]): Promise<number[]> {
    if (handles.length === 0) return [];
    const r = await rest(c.http, 'POST', `${base}/ack`, { receiptHandles: handles });
    expect(r.status).toBe(200);
    return (r.json.results as Array<{ code: number }>).map((x) => x.code);
  }

  beforeAll(async () => {
    c = await startCluster({
      namesrvConfig: { scanNotActiveBrokerInterval: 500 },
      brokers: [
        {
          name: 'broker-a',
          id: 0,
          // Every pull that leaves something behind counts as "far behind" (slave-read advice).
          config: { ...HA_BROKER_CONFIG, slaveReadEnable: true, accessMessageInMemoryMaxRatio: 0 },
        },
        { name: 'broker-a', id: 1, role: 'SLAVE', config: HA_BROKER_CONFIG },
      ],
      gateway: { config: { routeTtlMs: 1_000 } },
    });
    master = new HaClient(c.brokers[0]!.addr);
    await waitFor('slave connected', async () => {
      const s = await brokerStats(c.brokers[1]!.addr);
      return s.haConnected === 'true' || undefined;
    });
  });

  afterAll(async () => {
    master?.close();
    await c?.close();
  });

  it('drains every message from the slave after the master is SIGKILLed', async () => {
    const bodies = Array.from({ length: N }, (_, i) => `pf-${i}`);
    for (let i = 0; i < N; i += 50) {
      for (const r of await master.send(TOPIC, bodies.slice(i, i + 50))) {
        expect(r.status?.code).toBe(OK);
      }
    }
    // The gateway knows the topic (route through the name server).
    await waitFor('topic routed', async () => (await receive(1)).length > 0 || undefined);
    // A quarter consumed and acked on the master; a few more left in flight there.
    await waitFor('a quarter consumed on the master', async () => {
      const got = await receive(16);
      const codes = await ack(got.map((m) => m.receiptHandle));
      expect(codes.every((x) => x === OK)).toBe(true);
      return delivered.size >= N / 4 || undefined;
    });
    const inFlightOnMaster = await receive(8);
    expect(inFlightOnMaster.length).toBeGreaterThan(0);

    // The slave has every byte and the group's offsets.
    const slaveAddr = c.brokers[1]!.addr;
    await waitCaughtUp(master.addr, slaveAddr);
    await waitFor('slave acked every byte', async () => {
      const m = await brokerStats(master.addr);
      return m.haReplicationLagBytes === '0' || undefined;
    });
    await waitFor('offsets replicated', async () => {
      const m = await groupOffsets(master.addr);
      return (m !== '' && m === (await groupOffsets(slaveAddr))) || undefined;
    });
    const consumedBefore = delivered.size;
    // Pull advice comes from PullService itself: behind → the slave (id 1); at the end → the master.
    const behind = await master.pull(TOPIC, 0, 0, 1);
    expect(behind.messages).toHaveLength(1);
    expect(behind.suggest_which_broker_id).toBe(1);
    const atEnd = await master.pull(TOPIC, 0, Number(behind.max_offset), 1);
    expect(atEnd.messages).toHaveLength(0);
    expect(atEnd.suggest_which_broker_id).toBe(0);

    const killedAt = Date.now();
    await c.brokers[0]!.kill('SIGKILL');
    let firstFromSlaveMs = -1;
    let ackFailures = 0;
    await waitFor(
      'every message delivered from the slave',
      async () => {
        const got = await receive(32);
        if (got.length > 0 && firstFromSlaveMs < 0) firstFromSlaveMs = Date.now() - killedAt;
        while (held.length < 3 && got.length > 0) held.push(got.shift()!);
        const codes = await ack(got.map((m) => m.receiptHandle));
        ackFailures += codes.filter((x) => x !== OK).length;
        return bodies.every((b) => delivered.has(b)) || undefined;
      },
      30_000,
      20,
    );
    const lost = bodies.filter((b) => !delivered.has(b)).length;
    const duplicates = [...delivered.values()].reduce((n, k) => n + k - 1, 0);
    console.log(
      `[pop failover] consumed on the master before the kill ${consumedBefore} ` +
        `(${inFlightOnMaster.length} left in flight), first message from slave A ` +
        `${firstFromSlaveMs} ms after SIGKILL, duplicates ${duplicates}, lost ${lost}`,
    );
    expect(lost).toBe(0);
    expect(ackFailures).toBe(0);
    expect(firstFromSlaveMs).toBeGreaterThan(0);
    // The slave served the pops: only the held ones are still in flight there.
    const s = await brokerStats(slaveAddr);
    expect(s.haConnected).toBe('false');
    expect(s.inFlightMessages).toBe(String(held.length));

    // Change-invisible on the slave: made visible now, it is delivered again in
    // place (no %RETRY% write on a slave) with the next attempt number.
    const again = held.pop()!;
    const vis = await rest(c.http, 'POST', `${base}/visibility`, {
      receiptHandle: again.receiptHandle,
      invisibleSeconds: 0,
    });
    expect(vis.status).toBe(200);
    const redelivered = await waitFor('redelivered in place on the slave', async () =>
      (await receive(8)).find((m) => m.body === again.body),
    );
    expect(redelivered.deliveryAttempt).toBe(again.deliveryAttempt + 1);
    expect(await ack([redelivered.receiptHandle])).toEqual([OK]);
    expect(await ack([again.receiptHandle])).toEqual([STALE]);

    // The name servers drop master A; receives keep answering (from the slave),
    // across route refreshes, with nothing left to deliver.
    const ns = namesrvClient(c.namesrvs[0]!.addr);
    try {
      await waitFor(
        'the name server dropped master A',
        async () => {
          const info = await callUnary<Empty, ClusterInfo__Output>(ns, ns.GetClusterInfo, {});
          const a = info.broker_addr_table['broker-a'];
          return (a && masterAddrOf(a.broker_addrs) === undefined) || undefined;
        },
        15_000,
        100,
      );
    } finally {
      ns.close();
    }
    const until = Date.now() + 1_500; // more than one routeTtlMs
    await waitFor('receives answered across a route refresh', async () => {
      const r = await rest(c.http, 'POST', `${base}/receive`, { max: 8, waitSeconds: 0 });
      expect(r.status).toBe(200);
      expect(r.json.messages).toEqual([]);
      return Date.now() > until || undefined;
    });
  });

  it('goes back to master A when it returns; a handle from the slave is stale there', async () => {
    master.close();
    const fresh = Array.from({ length: 10 }, (_, i) => `back-${i}`);
    await c.brokers[0]!.start();
    master = new HaClient(c.brokers[0]!.addr);
    await waitFor('slave reconnected', async () => {
      const s = await brokerStats(c.brokers[1]!.addr);
      return s.haConnected === 'true' || undefined;
    });
    // A send through the gateway succeeds once its route has master A again.
    await waitFor('a send through the gateway', async () => {
      const r = await rest(c.http, 'POST', `/v1/topics/${TOPIC}/messages`, { body: 'probe' });
      return r.status === 200 || undefined;
    });
    // Reads (and settling handles that name broker-a) go to master A again: the
    // slave's handles are stale there — the usual 40013 / 409, not a failure.
    expect(held).toHaveLength(2);
    expect(await ack([held[0]!.receiptHandle])).toEqual([STALE]);
    const vis = await rest(c.http, 'POST', `${base}/visibility`, {
      receiptHandle: held[1]!.receiptHandle,
      invisibleSeconds: 0,
    });
    expect(vis.status).toBe(409);
    for (const r of await master.send(TOPIC, fresh)) expect(r.status?.code).toBe(OK);
    // Received from the master: the messages are in flight there until acked.
    const got: Delivered[] = [];
    await waitFor('the new messages received', async () => {
      got.push(...(await receive(32)));
      return fresh.every((b) => got.some((m) => m.body === b)) || undefined;
    });
    const onMaster = await brokerStats(master.addr);
    expect(Number(onMaster.inFlightMessages)).toBeGreaterThanOrEqual(fresh.length);
    const codes = await ack(got.map((m) => m.receiptHandle));
    expect(codes.every((x) => x === OK)).toBe(true);
  });
});

describe('metadata sync on a slave that serves pops', () => {
  it("moves the slave's pop state forward to the master's offset, never back, never dropping what is in flight", async () => {
    const tmp = makeTempDir();
    const root = tmp.path;
    const offsets = new ConsumerOffsetManager(root);
    const states = new ConsumeStateStore({
      dir: join(root, 'popstate'),
      flushDiskType: 'ASYNC_FLUSH',
      flushIntervalMs: 1_000,
      logger: silentLogger,
    });
    try {
      await states.open();
      // As main.ts wires it: pop progress is mirrored into the consumer offsets.
      states.onAdvance = (st) => offsets.commit(st.group, st.topic, st.queueId, st.base);
      const applier = new MetadataApplier({
        configDir: join(root, 'config'),
        topics: new TopicConfigManager(root, {
          autoCreateTopicEnable: true,
          defaultTopicQueueNums: 4,
        }),
        groups: new SubscriptionGroupManager(root, true, 16),
        offsets,
        states,
        logger: silentLogger,
      });
      const snapshot = (offset: number) => ({
        v: 1,
        files: { 'consumerOffset.json': JSON.stringify({ 'T@G': { '0': offset } }) },
        readers: [],
      });
      const entry = (offset: number): InflightEntry => ({
        offset,
        physicalOffset: offset * 100,
        popTime: Date.now(),
        invisibleMs: 30_000,
        attempt: 1,
        messageGroup: '',
        fifo: false,
      });
      // Popped on the slave: 12 and 15 in flight, 20 and 21 acked.
      const st = states.obtain('G', 'T', 0, () => 10);
      await states.put(st, [entry(12), entry(15)]);
      await states.settle(st, [[20, 22]]);

      await applier.apply(snapshot(18));
      expect(st.base).toBe(12);
      expect([...st.inflight.keys()].sort((a, b) => a - b)).toEqual([12, 15]);
      for (const o of [13, 14, 16, 17, 20, 21]) expect(st.isSettled(o)).toBe(true);
      expect(st.isOpen(18)).toBe(true);
      expect(offsets.get('G', 'T', 0)).toBe(18); // the master's offset is the one kept

      await applier.apply(snapshot(5)); // never backwards
      expect(st.base).toBe(12);
      expect(st.inflight.size).toBe(2);

      await states.settleOffsets(st, [12, 15]); // acked on the slave
      expect(st.base).toBe(18);
      await applier.apply(snapshot(25));
      expect(st.base).toBe(25);
      expect(offsets.get('G', 'T', 0)).toBe(25);
    } finally {
      await states.close();
      await offsets.close();
      tmp.remove();
    }
  });
});

describe('RouteResolver read failover', () => {
  it('reads from the lowest-id slave while the master is unreachable, and from the master once back', async () => {
    let now = 0;
    let addrs: Record<string, string> = { '0': 'm:1', '2': 's:2', '1': 's:1' };
    const route = (topic: string): TopicRoute => ({
      topic,
      queue_datas: [
        {
          broker_name: 'a',
          read_queue_nums: 4,
          write_queue_nums: 4,
          perm: 6,
          message_type: 'NORMAL',
        },
      ],
      broker_datas: [{ cluster: 'c', broker_name: 'a', broker_addrs: addrs }],
      status: null,
    });
    const ns = { routes: async ([t]: readonly string[]) => [route(t!)] };
    const r = new RouteResolver(
      ns,
      new MemoryRouteCache(() => now),
      1_000,
      silentLogger,
      () => now,
    );
    let connected = false;
    r.connected = () => connected;
    const reads = async () => (await r.readable('t')).map((x) => x.addr);
    expect(await reads()).toEqual(['m:1']);

    // A call could not reach the master; the name server still lists it.
    r.masterUnreachable('a', 'm:1');
    expect(await reads()).toEqual(['s:1']);
    expect(await r.brokerAddr('t', 'a')).toBe('s:1');
    expect((await r.writable('t')).map((x) => x.addr)).toEqual(['m:1']); // writes: masters only
    now += 1_001;
    expect(await reads()).toEqual(['s:1']); // refreshed, master still listed: still the slave

    // Dropped by the name server, then registered again: back to the master.
    addrs = { '1': 's:1' };
    now += 1_001;
    expect(await reads()).toEqual(['s:1']);
    addrs = { '0': 'm:1', '1': 's:1' };
    now += 1_001;
    expect(await reads()).toEqual(['m:1']);

    // Or connected again before the name server noticed anything.
    r.masterUnreachable('a', 'm:1');
    expect(await reads()).toEqual(['s:1']);
    connected = true;
    expect(await reads()).toEqual(['m:1']);
  });
});
