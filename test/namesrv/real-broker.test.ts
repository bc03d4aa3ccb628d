/**
 * Name server and mqadmin against real mqbroker processes started from the
 * deploy/conf templates (ports and store dirs overridden). Runs once the
 * broker's build loads; until then these are skipped (see componentLoads).
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Code } from '../../common/errors.js';
import {
  addrsOf,
  BrokerProcess,
  componentLoads,
  freePort,
  mqadmin,
  NamesrvProcess,
  NamesrvRaw,
  ROOT,
  reregisterBoundMs,
  sendTo,
  tempDir,
  waitFor,
  writableBrokers,
} from './harness.js';

const NOSLAVE = join(ROOT, 'deploy', 'conf', '2m-noslave');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

async function setup(
  opts: { namesrvs?: number; fixedPorts?: boolean; nsArgs?: string[]; brokerArgs?: string[] } = {},
) {
  const dir = tempDir('real');
  cleanups.push(() => dir.remove());
  const namesrvs: NamesrvProcess[] = [];
  for (let i = 0; i < (opts.namesrvs ?? 1); i++) {
    const port = opts.fixedPorts ? [`listenPort=${await freePort()}`] : [];
    const ns = new NamesrvProcess(
      join(dir.path, `ns${i}`),
      [...port, ...(opts.nsArgs ?? [])],
      `namesrv-${i + 1}`,
    );
    cleanups.push(() => ns.child.stop());
    await ns.start();
    namesrvs.push(ns);
  }
  const addrs = namesrvs.map((n) => n.addr);
  const brokers = await Promise.all(
    ['broker-a', 'broker-b'].map(async (name) => {
      const b = new BrokerProcess(
        name,
        join(NOSLAVE, `${name}.properties`),
        addrs,
        join(dir.path, name),
        opts.brokerArgs,
      );
      cleanups.push(() => b.child.stop());
      await b.start();
      return b;
    }),
  );
  const raws = addrs.map((a) => {
    const r = new NamesrvRaw(a);
    cleanups.push(() => r.close());
    return r;
  });
  return { dir: dir.path, namesrvs, addrs, brokers, raws };
}

/** Messages stored per broker name for a topic (sum of max offsets), via mqadmin topicStatus. */
async function storedPerBroker(namesrv: string, topic: string): Promise<Record<string, number>> {
  const res = await mqadmin(['topicStatus', '-n', namesrv, '-t', topic, '--json']);
  expect(res.stderr).toBe('');
  const out: Record<string, number> = {};
  for (const q of JSON.parse(res.stdout).queues as { brokerName: string; maxOffset: number }[]) {
    out[q.brokerName] = (out[q.brokerName] ?? 0) + q.maxOffset;
  }
  return out;
}

/** A producer that honours routes: spreads `count` sends over the brokers the route offers for writing. */
async function produce(raw: NamesrvRaw, topic: string, count: number): Promise<void> {
  const route = await raw.route(topic);
  const writable = writableBrokers(route);
  expect(writable.length).toBeGreaterThan(0);
  for (let i = 0; i < count; i++) {
    const name = writable[i % writable.length]!;
    const data = route.broker_datas.find((b) => b.broker_name === name)!;
    const res = await sendTo(addrsOf(data.broker_addrs)[0]!, topic, 1);
    expect(res.results[0]?.status?.code).toBe(Code.OK);
  }
}

describe.skipIf(!componentLoads('broker/main'))('with real brokers', () => {
  it('runs the acceptance script: clusterList, updateTopic -c DefaultCluster, topicRoute shows both brokers', async () => {
    const dir = tempDir('accept');
    cleanups.push(() => dir.remove());
    const ns = new NamesrvProcess(join(dir.path, 'ns'));
    cleanups.push(() => ns.child.stop());
    await ns.start();
    const localhost = ns.addr.replace('127.0.0.1', 'localhost');
    const brokers = ['broker-a', 'broker-b'].map((name) => {
      const b = new BrokerProcess(
        name,
        join(NOSLAVE, `${name}.properties`),
        [localhost],
        join(dir.path, name),
      );
      cleanups.push(() => b.child.stop());
      return b;
    });
    await Promise.all(brokers.map((b) => b.start()));

    const list = await waitFor('both brokers in clusterList', async () => {
      const r = await mqadmin(['clusterList', '-n', localhost]);
      return r.code === 0 && brokers.every((b) => r.stdout.includes(b.addr)) ? r : undefined;
    });
    expect(list.stdout).toMatch(
      new RegExp(`DefaultCluster\\s+broker-a\\s+0\\s+${brokers[0]!.addr}`),
    );
    expect(list.stdout).toMatch(
      new RegExp(`DefaultCluster\\s+broker-b\\s+0\\s+${brokers[1]!.addr}`),
    );

    const update = await mqadmin([
      'updateTopic',
      '-n',
      localhost,
      '-c',
      'DefaultCluster',
      '-t',
      'T1',
    ]);
    expect(update.stderr).toBe('');
    expect(update.code).toBe(0);

    const route = await mqadmin(['topicRoute', '-n', localhost, '-t', 'T1']);
    expect(route.code).toBe(0);
    expect(route.stdout).toMatch(
      new RegExp(`DefaultCluster\\s+broker-a\\s+\\{0:${brokers[0]!.addr}\\}\\s+8\\s+8\\s+RW-`),
    );
    expect(route.stdout).toMatch(
      new RegExp(`DefaultCluster\\s+broker-b\\s+\\{0:${brokers[1]!.addr}\\}\\s+8\\s+8\\s+RW-`),
    );
  });

  it('wipeWritePerm sends every new write to the other master; addWritePerm brings it back', async () => {
    const { addrs, brokers, raws } = await setup();
    const ns = addrs[0]!;
    expect(
      (
        await mqadmin([
          'updateTopic',
          '-n',
          ns,
          '-c',
          'DefaultCluster',
          '-t',
          'TW',
          '-r',
          '4',
          '-w',
          '4',
        ])
      ).code,
    ).toBe(0);
    expect(writableBrokers(await raws[0]!.route('TW'))).toEqual(['broker-a', 'broker-b']);

    const wipe = await mqadmin(['wipeWritePerm', '-n', ns, '-b', 'broker-a']);
    expect(wipe.stderr).toBe('');
    expect(wipe.code).toBe(0);
    const before = await storedPerBroker(ns, 'TW');
    await produce(raws[0]!, 'TW', 20);
    const after = await storedPerBroker(ns, 'TW');
    expect((after['broker-a'] ?? 0) - (before['broker-a'] ?? 0)).toBe(0);
    expect((after['broker-b'] ?? 0) - (before['broker-b'] ?? 0)).toBe(20);
    // The broker itself refuses writes too.
    const refused = await sendTo(brokers[0]!.addr, 'TW', 1).then(
      (r) => r.results.every((x) => x.status?.code !== Code.OK),
      () => true,
    );
    expect(refused).toBe(true);

    // Still wiped after further heartbeats and a broker restart (the broker persisted it).
    await brokers[0]!.child.restart();
    await waitFor(
      'broker-a back in the route',
      async () => (await raws[0]!.route('TW')).queue_datas.length === 2,
    );
    expect(writableBrokers(await raws[0]!.route('TW'))).toEqual(['broker-b']);

    expect((await mqadmin(['addWritePerm', '-n', ns, '-b', 'broker-a'])).code).toBe(0);
    expect(writableBrokers(await raws[0]!.route('TW'))).toEqual(['broker-a', 'broker-b']);
    await produce(raws[0]!, 'TW', 20);
    const last = await storedPerBroker(ns, 'TW');
    expect((last['broker-a'] ?? 0) - (after['broker-a'] ?? 0)).toBe(10);
  });

  it('a broker that stops heartbeating (SIGSTOP) leaves the routes after its expiry, and returns on SIGCONT', async () => {
    const { brokers, raws, addrs } = await setup({
      nsArgs: ['scanNotActiveBrokerInterval=200'],
      brokerArgs: ['registerBrokerInterval=300', 'brokerNotActiveTimeoutMillis=1500'],
    });
    expect(
      (await mqadmin(['updateTopic', '-n', addrs[0]!, '-c', 'DefaultCluster', '-t', 'TS'])).code,
    ).toBe(0);
    const pid = brokers[0]!.child.pid!;
    process.kill(pid, 'SIGSTOP');
    cleanups.push(() => {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
    });
    const stoppedAt = Date.now();
    await waitFor(
      'broker-a to expire',
      async () => (await raws[0]!.route('TS')).queue_datas.length === 1,
      10_000,
    );
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(1_000);
    expect(Object.keys((await raws[0]!.clusterInfo()).broker_addr_table)).toEqual(['broker-b']);

    process.kill(pid, 'SIGCONT');
    await waitFor(
      'broker-a to re-register',
      async () => (await raws[0]!.route('TS')).queue_datas.length === 2,
      5_000,
    );
  });

  it('two name servers, one SIGKILLed: routes still served; after restart brokers re-register within one heartbeat', async () => {
    const intervalMs = 500;
    const { namesrvs, raws, addrs } = await setup({
      namesrvs: 2,
      fixedPorts: true,
      brokerArgs: [`registerBrokerInterval=${intervalMs}`],
    });
    expect(
      (await mqadmin(['updateTopic', '-n', addrs.join(';'), '-c', 'DefaultCluster', '-t', 'T2']))
        .code,
    ).toBe(0);
    await waitFor('T2 on both name servers', async () => {
      const routes = await Promise.all(raws.map((r) => r.route('T2')));
      return routes.every((r) => r.queue_datas.length === 2);
    });

    await namesrvs[0]!.child.kill('SIGKILL');
    expect((await raws[1]!.route('T2')).queue_datas).toHaveLength(2);
    const viaList = await mqadmin(['topicRoute', '-n', addrs.join(';'), '-t', 'T2', '--json']);
    expect(viaList.code).toBe(0);
    expect(JSON.parse(viaList.stdout).queueDatas).toHaveLength(2);

    await namesrvs[0]!.start();
    expect(namesrvs[0]!.addr).toBe(addrs[0]);
    const restartedAt = Date.now();
    await waitFor(
      'brokers back on namesrv-1',
      async () => (await raws[0]!.route('T2')).queue_datas.length === 2,
      10_000,
      20,
    );
    expect(Date.now() - restartedAt).toBeLessThan(reregisterBoundMs(intervalMs));
  });

  it('mqadmin broker-side commands work through the name server', async () => {
    const { addrs, brokers } = await setup();
    const ns = addrs[0]!;
    expect(
      (await mqadmin(['updateTopic', '-n', ns, '-c', 'DefaultCluster', '-t', 'TQ'])).code,
    ).toBe(0);
    const sent = await sendTo(brokers[0]!.addr, 'TQ', 3, ['order-42']);
    expect(sent.results.every((r) => r.status?.code === Code.OK)).toBe(true);

    const status = await storedPerBroker(ns, 'TQ');
    expect(status['broker-a']).toBe(3);

    const byKey = await waitFor('key index', async () => {
      const r = await mqadmin(['queryMsgByKey', '-n', ns, '-t', 'TQ', '-k', 'order-42', '--json']);
      return r.code === 0 && JSON.parse(r.stdout).messages.length === 3 ? r : undefined;
    });
    const id = JSON.parse(byKey.stdout).messages[0].messageId as string;
    const byId = await mqadmin(['queryMsgById', '-n', ns, '-t', 'TQ', '-i', id]);
    expect(byId.stderr).toBe('');
    expect(byId.stdout).toMatch(/^Topic:\s+TQ$/m);
    expect(byId.stdout).toMatch(/^Keys:\s+\[order-42\]$/m);

    const group = await mqadmin([
      'updateSubGroup',
      '-n',
      ns,
      '-c',
      'DefaultCluster',
      '-g',
      'G1',
      '-r',
      '3',
    ]);
    expect(group.stderr).toBe('');
    expect(group.stdout).toContain('retryMaxTimes=3');
    const reset = await mqadmin([
      'resetOffsetByTime',
      '-n',
      ns,
      '-g',
      'G1',
      '-t',
      'TQ',
      '-s',
      '0',
      '--json',
    ]);
    expect(reset.stderr).toBe('');
    expect(reset.code).toBe(0);
    const progress = await mqadmin(['consumerProgress', '-n', ns, '-g', 'G1', '--json']);
    expect(progress.stderr).toBe('');
    expect(progress.code).toBe(0);
    expect(JSON.parse(progress.stdout).group).toBe('G1');
    expect(
      (await mqadmin(['deleteSubGroup', '-n', ns, '-c', 'DefaultCluster', '-g', 'G1'])).code,
    ).toBe(0);

    const brokerStatus = await mqadmin([
      'brokerStatus',
      '-n',
      ns,
      '-b',
      brokers[0]!.addr,
      '--json',
    ]);
    expect(JSON.parse(brokerStatus.stdout)[brokers[0]!.addr].brokerName).toBe('broker-a');
    const config = await mqadmin(['getBrokerConfig', '-n', ns, '-c', 'DefaultCluster']);
    expect(config.stdout).toMatch(/^brokerName\s+= broker-b$/m);

    const del = await mqadmin(['deleteTopic', '-n', ns, '-c', 'DefaultCluster', '-t', 'TQ']);
    expect(del.code).toBe(0);
    const gone = await mqadmin(['topicRoute', '-n', ns, '-t', 'TQ']);
    expect(gone.code).not.toBe(0);
  });
});
