/**
 * Small JSON state files (topic config, offsets, KV config): written to a
 * temporary file, fsynced and renamed over the old one, so a crash leaves
 * either the old or the new content, never a torn file.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errors } from './errors.js';

/** Reads a JSON file; `fallback` when it does not exist. */
export function readJsonFile<T>(path: string, fallback: T): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw errors.internal(`${path} is not valid JSON`, cause);
  }
}

/** Writes `value` atomically (temp file + fsync + rename). */
export async function writeJsonFile(path: string, value: unknown): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(value, null, 2));
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/**
 * Serialises writes of one file and coalesces bursts: at most one write runs
 * and at most one more is queued, always with the latest value.
 */
export class JsonFileWriter {
  private running: Promise<void> | undefined;
  private pending = false;

  constructor(
    private readonly path: string,
    private readonly snapshot: () => unknown,
  ) {}

  /** Schedules a write of the current snapshot; resolves when it is on disk. */
  save(): Promise<void> {
    if (this.running) {
      this.pending = true;
      return this.running.then(() => (this.running ? this.running : this.save()));
    }
    this.running = writeJsonFile(this.path, this.snapshot()).finally(() => {
      this.running = undefined;
      if (this.pending) {
        this.pending = false;
        void this.save();
      }
    });
    return this.running;
  }
}
