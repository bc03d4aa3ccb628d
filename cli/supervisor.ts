/**
 * Starts Sluice binaries as child processes and knows when they are ready: a
 * child is ready when it prints its boot line (printed only after its ports are
 * bound), never after a sleep. Used by `sluice standalone`, `sluice cluster`
 * and the test harness.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PACKAGE_ROOT } from '../common/paths.js';

export type BinaryName = 'mqnamesrv' | 'mqbroker' | 'mqgateway';

/** Boot lines, as RocketMQ prints them (the gateway's is ours). */
export const READY_LINES: Record<BinaryName, RegExp> = {
  mqnamesrv: /The Name Server boot success\..* address (\S+):(\d+)/,
  mqbroker: /The broker\[([^,]+), (\S+):(\d+)\] boot success\./,
  mqgateway: /The gateway boot success\. http=(\S+):(\d+) grpc=(\S+):(\d+)/,
};

export const DEFAULT_READY_TIMEOUT_MS = 20_000;
/** How long stop() waits after SIGTERM before it SIGKILLs. */
export const DEFAULT_STOP_GRACE_MS = 5_000;
/** Lines of output kept per child for error messages. */
const KEEP_LINES = 200;

export interface ChildSpec {
  /** Label used in messages, e.g. `broker-a`. */
  name: string;
  bin: BinaryName;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Append the child's stdout and stderr here. */
  logFile?: string;
  /**
   * Run in its own process group, so a terminal's Ctrl-C reaches only the
   * supervisor, which then stops children in order.
   */
  detached?: boolean;
}

/** How a child ended when stop() was asked to end it. */
export interface StopResult {
  /** Exit code; null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** It was still alive after the grace period and had to be SIGKILLed. */
  forced: boolean;
}

export class ManagedChild {
  readonly spec: ChildSpec;
  private child: ChildProcess | undefined;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve(
    { code: null, signal: null },
  );
  private log: WriteStream | undefined;
  /** The last lines the child printed (stdout and stderr). */
  readonly lines: string[] = [];
  /** Match of the ready line from the latest start. */
  ready: RegExpExecArray | undefined;

  constructor(spec: ChildSpec) {
    this.spec = spec;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return (
      this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
    );
  }

  /** Spawns the child and resolves when its boot line appears. */
  start(timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<RegExpExecArray> {
    if (this.running) throw new Error(`${this.spec.name} is already running`);
    const script = join(PACKAGE_ROOT, 'bin', this.spec.bin);
    const child = spawn(process.execPath, [script, ...this.spec.args], {
      cwd: this.spec.cwd ?? PACKAGE_ROOT,
      env: { ...process.env, ...this.spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: this.spec.detached ?? false,
    });
    this.child = child;
    this.ready = undefined;
    if (this.spec.logFile && !this.log)
      this.log = createWriteStream(this.spec.logFile, { flags: 'a' });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const pattern = READY_LINES[this.spec.bin];
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.spec.name} not ready after ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      const onLine = (line: string) => {
        this.lines.push(line);
        if (this.lines.length > KEEP_LINES) this.lines.shift();
        this.log?.write(`${line}\n`);
        if (!this.ready) {
          const m = pattern.exec(line);
          if (m) {
            this.ready = m;
            clearTimeout(timer);
            resolve(m);
          }
        }
      };
      createInterface({ input: child.stdout! }).on('line', onLine);
      createInterface({ input: child.stderr! }).on('line', onLine);
      child.once('exit', (code, signal) => {
        if (!this.ready) {
          clearTimeout(timer);
          reject(
            new Error(`${this.spec.name} exited (${signal ?? code}) before ready:\n${this.tail()}`),
          );
        }
      });
    });
  }

  /** Sends a signal and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.child!.kill(signal);
    await this.exited;
  }

  /**
   * SIGTERM, then SIGKILL if still alive after graceMs. Says how the child
   * ended, so a supervisor can report an unclean stop instead of hiding it.
   * A child that had already exited reports how it did.
   */
  async stop(graceMs = DEFAULT_STOP_GRACE_MS): Promise<StopResult> {
    if (!this.running) return { ...(await this.exited), forced: false };
    this.child!.kill('SIGTERM');
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      this.child?.kill('SIGKILL');
    }, graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return { ...exit, forced };
  }

  /** Resolves with the exit code once the child has exited. */
  waitExit(): Promise<number | null> {
    return this.exited.then((e) => e.code);
  }

  async restart(timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<RegExpExecArray> {
    await this.stop();
    return this.start(timeoutMs);
  }

  /** Closes the log file (after the child has exited). */
  dispose(): void {
    this.log?.end();
    this.log = undefined;
  }

  tail(n = 40): string {
    return this.lines.slice(-n).join('\n');
  }
}
