/** The binaries' command line: help, config errors, printing config, boundaries. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManagedChild } from '../../cli/supervisor.js';
import { PACKAGE_ROOT } from '../../common/paths.js';
import { makeTempDir } from '../harness/tmp.js';

function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'bin', bin), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('binaries', () => {
  it.each(['mqnamesrv', 'mqbroker', 'mqgateway', 'mqadmin', 'sluice'])(
    '%s --help explains itself',
    (bin) => {
      const r = run(bin, ['--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Usage:/);
    },
  );

  it('mqbroker stops on a bad config value with file, line and allowed values', () => {
    const file = join(PACKAGE_ROOT, 'test', 'fixtures', 'bad-flush.properties');
    const r = run('mqbroker', ['-c', file]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `mqbroker: ${file}:5: flushDiskType=SOMETIMES is not valid; expected one of ASYNC_FLUSH, SYNC_FLUSH`,
    );
  });

  it('mqbroker -p prints the effective config with overrides and NAMESRV_ADDR applied', () => {
    const r = run('mqbroker', ['-p', 'listenPort=10999', 'maxOpenFiles=512'], {
      NAMESRV_ADDR: '10.0.0.1:9876;10.0.0.2:9876',
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('listenPort=10999');
    expect(r.stdout).toContain('maxOpenFiles=512');
    expect(r.stdout).toContain('namesrvAddr=10.0.0.1:9876;10.0.0.2:9876');
    expect(r.stdout).toContain('flushDiskType=ASYNC_FLUSH');
  });

  it('-p prints warnings for JVM-only keys on stderr, naming the component, and a clean config on stdout', () => {
    const broker = run('mqbroker', ['-p', 'sendMessageThreadPoolNums=4']);
    expect(broker.code).toBe(0);
    expect(broker.stderr.trim()).toBe(
      'mqbroker: warning: command line:1: sendMessageThreadPoolNums only applies to the JVM broker; ignored',
    );
    expect(broker.stdout).not.toContain('sendMessageThreadPoolNums');
    expect(broker.stdout).toMatch(/^brokerClusterName=/m);
    const namesrv = run('mqnamesrv', ['-p', 'serverWorkerThreads=8']);
    expect(namesrv.code).toBe(0);
    expect(namesrv.stderr.trim()).toBe(
      'mqnamesrv: warning: command line:1: serverWorkerThreads only applies to the JVM name server; ignored',
    );
  });

  it('a name server address without a port stops start-up with one line', () => {
    const r = run('mqbroker', ['-n', 'garbage', 'listenPort=0']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("mqbroker: name server address 'garbage' is not host:port");
  });

  it('sluice standalone refuses a port that is not a number, in one line', () => {
    const r = run('sluice', ['standalone', '--http-port', 'eighty']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain("expected a port number 0..65535, got 'eighty'");
  });

  it('-n wins over NAMESRV_ADDR', () => {
    const r = run('mqgateway', ['-p', '-n', '127.0.0.1:1'], { NAMESRV_ADDR: '127.0.0.1:2' });
    expect(r.stdout).toContain('namesrvAddr=127.0.0.1:1');
  });
});

describe('process supervisor', () => {
  it('stop() reports a child that had to be SIGKILLed, and a clean one', async () => {
    const dir = makeTempDir();
    const spec = (name: string) =>
      new ManagedChild({
        name,
        bin: 'mqnamesrv',
        args: ['listenPort=0', `kvConfigPath=${join(dir.path, name, 'kv.json')}`],
      });
    const stuck = spec('stuck');
    const clean = spec('clean');
    try {
      await Promise.all([stuck.start(), clean.start()]);
      // A stopped process cannot act on SIGTERM; only SIGKILL ends it.
      process.kill(stuck.pid!, 'SIGSTOP');
      expect(await stuck.stop(300)).toEqual({ code: null, signal: 'SIGKILL', forced: true });
      expect(await clean.stop()).toEqual({ code: 0, signal: null, forced: false });
      // Asked again, an exited child says how it ended.
      expect(await clean.stop()).toEqual({ code: 0, signal: null, forced: false });
    } finally {
      await stuck.kill('SIGKILL');
      await clean.kill('SIGKILL');
      dir.remove();
    }
  });
});

describe('dependency boundaries', () => {
  it('fails when a component imports another one, or on a cycle', () => {
    const dir = join(PACKAGE_ROOT, 'test', 'fixtures', 'boundaries');
    const r = spawnSync(
      join(PACKAGE_ROOT, 'node_modules', '.bin', 'depcruise'),
      ['--config', join(PACKAGE_ROOT, '.dependency-cruiser.cjs'), 'broker', 'namesrv', 'gateway'],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain('broker-imports-other-component');
    expect(r.stdout).toContain('no-circular');
  });
});
