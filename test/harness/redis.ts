/**
 * Starts a private redis-server on a free port for a test. Installs Debian's
 * redis-server first when it is missing and we run as root; otherwise fails
 * with one line saying how to install it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { freePort } from './ports.js';

/** The one line a test run prints when it cannot get a redis-server. */
export const REDIS_INSTALL_HINT =
  'redis-server is not installed: run `sudo apt-get install -y redis-server` and re-run the tests';

export interface RedisHandle {
  url: string;
  port: number;
  kill(signal?: NodeJS.Signals): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function findRedis(): string | undefined {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server'])
    if (existsSync(p)) return p;
  try {
    return (
      execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() ||
      undefined
    );
  } catch {
    return undefined;
  }
}

/**
 * The path of redis-server, installing Debian's package first when it is
 * missing and we run as root. Otherwise, or when the install fails, throws
 * REDIS_INSTALL_HINT (with apt-get's last words when it ran).
 */
export function ensureRedisInstalled(): string {
  const found = findRedis();
  if (found) return found;
  let why = '';
  if (process.getuid?.() === 0) {
    try {
      execFileSync(
        'sh',
        [
          '-c',
          'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
      );
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
      why = ` (apt-get failed: ${stderr.split('\n').pop() || (err as Error).message})`;
    }
    const installed = findRedis();
    if (installed) return installed;
  }
  throw new Error(`${REDIS_INSTALL_HINT}${why}`);
}

export async function startRedis(): Promise<RedisHandle> {
  const bin = ensureRedisInstalled();
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawn(
        bin,
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      child = c;
      // Drain stderr (a full pipe would block redis-server); its last lines explain an early exit.
      const errTail: string[] = [];
      createInterface({ input: c.stderr! }).on('line', (line) => {
        errTail.push(line);
        if (errTail.length > 5) errTail.shift();
      });
      const timer = setTimeout(
        () => reject(new Error('redis-server did not become ready in 10 s')),
        10_000,
      );
      createInterface({ input: c.stdout! }).on('line', (line) => {
        if (/Ready to accept connections/.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}) before ready: ${errTail.join(' | ')}`));
      });
    });
  const exit = () =>
    new Promise<void>((resolve) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
    });
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill: async (signal = 'SIGKILL') => {
      const done = exit();
      child?.kill(signal);
      await done;
    },
    restart: async () => {
      const done = exit();
      child?.kill('SIGTERM');
      await done;
      await launch();
    },
    stop: async () => {
      const done = exit();
      child?.kill('SIGTERM');
      await done;
    },
  };
}
