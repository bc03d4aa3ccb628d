/**
 * The README is the front door: `npm start` (sluice standalone) must come up
 * on the documented ports within 5 s and stop cleanly on Ctrl-C, the curl
 * walk-through and the raw-mode example must work exactly as printed, and the
 * by-hand block (issue 4's acceptance script plus a gateway round trip) must
 * run as printed. The Layout and Development sections must match the tree.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../common/paths.js';
import { makeTempDir } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';

function readmeText(): string {
  return readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
}

/** A README section's first fenced block (`## title` up to the next `## `). */
function sectionBlock(title: string): string {
  const readme = readmeText();
  const start = readme.indexOf(`## ${title}\n`);
  const end = readme.indexOf('\n## ', start + 1);
  const m = /```\w*\n([\s\S]*?)```/.exec(readme.slice(start, end < 0 ? undefined : end));
  if (start < 0 || !m) throw new Error(`README has no "${title}" section with a code block`);
  return m[1]!;
}

/** Shell lines of a block with `\` continuations joined and trailing comments dropped. */
function shellLines(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
}

/** The shell block of the README between `<!-- NAME:start -->` and `<!-- NAME:end -->`. */
function readmeBlock(name: string, lang = 'sh'): string {
  const readme = readmeText();
  const start = readme.indexOf(`<!-- ${name}:start -->`);
  const end = readme.indexOf(`<!-- ${name}:end -->`);
  const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(readme.slice(start, end));
  if (start < 0 || end < 0 || !m) throw new Error(`README has no ${name} block`);
  return m[1]!;
}

describe('README', () => {
  const tmp = makeTempDir();
  // `npm start` is `node bin/sluice standalone`; timed from the spawn. A
  // REDIS_URL in the shell must not take the standalone gateway off its
  // in-memory route cache.
  const spawnedAt = Date.now();
  const child = spawn(
    process.execPath,
    [join(PACKAGE_ROOT, 'bin', 'sluice'), 'standalone', '--data', tmp.path],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:1' },
    },
  );
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });

  let readyMs = Number.POSITIVE_INFINITY;
  beforeAll(async () => {
    await waitFor(
      'GET /readyz on 8080',
      async () => (await fetch('http://127.0.0.1:8080/readyz')).status === 200,
      10_000,
      20,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${output}`);
    });
    readyMs = Date.now() - spawnedAt;
  });

  afterAll(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
    tmp.remove();
  });

  it('is ready (name server, broker and gateway answering) within 5 s of npm start', async () => {
    expect(readyMs).toBeLessThan(5_000);
    expect((await fetch('http://127.0.0.1:8080/healthz')).status).toBe(200);
    // In-memory route cache although REDIS_URL was set in the environment.
    const log = readFileSync(join(tmp.path, 'logs', 'gateway.log'), 'utf8');
    expect(log).toContain('"routeCache":"memory"');
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

  it('runs the raw-mode curl example exactly as printed', () => {
    const out = execFileSync('bash', ['-euo', 'pipefail', '-c', readmeBlock('rawmode')], {
      cwd: PACKAGE_ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    const sent = JSON.parse(out);
    expect(sent.results).toHaveLength(1);
    expect(sent.results[0]).toMatchObject({ status: 'OK', code: 20000 });
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

  it('stops cleanly on Ctrl-C: exit 0, no child needed SIGKILL or exited non-zero', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).toContain('Stopping Sluice');
    expect(output).not.toMatch(/SIGKILL|exited with/);
    expect(output).toContain('Stopped cleanly.');
  });
});

describe('README, reference sections', () => {
  it('the -p override example prints the overrides', () => {
    const m = /`(mqbroker -n localhost:9876 listenPort=10921 storePathRootDir=[^`]+)`/.exec(
      readmeText(),
    );
    expect(m).not.toBeNull();
    const [bin, ...args] = m![1]!.split(/\s+/);
    const out = execFileSync(process.execPath, [join(PACKAGE_ROOT, 'bin', bin!), ...args, '-p'], {
      encoding: 'utf8',
      env: { ...process.env, NAMESRV_ADDR: '' },
    });
    expect(out).toMatch(/^namesrvAddr=localhost:9876$/m);
    expect(out).toMatch(/^listenPort=10921$/m);
    expect(out).toMatch(/^storePathRootDir=\.\/data\/broker-b$/m);
  });

  it('the Layout names every folder of the components and of test/', () => {
    const layout = sectionBlock('Layout');
    for (const top of [
      'proto',
      'common',
      'namesrv',
      'broker',
      'gateway',
      'cli',
      'deploy',
      'test',
      'bench',
    ]) {
      expect(layout, top).toMatch(new RegExp(`^${top}/`, 'm'));
    }
    for (const top of ['common', 'broker', 'gateway', 'cli', 'deploy']) {
      for (const d of readdirSync(join(PACKAGE_ROOT, top), { withFileTypes: true })) {
        if (d.isDirectory()) expect(layout, `${top}/${d.name}/`).toContain(`${d.name}/`);
      }
    }
  });

  it('every command of the Development block exists', () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const benches = readFileSync(join(PACKAGE_ROOT, 'bench', 'run.ts'), 'utf8');
    const lines = shellLines(sectionBlock('Development'));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const m = /^npm (?:run )?(\S+)(?: (\S+))?$/.exec(line);
      expect(m, line).not.toBeNull();
      const [, script, arg] = m!;
      if (script !== 'test') expect(pkg.scripts, line).toHaveProperty(script!);
      if (script === 'bench' && arg && arg !== 'all') {
        expect(benches, line).toMatch(new RegExp(`^\\s+${arg}: '`, 'm'));
      }
    }
  });
});

function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('README, starting the parts by hand', () => {
  // Runs on the default ports, after the standalone above stopped. HOME is a
  // temp dir, so the templates' ~/store/... go there.
  const home = makeTempDir();
  const env = { ...process.env, HOME: home.path, NAMESRV_ADDR: '' };
  // nohup appends each process's output to ./nohup.out; here that file lives
  // in a temp dir (not the repo root), and the lines that read it run there.
  const nohupDir = makeTempDir();
  const nohupOut = join(nohupDir.path, 'nohup.out');
  const children: ChildProcess[] = [];

  afterAll(async () => {
    for (const c of children.reverse()) {
      if (!processGroupAlive(c.pid!)) continue;
      // npx runs the binary as its own child: signal the whole process group,
      // and wait until every member is gone (npx may exit before the server
      // it started has finished writing its store on the way down).
      process.kill(-c.pid!, 'SIGTERM');
      await waitFor(`process group ${c.pid} to exit`, () => !processGroupAlive(c.pid!), 30_000);
    }
    home.remove();
    nohupDir.remove();
  });

  it("runs issue 4's acceptance script and a gateway round trip, each line as printed", () => {
    const lines = shellLines(readmeBlock('byhand'));
    const outputs: string[] = [];
    for (const line of lines) {
      const background = /^nohup (npx .*) &$/.exec(line);
      if (background) {
        const fd = openSync(nohupOut, 'a');
        const child = spawn('bash', ['-c', `exec ${background[1]}`], {
          detached: true,
          cwd: PACKAGE_ROOT,
          env,
          stdio: ['ignore', fd, fd],
        });
        closeSync(fd);
        children.push(child);
        continue;
      }
      try {
        outputs.push(
          execFileSync('bash', ['-euo', 'pipefail', '-c', line], {
            cwd: line.includes('nohup.out') ? nohupDir.path : PACKAGE_ROOT,
            env,
            encoding: 'utf8',
            timeout: 60_000,
          }),
        );
      } catch (err) {
        throw new Error(`${line}\n${(err as Error).message}\n${readFileSync(nohupOut, 'utf8')}`);
      }
    }
    expect(lines).toHaveLength(13);
    // Output of each foreground line: wait (name server), wait (brokers),
    // clusterList, updateTopic, topicRoute, wait (gateway), send, receive, ack.
    expect(outputs).toHaveLength(9);
    const [, , list, update, route, , sent, received, acked] = outputs;
    // The acceptance script: both brokers listed, a topic with queues on both.
    expect(list).toMatch(/DefaultCluster\s+broker-a\s+0\s+127\.0\.0\.1:10911/);
    expect(list).toMatch(/DefaultCluster\s+broker-b\s+0\s+127\.0\.0\.1:10921/);
    expect(update).toContain('create topic to broker-a success.');
    expect(update).toContain('create topic to broker-b success.');
    expect(route).toMatch(/broker-a\s+\{0:127\.0\.0\.1:10911\}\s+8\s+8\s+RW-/);
    expect(route).toMatch(/broker-b\s+\{0:127\.0\.0\.1:10921\}\s+8\s+8\s+RW-/);
    // Issue 2's acceptance: a message sent through the gateway is received and acked.
    const sentJson = JSON.parse(sent!);
    expect(sentJson.results[0]).toMatchObject({ status: 'OK', code: 20000 });
    const receivedJson = JSON.parse(received!);
    expect(receivedJson.messages).toHaveLength(1);
    expect(receivedJson.messages[0]).toMatchObject({
      messageId: sentJson.results[0].messageId,
      body: 'sent by hand',
    });
    expect(JSON.parse(acked!).results[0]).toMatchObject({ status: 'OK', code: 20000 });
    expect(readFileSync(nohupOut, 'utf8')).toMatch(/The Name Server boot success/);
  });
});
