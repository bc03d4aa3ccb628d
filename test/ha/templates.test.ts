/**
 * Every deploy/conf template runs with the real `sluice cluster --conf …
 * --free-ports` command (bin/sluice, a child process) on one machine (temp
 * data) and does what its layout promises: sends through the gateway are
 * answered OK, and in 2m-2s-* every slave follows its master to the same
 * commitlog end. SIGTERM stops the whole cluster and the command exits 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';
import { rest, statsOf } from './ha-helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');

interface Member {
  role: string;
  name: string;
  address: string;
  pid: number | null;
}

let running:
  | { child: ChildProcess; exited: Promise<number | null>; remove: () => void }
  | undefined;
afterEach(async () => {
  if (running && running.child.exitCode === null) {
    running.child.kill('SIGTERM');
    await running.exited;
  }
  running?.remove();
  running = undefined;
});

/** Starts `sluice cluster` and answers the members from its --json line. */
async function sluiceCluster(template: string, dataDir: string): Promise<Member[]> {
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'sluice'),
      'cluster',
      '--conf',
      `deploy/conf/${template}`,
      '--data',
      dataDir,
      '--free-ports',
      '--json',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  running = { child, exited, remove: () => undefined };
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    void exited.then((code) => reject(new Error(`sluice cluster exited ${code}: ${stderr}`)));
  });
  return (JSON.parse(line) as { members: Member[] }).members;
}

const httpOf = (gw: Member) => `http://${/http=(\S+)/.exec(gw.address)![1]}`;

describe('deploy/conf templates under sluice cluster', () => {
  for (const [template, slaves] of [
    ['single', 0],
    ['2m-noslave', 0],
    ['2m-2s-async', 2],
    ['2m-2s-sync', 2],
  ] as const) {
    it(`${template}: sends answered OK${slaves ? ', slaves in step with their masters' : ''}`, async () => {
      const data = makeTempDir('sluice-ha-tpl-');
      const members = await sluiceCluster(template, data.path);
      running!.remove = data.remove;
      const brokers = members.filter((m) => m.role.endsWith('MASTER') || m.role === 'SLAVE');
      const masters = brokers.filter((m) => m.role !== 'SLAVE');
      expect(brokers.length - masters.length).toBe(slaves);
      for (const s of brokers.filter((m) => m.role === 'SLAVE')) {
        await waitFor(
          `${s.name} connected to its master`,
          async () => {
            const st = await statsOf(s.address);
            return st.haConnected === 'true' || undefined;
          },
          40_000,
        );
      }
      const http = httpOf(members.find((m) => m.role === 'GATEWAY')!);
      const body = {
        messages: Array.from({ length: 16 }, (_, i) => ({ body: `${template}-${i}` })),
      };
      const sent = await waitFor(
        'gateway answers the send',
        async () => {
          const r = await rest(
            http,
            'POST',
            `/v1/topics/Tpl${template.replace(/-/g, '')}/messages`,
            body,
          );
          return r.status === 200 ? r : undefined;
        },
        20_000,
        200,
      );
      for (const r of sent.json.results) expect(r.status).toBe('OK');
      for (const s of brokers.filter((m) => m.role === 'SLAVE')) {
        const st = await statsOf(s.address);
        const master = masters.find((m) => m.name === s.name.replace(/-s$/, ''))!;
        expect(st.haMasterAddress).toBe(master.address);
        await waitFor(`${s.name} caught up`, async () => {
          const [m, sl] = [await statsOf(master.address), await statsOf(s.address)];
          return m.maxPhysicalOffset === sl.maxPhysicalOffset || undefined;
        });
      }
      // SIGTERM stops everything; the command exits 0 and no member is left running.
      running!.child.kill('SIGTERM');
      expect(await running!.exited).toBe(0);
      for (const m of members) {
        expect(() => process.kill(m.pid!, 0)).toThrow();
      }
    });
  }
});
