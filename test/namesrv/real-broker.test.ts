/**
 * Name server and mqadmin against real mqbroker processes started from the
 * deploy/conf templates (ports and store dirs overridden): the issue's
 * acceptance script, write permission, expiry, name server outages (one or
 * all), boot order, metadata across a restart and the broker's auto-create
 * switches.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerClients } from '../../cli/admin/broker-clients.js';
import { Code, isSluiceError } from '../../common/errors.js';
import { BrokerApi } from '../messaging/broker-api.js';
import {
  addrsOf,
  BrokerProcess,
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
const cleanups: (() => unknown)[] = [];
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

/** The code a send of one message got, whether the broker answered per entry or failed the call. */
async function sendCode(addr: string, topic: string): Promise<number> {
  try {
    const res = await sendTo(addr, topic, 1);
    return res.results[0]?.status?.code ?? -1;
  } catch (err) {
    return isSluiceError(err) ? err.code : -1;
  }
}

describe('with real brokers', () => {
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

    // As in RocketMQ, a broker registers before it prints its boot line: once
    // both lines are out, both brokers are listed, with no waiting.
    const list = await mqadmin(['clusterList', '-n', localhost]);
    expect(list.code, list.stderr).toBe(0);
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
    // The saved perm (4) beats the file's brokerPermission (6), and the broker says so.
    expect(
      brokers[0]!.child.lines.some((l) =>
        /"perm":4,"brokerPermission":6.*overrides brokerPermission/.test(l),
      ),
    ).toBe(true);

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
    // RocketMQ's -g/-d (push to one client) are accepted: one warning, the message still printed.
    const direct = await mqadmin([
      'queryMsgById',
      '-n',
      ns,
      '-t',
      'TQ',
      '-i',
      id,
      '-g',
      'G1',
      '-d',
      '127.0.0.1@1',
    ]);
    expect(direct.code).toBe(0);
    expect(direct.stderr.trim()).toMatch(/^mqadmin queryMsgById: ignored: -g -d \(.+\)$/);
    expect(direct.stdout).toMatch(/^Keys:\s+\[order-42\]$/m);
    const inCluster = await mqadmin(['topicStatus', '-n', ns, '-t', 'TQ', '-c', 'DefaultCluster']);
    expect(inCluster.stderr).toBe('');
    expect(inCluster.stdout).toMatch(/broker-a\s+0\s/);
    const otherCluster = await mqadmin(['topicStatus', '-n', ns, '-t', 'TQ', '-c', 'Other']);
    expect(otherCluster.code).toBe(1);
    expect(otherCluster.stderr.trim()).toBe(
      "mqadmin topicStatus: topic 'TQ' has no broker in cluster 'Other'",
    );

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
    const rocketFlags = await mqadmin([
      'updateSubGroup',
      '-n',
      ns,
      '-b',
      'broker-a',
      '-g',
      'G1',
      '-m',
      'true',
      '-q',
      '1',
      '-i',
      '0',
      '-a',
      'false',
    ]);
    expect(rocketFlags.code).toBe(0);
    expect(
      rocketFlags.stderr
        .trimEnd()
        .split('\n')
        .map((l) => l.split(' (')[0]),
    ).toEqual([
      'mqadmin updateSubGroup: ignored: -m, --consumeFromMinEnable',
      'mqadmin updateSubGroup: ignored: -q, --retryQueueNums',
      'mqadmin updateSubGroup: ignored: -i, --brokerId',
      'mqadmin updateSubGroup: ignored: -a, --notifyConsumerIdsChanged',
    ]);
    expect(rocketFlags.stdout).toContain('retryMaxTimes=3');
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
    const offsetsOf = (out: string) =>
      (JSON.parse(out).offsets as { brokerName: string; queueId: number; offset: number }[]).filter(
        (o) => o.brokerName === 'broker-a',
      );
    expect(offsetsOf(reset.stdout).every((o) => o.offset === 0)).toBe(true);
    // -f false (RocketMQ's non-forced reset) only moves offsets back: all stay at 0.
    const soft = await mqadmin([
      'resetOffsetByTime',
      '-n',
      ns,
      '-g',
      'G1',
      '-t',
      'TQ',
      '-s',
      'now',
      '-f',
      'false',
      '--json',
    ]);
    expect(soft.stderr).toBe('');
    expect(soft.code).toBe(0);
    expect(offsetsOf(soft.stdout).map((o) => o.offset)).toEqual(
      offsetsOf(reset.stdout).map(() => 0),
    );
    // Forced (the default), the same time moves them to the end of each queue.
    const forced = await mqadmin([
      'resetOffsetByTime',
      '-n',
      ns,
      '-g',
      'G1',
      '-t',
      'TQ',
      '-s',
      'now',
      '--json',
    ]);
    expect(offsetsOf(forced.stdout).reduce((sum, o) => sum + o.offset, 0)).toBe(3);
    const back = await mqadmin([
      'resetOffsetByTime',
      '-n',
      ns,
      '-g',
      'G1',
      '-t',
      'TQ',
      '-s',
      '0',
      '-f',
      'false',
      '--json',
    ]);
    expect(offsetsOf(back.stdout).reduce((sum, o) => sum + o.offset, 0)).toBe(0);
    const progress = await mqadmin(['consumerProgress', '-n', ns, '-g', 'G1', '--json']);
    expect(progress.stderr).toBe('');
    expect(progress.code).toBe(0);
    expect(JSON.parse(progress.stdout).group).toBe('G1');
    const withIp = await mqadmin(['consumerProgress', '-n', ns, '-g', 'G1', '-s', '--json']);
    expect(withIp.code).toBe(0);
    expect(withIp.stderr.trim()).toMatch(
      /^mqadmin consumerProgress: ignored: -s, --showClientIP \(.+\)$/,
    );
    expect(JSON.parse(withIp.stdout).queues).toEqual(JSON.parse(progress.stdout).queues);
    const keepOffsets = await mqadmin([
      'deleteSubGroup',
      '-n',
      ns,
      '-c',
      'DefaultCluster',
      '-g',
      'G1',
      '-r',
      'false',
    ]);
    expect(keepOffsets.code).toBe(0);
    expect(keepOffsets.stderr.trim()).toMatch(/^mqadmin deleteSubGroup: ignored: -r false \(.+\)$/);
    const removeOffsets = await mqadmin([
      'deleteSubGroup',
      '-n',
      ns,
      '-c',
      'DefaultCluster',
      '-g',
      'G1',
      '-r',
      'true',
    ]);
    expect(removeOffsets.stderr).toBe('');
    expect(removeOffsets.code).toBe(0);

    const brokerStatus = await mqadmin([
      'brokerStatus',
      '-n',
      ns,
      '-b',
      brokers[0]!.addr,
      '--json',
    ]);
    const statusA = JSON.parse(brokerStatus.stdout)[brokers[0]!.addr];
    expect(statusA.brokerName).toBe('broker-a');
    // The broker's CPU time so far, µs: a live process has used some.
    expect(Number(statusA.cpuMicros)).toBeGreaterThan(0);
    const config = await mqadmin(['getBrokerConfig', '-n', ns, '-c', 'DefaultCluster']);
    expect(config.stdout).toMatch(/^brokerName\s+= broker-b$/m);

    const del = await mqadmin(['deleteTopic', '-n', ns, '-c', 'DefaultCluster', '-t', 'TQ']);
    expect(del.code).toBe(0);
    const gone = await mqadmin(['topicRoute', '-n', ns, '-t', 'TQ']);
    expect(gone.code).not.toBe(0);
  });

  it('a broker started before its name server registers within about a second of it booting', async () => {
    const dir = tempDir('boot-order');
    cleanups.push(() => dir.remove());
    const port = await freePort();
    // The template's registerBrokerInterval (RocketMQ's 30 s) stays as it is.
    const broker = new BrokerProcess(
      'broker-a',
      join(NOSLAVE, 'broker-a.properties'),
      [`127.0.0.1:${port}`],
      join(dir.path, 'broker-a'),
    );
    cleanups.push(() => broker.child.stop());
    await broker.start();
    const ns = new NamesrvProcess(join(dir.path, 'ns'), [`listenPort=${port}`]);
    cleanups.push(() => ns.child.stop());
    await ns.start();
    const bootedAt = Date.now();
    const raw = new NamesrvRaw(ns.addr);
    cleanups.push(() => raw.close());
    await waitFor(
      'broker-a registered',
      async () => broker.addr in (await raw.clusterInfo()).live,
      10_000,
      20,
    );
    expect(Date.now() - bootedAt).toBeLessThan(2_000);
  });

  it('keeps serving when every name server is down (SIGKILL); re-registers when one comes back', async () => {
    const intervalMs = 500;
    const { namesrvs, brokers, raws, addrs } = await setup({
      namesrvs: 2,
      fixedPorts: true,
      brokerArgs: [`registerBrokerInterval=${intervalMs}`],
    });
    expect(
      (await mqadmin(['updateTopic', '-n', addrs.join(';'), '-c', 'DefaultCluster', '-t', 'TD']))
        .code,
    ).toBe(0);
    await Promise.all(namesrvs.map((n) => n.child.kill('SIGKILL')));

    const api = new BrokerApi(brokers[0]!.addr);
    cleanups.push(() => api.close());
    await api.sendOk('TD', [{ body: Buffer.from('sent while no name server runs') }]);
    const popped = await api.pop('GD', 'TD', { waitMs: 3_000 });
    expect(popped.map((m) => Buffer.from(m.message!.body!).toString())).toEqual([
      'sent while no name server runs',
    ]);
    const acked = await api.ack(
      'GD',
      'TD',
      popped.map((m) => m.receipt_handle),
    );
    expect(acked.map((a) => a.code)).toEqual([Code.OK]);

    await namesrvs[1]!.start();
    expect(namesrvs[1]!.addr).toBe(addrs[1]);
    const restartedAt = Date.now();
    await waitFor(
      'both brokers back on namesrv-2',
      async () => (await raws[1]!.route('TD')).queue_datas.length === 2,
      10_000,
      20,
    );
    expect(Date.now() - restartedAt).toBeLessThan(reregisterBoundMs(intervalMs));
  });

  it('topic config, subscription group and consumer offsets survive a broker restart', async () => {
    const { addrs, brokers } = await setup();
    const ns = addrs[0]!;
    const topic = await mqadmin(['updateTopic', '-n', ns, '-b', 'broker-a', '-t', 'TM', '-r', '3']);
    expect(topic.stderr).toBe('');
    const group = await mqadmin([
      'updateSubGroup',
      '-n',
      ns,
      '-b',
      'broker-a',
      '-g',
      'GM',
      '-r',
      '5',
    ]);
    expect(group.stderr).toBe('');
    const api = new BrokerApi(brokers[0]!.addr);
    await api.sendOk('TM', [{ body: Buffer.from('1') }, { body: Buffer.from('2') }], 1);
    expect(
      (await api.updateOffsets('GM', [{ topic: 'TM', queue_id: 1, offset: 2 }])).map((r) => r.code),
    ).toEqual([Code.OK]);
    api.close();

    await brokers[0]!.child.stop();
    await brokers[0]!.start();
    const raw = new NamesrvRaw(ns);
    cleanups.push(() => raw.close());
    await waitFor(
      'broker-a registered again',
      async () => brokers[0]!.addr in (await raw.clusterInfo()).live,
    );

    const route = await mqadmin(['topicRoute', '-n', ns, '-t', 'TM', '--json']);
    expect(route.code).toBe(0);
    expect(JSON.parse(route.stdout).queueDatas).toEqual([
      expect.objectContaining({ brokerName: 'broker-a', readQueueNums: 3, writeQueueNums: 8 }),
    ]);
    const progress = await mqadmin([
      'consumerProgress',
      '-n',
      ns,
      '-g',
      'GM',
      '-t',
      'TM',
      '--json',
    ]);
    expect(progress.code).toBe(0);
    expect(JSON.parse(progress.stdout).queues).toContainEqual(
      expect.objectContaining({
        brokerName: 'broker-a',
        queueId: 1,
        consumerOffset: 2,
        brokerOffset: 2,
      }),
    );
    const clients = new BrokerClients(5_000);
    cleanups.push(() => clients.close());
    const groups = await clients.subscriptionGroups(brokers[0]!.addr);
    expect(groups.find((g) => g.group_name === 'GM')?.retry_max_times).toBe(5);
  });

  it('autoCreateTopicEnable, autoCreateSubscriptionGroup and defaultTopicQueueNums', async () => {
    const dir = tempDir('auto');
    cleanups.push(() => dir.remove());
    const ns = new NamesrvProcess(join(dir.path, 'ns'));
    cleanups.push(() => ns.child.stop());
    await ns.start();
    const [strict, auto] = await Promise.all(
      [
        ['broker-a', 'autoCreateTopicEnable=false', 'autoCreateSubscriptionGroup=false'],
        ['broker-b', 'defaultTopicQueueNums=3'],
      ].map(async ([name, ...args]) => {
        const b = new BrokerProcess(
          name!,
          join(NOSLAVE, `${name}.properties`),
          [ns.addr],
          join(dir.path, name!),
          args,
        );
        cleanups.push(() => b.child.stop());
        await b.start();
        return b;
      }),
    );

    // autoCreateTopicEnable=false: an unknown topic is refused, and not created.
    expect(await sendCode(strict!.addr, 'TNew')).toBe(Code.TOPIC_NOT_FOUND);
    expect((await mqadmin(['topicRoute', '-n', ns.addr, '-t', 'TNew'])).code).not.toBe(0);

    // autoCreateSubscriptionGroup=false: popping with an unknown group is refused.
    expect(
      (await mqadmin(['updateTopic', '-n', ns.addr, '-b', 'broker-a', '-t', 'TKnown'])).code,
    ).toBe(0);
    const api = new BrokerApi(strict!.addr);
    cleanups.push(() => api.close());
    await api.sendOk('TKnown', [{ body: Buffer.from('x') }]);
    const refused = await api.pop('GNew', 'TKnown').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isSluiceError(refused, Code.CONSUMER_GROUP_NOT_FOUND)).toBe(true);
    expect(
      (await mqadmin(['updateSubGroup', '-n', ns.addr, '-b', 'broker-a', '-g', 'GNew'])).code,
    ).toBe(0);
    expect(await api.pop('GNew', 'TKnown', { waitMs: 2_000 })).toHaveLength(1);

    // autoCreateTopicEnable=true (the template's) with defaultTopicQueueNums=3.
    expect(await sendCode(auto!.addr, 'TAuto')).toBe(Code.OK);
    const route = await waitFor('TAuto in the route', async () => {
      const r = await mqadmin(['topicRoute', '-n', ns.addr, '-t', 'TAuto', '--json']);
      return r.code === 0 ? JSON.parse(r.stdout) : undefined;
    });
    expect(route.queueDatas).toEqual([
      expect.objectContaining({ brokerName: 'broker-b', readQueueNums: 3, writeQueueNums: 3 }),
    ]);
  });
});
