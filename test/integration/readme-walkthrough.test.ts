/**
 * The README is the front door: `npm start` (sluice standalone) must come up
 * on the documented ports and the curl walk-through must work exactly as
 * printed.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../common/paths.js';
import { makeTempDir } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';

/** The shell block of the README between `<!-- NAME:start -->` and `<!-- NAME:end -->`. */
function readmeBlock(name: string, lang = 'sh'): string {
  const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`<!-- ${name}:start -->`);
  const end = readme.indexOf(`<!-- ${name}:end -->`);
  const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(readme.slice(start, end));
  if (start < 0 || end < 0 || !m) throw new Error(`README has no ${name} block`);
  return m[1]!;
}

describe('README', () => {
  const tmp = makeTempDir();
  const child = spawn(
    process.execPath,
    [join(PACKAGE_ROOT, 'bin', 'sluice'), 'standalone', '--data', tmp.path],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });

  beforeAll(async () => {
    const started = Date.now();
    await waitFor(
      'GET /healthz on 8080',
      async () => (await fetch('http://127.0.0.1:8080/healthz')).status === 200,
      10_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${output}`);
    });
    // The acceptance bar: answering within 10 s of `npm start`.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  afterAll(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
    tmp.remove();
  });

  it('prints its ports and a curl line that works', () => {
    expect(output).toContain('name server  127.0.0.1:9876');
    expect(output).toContain('http://127.0.0.1:8080');
    const curl = output
      .split('\n')
      .find((l) => l.trim().startsWith('curl') && l.includes('/messages'));
    expect(curl).toBeDefined();
    const sent = JSON.parse(
      execFileSync('bash', ['-c', curl!], { encoding: 'utf8', timeout: 10_000 }),
    );
    expect(sent.results[0]).toMatchObject({ status: 'OK', code: 20000 });
  });

  it('runs the curl walk-through exactly as printed', () => {
    const script = readmeBlock('walkthrough');
    const out = execFileSync('bash', ['-euo', 'pipefail', '-c', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(3);
    const sent = JSON.parse(lines[0]!);
    expect(sent.results[0]).toMatchObject({ status: 'OK', code: 20000, broker: 'broker-a' });
    const received = JSON.parse(lines[1]!);
    expect(received.messages).toHaveLength(1);
    expect(received.messages[0]).toMatchObject({
      messageId: sent.results[0].messageId,
      body: 'hello, sluice',
      tag: 'greeting',
      keys: ['order-1'],
      deliveryAttempt: 1,
    });
    const acked = JSON.parse(lines[2]!);
    expect(acked.results[0]).toMatchObject({ status: 'OK', code: 20000 });
  });

  it("runs the SDK example against the gateway's gRPC port", () => {
    // The file must live inside the package so that it resolves rocketmq-client-nodejs.
    const dir = join(PACKAGE_ROOT, 'node_modules', '.cache', 'sluice-readme');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `sdk-${process.pid}.mjs`);
    writeFileSync(file, readmeBlock('sdk', 'js'));
    try {
      const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
      expect(out).toMatch(/^sent [0-9A-F]+$/m);
      expect(out).toContain('received hello from the SDK');
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('stops cleanly on Ctrl-C', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).toContain('Stopping Sluice');
  });
});

describe('README, starting the parts by hand', () => {
  // The by-hand block runs on the default ports, after the standalone above stopped.
  const home = makeTempDir();
  const env = { ...process.env, HOME: home.path };
  const children: ChildProcess[] = [];

  afterAll(async () => {
    for (const c of children.reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((r) => c.once('exit', r));
      // npx runs the binary as its own child: signal the whole process group.
      process.kill(-c.pid!, 'SIGTERM');
      await exited;
    }
    home.remove();
  });

  it('runs each command of the block as printed (nohup and & aside)', async () => {
    const lines = readmeBlock('byhand')
      .split('\n')
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter(Boolean);
    expect(lines).toHaveLength(4);
    for (const line of lines.slice(0, 3)) {
      const m = /^nohup (npx .*) &$/.exec(line);
      expect(m, line).not.toBeNull();
      const child = spawn('bash', ['-c', `exec ${m![1]}`], {
        detached: true,
        cwd: PACKAGE_ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no boot line from: ${line}\n${out}`)),
          30_000,
        );
        const onData = (d: Buffer) => {
          out += d;
          if (/boot success/.test(out)) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${line}\n${out}`)));
      });
    }
    const listed = await waitFor('broker-a in clusterList', () => {
      const out = execFileSync('bash', ['-c', lines[3]!], {
        cwd: PACKAGE_ROOT,
        env,
        encoding: 'utf8',
      });
      return /broker-a/.test(out) ? out : undefined;
    });
    expect(listed).toMatch(/DefaultCluster\s+broker-a\s+0\s+127\.0\.0\.1:10911/);
  });
});
