/**
 * Topic and permission admin through the name server (driven by the mqadmin
 * binary): fan-out to every master of a cluster, routes updated at once,
 * wipe/add write permission on every name server and on the broker itself.
 * The brokers are in-process fakes; real-broker-tests.test.ts repeats the
 * essentials against mqbroker.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Code } from '../../common/errors.js';
import {
  FakeBroker,
  mqadmin,
  NamesrvProcess,
  NamesrvRaw,
  tempDir,
  waitFor,
  writableBrokers,
} from './harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

async function namesrv(name = 'namesrv') {
  const dir = tempDir('ns');
  const ns = new NamesrvProcess(dir.path, [], name);
  cleanups.push(async () => {
    await ns.child.stop();
    dir.remove();
  });
  await ns.start();
  const raw = new NamesrvRaw(ns.addr);
  cleanups.push(() => raw.close());
  return { ns, raw };
}

async function fake(spec: ConstructorParameters<typeof FakeBroker>[0]) {
  const b = new FakeBroker(spec);
  cleanups.push(() => b.close(false));
  return b.start();
}

/** Two masters (and a slave of broker-a) registered with the given name servers. */
async function twoMasters(addrs: string[], intervalMs = 500) {
  const a = await fake({ brokerName: 'broker-a', namesrvAddrs: addrs, intervalMs });
  const b = await fake({ brokerName: 'broker-b', namesrvAddrs: addrs, intervalMs });
  const as = await fake({ brokerName: 'broker-a', brokerId: 1, namesrvAddrs: addrs, intervalMs });
  return { a, b, as };
}

describe('topic admin through the name server', () => {
  it('creates a topic on every master of a cluster; the route shows queues on both at once', async () => {
    const { ns, raw } = await namesrv();
    const { a, b, as } = await twoMasters([ns.addr], 60_000);

    const res = await mqadmin([
      'updateTopic',
      '-n',
      ns.addr,
      '-c',
      'DefaultCluster',
      '-t',
      'T1',
      '-r',
      '6',
      '-w',
      '6',
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('create topic to broker-a success.');
    expect(res.stdout).toContain('create topic to broker-b success.');
    expect(a.topics.get('T1')?.write_queue_nums).toBe(6);
    expect(b.topics.get('T1')?.write_queue_nums).toBe(6);
    expect(as.topics.has('T1')).toBe(false); // masters only

    // Heartbeats are a minute apart here: the route must come from the admin call itself.
    const route = await raw.route('T1');
    expect(
      route.queue_datas.map((q) => [q.broker_name, q.read_queue_nums, q.write_queue_nums, q.perm]),
    ).toEqual([
      ['broker-a', 6, 6, 6],
      ['broker-b', 6, 6, 6],
    ]);

    const shown = await mqadmin(['topicRoute', '-n', ns.addr, '-t', 'T1']);
    expect(shown.code).toBe(0);
    const lines = shown.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^#ClusterName\s+#BrokerName\s+#BrokerAddrs\s+#ReadQueue\s+#WriteQueue\s+#Perm$/,
    );
    expect(lines[1]).toMatch(
      new RegExp(`^DefaultCluster\\s+broker-a\\s+\\{0:${a.addr},1:${as.addr}\\}\\s+6\\s+6\\s+RW-$`),
    );
    expect(lines[2]).toMatch(
      new RegExp(`^DefaultCluster\\s+broker-b\\s+\\{0:${b.addr}\\}\\s+6\\s+6\\s+RW-$`),
    );
    expect(lines[3]).toMatch(/^Total\s+2 brokers\s+12\s+12$/);

    const listed = await mqadmin(['topicList', '-n', ns.addr, '--json']);
    expect(JSON.parse(listed.stdout)).toEqual({ topics: ['T1'] });
  });

  it('creates on one broker by name or address, and deletes from a cluster', async () => {
    const { ns, raw } = await namesrv();
    const { a, b } = await twoMasters([ns.addr]);
    expect((await mqadmin(['updateTopic', '-n', ns.addr, '-b', 'broker-a', '-t', 'TA'])).code).toBe(
      0,
    );
    expect(
      (await mqadmin(['updateTopic', '-n', ns.addr, '-b', b.addr, '-t', 'TB', '-o', 'true'])).code,
    ).toBe(0);
    expect(
      (await raw.route('TA')).queue_datas.map((q) => [q.broker_name, q.read_queue_nums]),
    ).toEqual([['broker-a', 8]]);
    const tb = await raw.route('TB');
    expect(tb.queue_datas.map((q) => [q.broker_name, q.message_type])).toEqual([
      ['broker-b', 'FIFO'],
    ]);
    expect(b.topics.get('TB')?.order).toBe(true);

    const del = await mqadmin(['deleteTopic', '-n', ns.addr, '-c', 'DefaultCluster', '-t', 'TA']);
    expect(del.code).toBe(0);
    expect(del.stdout.trim()).toBe('delete topic [TA] from cluster [DefaultCluster] success.');
    expect(a.topics.has('TA')).toBe(false);
    expect((await raw.route('TA')).status?.code).toBe(Code.TOPIC_NOT_FOUND);
  });

  it('reports a partial failure naming the broker that failed', async () => {
    const { ns, raw } = await namesrv();
    const { b } = await twoMasters([ns.addr], 60_000);
    await b.close(false); // still registered, no longer answering
    const res = await mqadmin([
      'updateTopic',
      '-n',
      ns.addr,
      '-c',
      'DefaultCluster',
      '-t',
      'T2',
      '--timeout',
      '3000',
    ]);
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(
      /^mqadmin updateTopic: create topic T2 failed on broker-b \(.*\); done on broker-a$/m,
    );
    expect((await raw.route('T2')).queue_datas.map((q) => q.broker_name)).toEqual(['broker-a']);
  });

  it('wipeWritePerm takes a broker out of every route on every name server; addWritePerm brings it back', async () => {
    const one = await namesrv('namesrv-1');
    const two = await namesrv('namesrv-2');
    const addrs = [one.ns.addr, two.ns.addr];
    const { a } = await twoMasters(addrs, 300);
    expect(
      (await mqadmin(['updateTopic', '-n', addrs.join(';'), '-c', 'DefaultCluster', '-t', 'T1']))
        .code,
    ).toBe(0);
    expect(
      (await mqadmin(['updateTopic', '-n', addrs.join(';'), '-c', 'DefaultCluster', '-t', 'T2']))
        .code,
    ).toBe(0);
    // The second name server learns T1/T2 from the brokers' next heartbeat.
    await waitFor(
      'T1 on namesrv-2',
      async () => writableBrokers(await two.raw.route('T1')).length === 2,
    );

    const wipe = await mqadmin(['wipeWritePerm', '-n', addrs.join(';'), '-b', 'broker-a']);
    expect(wipe.stderr).toBe('');
    expect(wipe.code).toBe(0);
    expect(wipe.stdout.trim().split('\n')).toEqual([
      `wipe write perm of broker[broker-a] in name server[${addrs[0]}] OK, 2`,
      `wipe write perm of broker[broker-a] in name server[${addrs[1]}] OK, 2`,
    ]);
    expect(a.perm).toBe(4); // the broker was told (and would persist it)
    for (const { raw } of [one, two]) {
      const route = await raw.route('T1');
      expect(writableBrokers(route)).toEqual(['broker-b']);
      expect(route.queue_datas.find((q) => q.broker_name === 'broker-a')?.perm).toBe(4);
    }
    // Heartbeats keep it wiped.
    const beats = a.beats;
    await waitFor('two more heartbeats of broker-a', () => a.beats >= beats + 2);
    expect(writableBrokers(await one.raw.route('T2'))).toEqual(['broker-b']);

    const add = await mqadmin(['addWritePerm', '-n', addrs.join(';'), '-b', 'broker-a', '--json']);
    expect(add.code).toBe(0);
    expect(
      JSON.parse(add.stdout).results.map((r: { affectedTopics: number }) => r.affectedTopics),
    ).toEqual([2, 2]);
    expect(a.perm).toBe(6);
    for (const { raw } of [one, two])
      expect(writableBrokers(await raw.route('T1'))).toEqual(['broker-a', 'broker-b']);
  });

  it('wipeWritePerm of an unknown broker fails with one line', async () => {
    const { ns } = await namesrv();
    const res = await mqadmin(['wipeWritePerm', '-n', ns.addr, '-b', 'nope']);
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim()).toBe(
      "mqadmin wipeWritePerm: broker 'nope' is not registered with this name server",
    );
  });
});
