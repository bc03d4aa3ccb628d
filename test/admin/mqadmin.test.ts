/**
 * mqadmin as users run it: the binary, its exit codes and its one-line errors,
 * help, name server selection (-n, NAMESRV_ADDR, failover) and the tables.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FakeBroker,
  freePort,
  mqadmin,
  NamesrvProcess,
  ROOT,
  tempDir,
  waitFor,
} from '../namesrv/harness.js';

let ns: NamesrvProcess;
let dir: ReturnType<typeof tempDir>;
const brokers: FakeBroker[] = [];
let deadAddr: string;

beforeAll(async () => {
  dir = tempDir('admin');
  ns = new NamesrvProcess(dir.path);
  await ns.start();
  for (const [name, id] of [
    ['broker-a', 0],
    ['broker-b', 0],
    ['broker-a', 1],
  ] as const) {
    brokers.push(
      await new FakeBroker({ brokerName: name, brokerId: id, namesrvAddrs: [ns.addr] }).start(),
    );
  }
  deadAddr = `127.0.0.1:${await freePort()}`;
});

afterAll(async () => {
  for (const b of brokers) await b.close(false);
  await ns.child.stop();
  dir.remove();
});

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('mqadmin errors', () => {
  it('a bad flag: one line, exit 1', async () => {
    const res = await mqadmin(['clusterList', '-n', ns.addr, '--bogus']);
    expect(res.code).toBe(1);
    expect(oneLine(res.stderr)).toBe("mqadmin clusterList: unknown option '--bogus'");
    expect(res.stdout).toBe('');
  });

  it('a bad flag value: one line, exit 1', async () => {
    const res = await mqadmin([
      'updateTopic',
      '-n',
      ns.addr,
      '-c',
      'DefaultCluster',
      '-t',
      'T',
      '-r',
      'many',
    ]);
    expect(res.code).toBe(1);
    expect(oneLine(res.stderr)).toMatch(
      /^mqadmin updateTopic: option '-r, --readQueueNums <n>' argument 'many' is invalid/,
    );
  });

  it('a missing required flag, an unknown command, an illegal topic: one line each', async () => {
    const missing = await mqadmin(['topicRoute', '-n', ns.addr]);
    expect(missing.code).toBe(1);
    expect(oneLine(missing.stderr)).toBe(
      "mqadmin topicRoute: required option '-t, --topic <topic>' not specified",
    );
    const unknown = await mqadmin(['clusterLsit']);
    expect(unknown.code).toBe(1);
    expect(oneLine(unknown.stderr)).toMatch(/^mqadmin: unknown command 'clusterLsit'/);
    const illegal = await mqadmin(['topicRoute', '-n', ns.addr, '-t', 'a b']);
    expect(illegal.code).toBe(1);
    expect(oneLine(illegal.stderr)).toMatch(/^mqadmin topicRoute: illegal topic name 'a b'/);
  });

  it('an unreachable name server: one line, exit 1, no stack trace', async () => {
    const res = await mqadmin(['clusterList', '-n', deadAddr]);
    expect(res.code).toBe(1);
    expect(oneLine(res.stderr)).toBe(
      `mqadmin clusterList: cannot reach any name server (${deadAddr}): connect ECONNREFUSED ${deadAddr}`,
    );
    const viaEnv = await mqadmin(['topicList'], { NAMESRV_ADDR: deadAddr });
    expect(viaEnv.code).toBe(1);
    expect(oneLine(viaEnv.stderr)).toContain(`cannot reach any name server (${deadAddr})`);
  });

  it('help for an unknown command: one line, exit 1', async () => {
    const res = await mqadmin(['help', 'nosuch']);
    expect(res.code).toBe(1);
    expect(oneLine(res.stderr)).toBe("mqadmin: unknown command 'nosuch'");
    expect(res.stdout).toBe('');
  });

  it('-n without a port: one line up front, exit 1', async () => {
    const started = Date.now();
    const res = await mqadmin(['clusterList', '-n', 'garbage']);
    expect(res.code).toBe(1);
    expect(oneLine(res.stderr)).toBe(
      "mqadmin clusterList: name server address 'garbage' is not host:port",
    );
    // Refused before any connection attempt (which would wait for --timeout).
    expect(Date.now() - started).toBeLessThan(4_000);
    const second = await mqadmin(['topicList', '-n', `${ns.addr};localhost`]);
    expect(oneLine(second.stderr)).toBe(
      "mqadmin topicList: name server address 'localhost' is not host:port",
    );
  });

  it('an unknown topic: one line, exit 1', async () => {
    const res = await mqadmin(['topicRoute', '-n', ns.addr, '-t', 'NoSuchTopic']);
    expect(res.code).toBe(1);
    expect(oneLine(res.stderr)).toBe("mqadmin topicRoute: topic 'NoSuchTopic' does not exist");
  });
});

describe('mqadmin help', () => {
  it('help CMD and CMD --help print the flags', async () => {
    for (const args of [
      ['help', 'updateTopic'],
      ['updateTopic', '--help'],
    ]) {
      const res = await mqadmin(args);
      expect(res.code).toBe(0);
      expect(res.stdout).toContain('Usage: mqadmin updateTopic [options]');
      for (const flag of [
        '-t, --topic',
        '-c, --clusterName',
        '-b, --brokerAddr',
        '-r, --readQueueNums',
        '-w, --writeQueueNums',
        '-p, --perm',
        '-o, --order',
        '-n, --namesrvAddr',
        '--json',
      ]) {
        expect(res.stdout).toContain(flag);
      }
    }
  });

  it('lists every RocketMQ command', async () => {
    const res = await mqadmin(['help']);
    expect(res.code).toBe(0);
    for (const cmd of [
      'clusterList',
      'topicList',
      'updateTopic',
      'deleteTopic',
      'topicRoute',
      'topicStatus',
      'updateSubGroup',
      'deleteSubGroup',
      'consumerProgress',
      'queryMsgById',
      'queryMsgByKey',
      'resetOffsetByTime',
      'wipeWritePerm',
      'addWritePerm',
      'brokerStatus',
      'getBrokerConfig',
      'updateKvConfig',
    ]) {
      expect(res.stdout).toContain(`  ${cmd} `);
    }
  });
});

describe("RocketMQ's flags", () => {
  it('clusterList -m is accepted with a one-line warning; -i prints again every N seconds', async () => {
    const more = await mqadmin(['clusterList', '-n', ns.addr, '-m']);
    expect(more.code).toBe(0);
    expect(oneLine(more.stderr)).toMatch(/^mqadmin clusterList: ignored: -m, --moreStats \(.+\)$/);
    expect(more.stdout).toMatch(/^#Cluster Name/);

    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin', 'mqadmin'), 'clusterList', '-n', ns.addr, '-i', '1'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await waitFor('two tables', () => (out.match(/^#Cluster Name/gm) ?? []).length >= 2, 10_000);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    expect(out.match(/DefaultCluster\s+broker-b\s+0/g)?.length).toBeGreaterThanOrEqual(2);
  });

  it('updateTopic -u -s are accepted with a warning each; topicRoute -l prints the table', async () => {
    const res = await mqadmin([
      'updateTopic',
      '-n',
      ns.addr,
      '-c',
      'DefaultCluster',
      '-t',
      'TUnit',
      '-u',
      'false',
      '-s',
      'false',
    ]);
    expect(res.code).toBe(0);
    expect(res.stderr.trimEnd().split('\n')).toEqual([
      'mqadmin updateTopic: ignored: -u, --unit (Sluice has no unit topics)',
      'mqadmin updateTopic: ignored: -s, --hasUnitSub (Sluice has no unit subscriptions)',
    ]);
    expect(res.stdout).toContain('create topic to broker-a success.');
    const route = await mqadmin(['topicRoute', '-n', ns.addr, '-t', 'TUnit', '-l']);
    expect(route.stderr).toBe('');
    expect(route.code).toBe(0);
    expect(route.stdout).toMatch(/^#ClusterName\s+#BrokerName/);
    expect(route.stdout).toMatch(/broker-b\s+\{0:127\.0\.0\.1:\d+\}\s+8\s+8\s+RW-/);
    const bad = await mqadmin([
      'updateTopic',
      '-n',
      ns.addr,
      '-b',
      'broker-a',
      '-t',
      'T',
      '-u',
      'x',
    ]);
    expect(bad.code).toBe(1);
    expect(oneLine(bad.stderr)).toMatch(/^mqadmin updateTopic: option '-u, --unit \[bool\]'/);
  });
});

describe('mqadmin against a name server', () => {
  it('clusterList prints a RocketMQ-style table of every broker', async () => {
    const res = await mqadmin(['clusterList', '-n', ns.addr]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^#Cluster Name\s+#Broker Name\s+#BID\s+#Addr\s+#Role\s+#Version\s+#InTPS\s+#OutTPS\s+#Perm\s+#SPACE\s+#HALag\s+#Heartbeat$/,
    );
    const [a, b, as] = brokers;
    expect(lines[1]).toMatch(
      new RegExp(
        `^DefaultCluster\\s+broker-a\\s+0\\s+${a!.addr}\\s+ASYNC_MASTER\\s+.*RW-\\s+0\\.1000\\s+-\\s+\\d+s ago$`,
      ),
    );
    expect(lines[2]).toMatch(
      new RegExp(`^DefaultCluster\\s+broker-a\\s+1\\s+${as!.addr}\\s+SLAVE\\s`),
    );
    expect(lines[3]).toMatch(
      new RegExp(`^DefaultCluster\\s+broker-b\\s+0\\s+${b!.addr}\\s+ASYNC_MASTER\\s`),
    );
    expect(lines).toHaveLength(4);
  });

  it('--json is machine-readable; NAMESRV_ADDR and failover past a dead name server work', async () => {
    const res = await mqadmin(['clusterList', '--json'], {
      NAMESRV_ADDR: `${deadAddr};${ns.addr}`,
    });
    expect(res.code).toBe(0);
    const parsed = JSON.parse(res.stdout) as {
      brokers: {
        brokerName: string;
        brokerId: number;
        role: string;
        status: Record<string, string> | null;
      }[];
    };
    expect(parsed.brokers.map((b) => [b.brokerName, b.brokerId, b.role])).toEqual([
      ['broker-a', 0, 'ASYNC_MASTER'],
      ['broker-a', 1, 'SLAVE'],
      ['broker-b', 0, 'ASYNC_MASTER'],
    ]);
    expect(parsed.brokers[0]!.status?.perm).toBe('6');
  });

  it('brokerStatus and getBrokerConfig ask brokers found through the name server', async () => {
    const status = await mqadmin(['brokerStatus', '-n', ns.addr, '-b', brokers[0]!.addr]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^brokerName\s+: broker-a$/m);
    const config = await mqadmin([
      'getBrokerConfig',
      '-n',
      ns.addr,
      '-c',
      'DefaultCluster',
      '--json',
    ]);
    expect(config.code).toBe(0);
    expect(Object.keys(JSON.parse(config.stdout)).sort()).toEqual(
      brokers.map((b) => b.addr).sort(),
    );
    const byName = await mqadmin(['getBrokerConfig', '-n', ns.addr, '-b', 'broker-b']);
    expect(byName.stdout).toContain(`============${brokers[1]!.addr}============`);
    expect(byName.stdout).toMatch(/^brokerName\s+= broker-b$/m);
  });
});
