/**
 * `sluice cluster`: a whole template on this machine with free ports and a
 * temp data dir, ready when every boot line is seen, stopped in order.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster } from '../../cli/cluster.js';
import { DEFAULT_READY_TIMEOUT_MS } from '../../cli/supervisor.js';
import { addrsOf, mqadmin, NamesrvRaw, ROOT, tempDir, waitFor } from '../namesrv/harness.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

const base = {
  namesrv: 1,
  gateway: false,
  freePorts: true,
  brokerArgs: [],
  gatewayArgs: [],
  readyTimeoutMs: DEFAULT_READY_TIMEOUT_MS * 2,
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('sluice cluster', () => {
  it('starts 2m-2s-async (masters, then slaves), prints what runs where, stops brokers before name servers', async () => {
    const data = tempDir('cluster');
    cleanups.push(() => data.remove());
    const cluster = await startCluster({
      ...base,
      conf: join(ROOT, 'deploy/conf/2m-2s-async'),
      data: data.path,
    });
    cleanups.push(() => cluster.stop());

    expect(cluster.members.map((m) => [m.role, m.name])).toEqual([
      ['NAMESRV', 'namesrv'],
      ['ASYNC_MASTER', 'broker-a'],
      ['ASYNC_MASTER', 'broker-b'],
      ['SLAVE', 'broker-a-s'],
      ['SLAVE', 'broker-b-s'],
    ]);
    for (const m of cluster.members.filter((x) => x.role !== 'NAMESRV')) {
      expect(m.store).toMatch(new RegExp(`^${data.path}/broker-[ab]-[01]$`));
      expect(m.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(existsSync(m.log)).toBe(true);
    }

    const ns = new NamesrvRaw(cluster.namesrvAddrs[0]!);
    cleanups.push(() => ns.close());
    const info = await waitFor('4 brokers registered', async () => {
      const i = await ns.clusterInfo();
      return Object.keys(i.live).length === 4 ? i : undefined;
    });
    const byName = (n: string) => cluster.members.find((m) => m.name === n)!.address;
    expect(addrsOf(info.broker_addr_table['broker-a']!.broker_addrs)).toEqual({
      0: byName('broker-a'),
      1: byName('broker-a-s'),
    });
    expect(addrsOf(info.broker_addr_table['broker-b']!.broker_addrs)).toEqual({
      0: byName('broker-b'),
      1: byName('broker-b-s'),
    });
    const list = await mqadmin(['clusterList', '-n', cluster.namesrvAddrs[0]!]);
    expect(list.stdout.trim().split('\n')).toHaveLength(5);

    const exits: string[] = [];
    for (const m of cluster.members) void m.child.waitExit().then(() => exits.push(m.role));
    const pids = cluster.members.map((m) => m.child.pid!);
    await cluster.stop();
    await waitFor('every process gone', () => pids.every((p) => !alive(p)));
    expect(exits.indexOf('NAMESRV')).toBe(exits.length - 1);
    expect(exits.lastIndexOf('SLAVE')).toBeLessThan(exits.indexOf('ASYNC_MASTER'));
  });

  it('runs as a command: --json line when ready, SIGTERM stops everything and exits 0', async () => {
    const data = tempDir('cluster-cmd');
    cleanups.push(() => data.remove());
    // What the umbrella `sluice cluster` runs: clusterCommand() parsing its flags.
    const script = join(data.path, 'run-cluster.mjs');
    writeFileSync(
      script,
      `const m = await import(${JSON.stringify(`file://${join(ROOT, 'dist/cli/cluster.js')}`)});
await m.clusterCommand().parseAsync(process.argv.slice(2), { from: 'user' });
`,
    );
    const args = [
      '--conf',
      'deploy/conf/2m-noslave',
      '--data',
      join(data.path, 'data'),
      '--free-ports',
    ];
    const child: ChildProcess = spawn(
      process.execPath,
      [script, ...args, '--no-gateway', '--json'],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    const described = JSON.parse(line) as {
      namesrvAddr: string;
      members: { role: string; pid: number }[];
    };
    expect(described.members.map((m) => m.role)).toEqual([
      'NAMESRV',
      'ASYNC_MASTER',
      'ASYNC_MASTER',
    ]);
    const topic = await mqadmin([
      'updateTopic',
      '-n',
      described.namesrvAddr,
      '-c',
      'DefaultCluster',
      '-t',
      'TC',
    ]);
    expect(topic.code).toBe(0);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const m of described.members) expect(alive(m.pid)).toBe(false);
  });

  it('starts a gateway too', async () => {
    const data = tempDir('cluster-gw');
    cleanups.push(() => data.remove());
    const cluster = await startCluster({
      ...base,
      gateway: true,
      conf: join(ROOT, 'deploy/conf/single'),
      data: data.path,
    });
    cleanups.push(() => cluster.stop());
    const gw = cluster.members.find((m) => m.role === 'GATEWAY');
    expect(gw?.address).toMatch(/^http=127\.0\.0\.1:\d+ grpc=127\.0\.0\.1:\d+$/);
  });
});

describe('sluice cluster failures', () => {
  it('fails cleanly on a missing template', async () => {
    await expect(startCluster({ ...base, conf: join(ROOT, 'deploy/conf/nope') })).rejects.toThrow(
      /does not exist/,
    );
  });

  it('a broker that cannot start fails the whole start and stops what already runs', async () => {
    const conf = tempDir('bad-conf');
    cleanups.push(() => conf.remove());
    writeFileSync(join(conf.path, 'broker-a.properties'), 'brokerName=broker-a\nlistenPort=http\n');
    const started = startCluster({ ...base, conf: conf.path, data: join(conf.path, 'data') });
    await expect(started).rejects.toThrow(/broker-a exited \(1\) before ready/);
    // The name server came up first (its log says so) and is gone again.
    const log = readFileSync(join(conf.path, 'data', 'logs', 'namesrv.log'), 'utf8');
    const namesrvPid = Number(/"pid":(\d+)/.exec(log)?.[1]);
    expect(namesrvPid).toBeGreaterThan(0);
    await waitFor('name server stopped', () => !alive(namesrvPid));
  });
});
