/**
 * The README is the front door: `npm start` (sluice standalone) must come up
 * on the documented ports and the curl walk-through must work exactly as
 * printed.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../common/paths.js';
import { makeTempDir } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';

function walkthrough(): string {
  const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
  const m = /<!-- walkthrough:start -->\s*```sh\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(
    readme,
  );
  if (!m) throw new Error('README has no walkthrough block');
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

  it('prints its ports and a curl line to try', () => {
    expect(output).toContain('name server  127.0.0.1:9876');
    expect(output).toContain('http://127.0.0.1:8080');
    expect(output).toMatch(
      /curl -s -X POST http:\/\/127\.0\.0\.1:8080\/v1\/topics\/demo\/messages/,
    );
  });

  it('runs the curl walk-through exactly as printed', () => {
    const script = walkthrough();
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

  it('stops cleanly on Ctrl-C', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).toContain('Stopping Sluice');
  });
});
