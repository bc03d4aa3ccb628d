/**
 * The name server as a real process: boot line and config file, routes,
 * expiry of a silent broker, KV persistence across restarts, and failover
 * between two name servers. Brokers here are in-process fakes that register
 * like the real one (harness.ts); real-broker versions live in
 * test/namesrv/real-broker.test.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Code } from '../../common/errors.js';
import {
  addrsOf,
  FakeBroker,
  freePort,
  mqadmin,
  NamesrvProcess,
  NamesrvRaw,
  reregisterBoundMs,
  runBin,
  tempDir,
  waitFor,
} from './harness.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

async function namesrv(overrides: string[] = [], name?: string) {
  const dir = tempDir('ns');
  const ns = new NamesrvProcess(dir.path, overrides, name);
  cleanups.push(async () => {
    await ns.child.stop();
    dir.remove();
  });
  await ns.start();
  return ns;
}

function raw(addr: string) {
  const r = new NamesrvRaw(addr);
  cleanups.push(() => r.close());
  return r;
}

async function fake(spec: ConstructorParameters<typeof FakeBroker>[0]) {
  const b = new FakeBroker(spec);
  cleanups.push(() => b.close(false));
  return b.start();
}

const topic = (name: string, queues = 4) => ({
  topic_name: name,
  read_queue_nums: queues,
  write_queue_nums: queues,
  perm: 6,
  message_type: 'NORMAL',
  order: false,
});

describe('mqnamesrv process', () => {
  it('honours listenPort from -c namesrv.properties and prints the boot line with the bound address', async () => {
    const dir = tempDir('nsconf');
    cleanups.push(() => dir.remove());
    const port = await freePort();
    const file = join(dir.path, 'namesrv.properties');
    writeFileSync(file, `listenPort=${port}\nkvConfigPath=${join(dir.path, 'kv.json')}\n`);
    const ns = new NamesrvProcess(dir.path, [], 'namesrv-conf');
    // Replace the harness defaults: only the file decides the port here.
    ns.child.spec.args.splice(0, ns.child.spec.args.length, '-c', file);
    cleanups.push(() => ns.child.stop());
    await ns.start();
    expect(ns.child.ready?.[0]).toBe(
      `The Name Server boot success. serializeType=JSON, address 0.0.0.0:${port}`,
    );
    expect(ns.addr).toBe(`127.0.0.1:${port}`);

    const printed = await runBin('mqnamesrv', ['-c', file, '-p']);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain(`listenPort=${port}`);
  });

  it('refuses a bad config value with file, line and what was expected', async () => {
    const dir = tempDir('nsbad');
    cleanups.push(() => dir.remove());
    const file = join(dir.path, 'namesrv.properties');
    writeFileSync(file, '# comment\nlistenPort=http\n');
    const res = await runBin('mqnamesrv', ['-c', file]);
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toContain(`${file}:2: listenPort=http is not valid`);
  });

  it('serves batch routes, 40402 per unknown topic, and tells a slave its master', async () => {
    const ns = await namesrv();
    const client = raw(ns.addr);
    const a = await fake({
      brokerName: 'broker-a',
      namesrvAddrs: [ns.addr],
      topics: [topic('T1', 8)],
    });
    await fake({
      brokerName: 'broker-b',
      namesrvAddrs: [ns.addr],
      topics: [topic('T1'), topic('T2')],
    });
    const slave = await client.register({
      cluster_name: 'DefaultCluster',
      broker_name: 'broker-a',
      broker_id: 1,
      broker_addr: '127.0.0.1:1',
      broker_role: 'SLAVE',
    });
    expect(slave.master_addr).toBe(a.addr);

    const [t1, t2, missing] = await client.routes(['T1', 'T2', 'missing']);
    expect(t1!.status?.code).toBe(Code.OK);
    expect(t1!.queue_datas.map((q) => [q.broker_name, q.read_queue_nums])).toEqual([
      ['broker-a', 8],
      ['broker-b', 4],
    ]);
    expect(addrsOf(t1!.broker_datas[0]!.broker_addrs)).toEqual({ 0: a.addr, 1: '127.0.0.1:1' });
    expect(t2!.queue_datas.map((q) => q.broker_name)).toEqual(['broker-b']);
    expect(missing!.status?.code).toBe(Code.TOPIC_NOT_FOUND);
    expect(missing!.queue_datas).toEqual([]);
  });

  it('drops a broker that stops heartbeating once its timeout passes', async () => {
    const ns = await namesrv(['scanNotActiveBrokerInterval=100']);
    const client = raw(ns.addr);
    const a = await fake({
      brokerName: 'broker-a',
      namesrvAddrs: [ns.addr],
      intervalMs: 200,
      heartbeatTimeoutMs: 1_000,
      topics: [topic('T1')],
    });
    await fake({
      brokerName: 'broker-b',
      namesrvAddrs: [ns.addr],
      intervalMs: 200,
      heartbeatTimeoutMs: 1_000,
      topics: [topic('T1')],
    });
    expect((await client.route('T1')).queue_datas).toHaveLength(2);

    // Still there well past a few heartbeats while it beats.
    await new Promise((r) => setTimeout(r, 1_200));
    expect((await client.route('T1')).queue_datas).toHaveLength(2);

    a.pause();
    const pausedAt = Date.now();
    await waitFor(
      'broker-a to expire',
      async () => (await client.route('T1')).queue_datas.length === 1,
    );
    const elapsed = Date.now() - pausedAt;
    expect(elapsed).toBeGreaterThanOrEqual(800);
    expect(elapsed).toBeLessThan(5_000);
    const info = await client.clusterInfo();
    expect(Object.keys(info.broker_addr_table)).toEqual(['broker-b']);
    expect(info.live).not.toHaveProperty(a.addr);

    // Heartbeats again: back within one interval.
    a.resume();
    await waitFor(
      'broker-a to return',
      async () => (await client.route('T1')).queue_datas.length === 2,
      3_000,
    );
  });

  it('uses brokerExpireMillis for a registration that names no timeout', async () => {
    const ns = await namesrv(['scanNotActiveBrokerInterval=100', 'brokerExpireMillis=700']);
    const client = raw(ns.addr);
    await client.register({
      cluster_name: 'DefaultCluster',
      broker_name: 'broker-x',
      broker_id: 0,
      broker_addr: '127.0.0.1:2',
      topics: [topic('TX')],
    });
    expect((await client.route('TX')).status?.code).toBe(Code.OK);
    await waitFor(
      'broker-x to expire',
      async () => (await client.route('TX')).status?.code === Code.TOPIC_NOT_FOUND,
      5_000,
    );
  });

  it('removes a broker on unregister at once', async () => {
    const ns = await namesrv();
    const client = raw(ns.addr);
    const a = await fake({
      brokerName: 'broker-a',
      namesrvAddrs: [ns.addr],
      topics: [topic('T1')],
    });
    expect((await client.route('T1')).status?.code).toBe(Code.OK);
    await a.close(true);
    expect((await client.route('T1')).status?.code).toBe(Code.TOPIC_NOT_FOUND);
  });

  it('keeps KV config across a restart (written atomically as kvConfig.json)', async () => {
    const ns = await namesrv();
    const put = await mqadmin([
      'updateKvConfig',
      '-n',
      ns.addr,
      '-s',
      'ORDER_TOPIC_CONFIG',
      '-k',
      'orders',
      '-v',
      'broker-a:4',
    ]);
    expect(put.code).toBe(0);
    expect(put.stdout).toContain('create or update kv config to namespace success.');
    const file = JSON.parse(readFileSync(join(ns.home, 'kvConfig.json'), 'utf8'));
    expect(file).toEqual({ configTable: { ORDER_TOPIC_CONFIG: { orders: 'broker-a:4' } } });

    await ns.child.kill('SIGKILL');
    await ns.start();
    const got = await mqadmin([
      'getKvConfig',
      '-n',
      ns.addr,
      '-s',
      'ORDER_TOPIC_CONFIG',
      '-k',
      'orders',
      '--json',
    ]);
    expect(got.code).toBe(0);
    expect(JSON.parse(got.stdout)).toEqual({
      namespace: 'ORDER_TOPIC_CONFIG',
      table: { orders: 'broker-a:4' },
    });

    const del = await mqadmin([
      'deleteKvConfig',
      '-n',
      ns.addr,
      '-s',
      'ORDER_TOPIC_CONFIG',
      '-k',
      'orders',
    ]);
    expect(del.code).toBe(0);
    const gone = await mqadmin([
      'getKvConfig',
      '-n',
      ns.addr,
      '-s',
      'ORDER_TOPIC_CONFIG',
      '-k',
      'orders',
    ]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('no KV config ORDER_TOPIC_CONFIG/orders');
  });

  it('two name servers: one SIGKILLed, the other serves; after restart brokers are back within one heartbeat', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const ns1 = await namesrv([`listenPort=${p1}`], 'namesrv-1');
    const ns2 = await namesrv([`listenPort=${p2}`], 'namesrv-2');
    const addrs = [ns1.addr, ns2.addr];
    const intervalMs = 500;
    await fake({ brokerName: 'broker-a', namesrvAddrs: addrs, intervalMs, topics: [topic('T1')] });
    await fake({ brokerName: 'broker-b', namesrvAddrs: addrs, intervalMs, topics: [topic('T1')] });
    const c1 = raw(ns1.addr);
    const c2 = raw(ns2.addr);
    expect((await c1.route('T1')).queue_datas).toHaveLength(2);

    await ns1.child.kill('SIGKILL');
    expect((await c2.route('T1')).queue_datas).toHaveLength(2);
    // mqadmin fails over to the live one.
    const listed = await mqadmin(['topicRoute', '-n', addrs.join(';'), '-t', 'T1', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).queueDatas).toHaveLength(2);

    await ns1.start();
    expect(ns1.addr).toBe(`127.0.0.1:${p1}`);
    const restartedAt = Date.now();
    await waitFor(
      'brokers to re-register with namesrv-1',
      async () => (await c1.route('T1')).queue_datas.length === 2,
      5_000,
      20,
    );
    expect(Date.now() - restartedAt).toBeLessThan(reregisterBoundMs(intervalMs));
  });
});
