/**
 * The queue checkpoint: which consume queues exist and how far each one
 * durably reaches, written with the checkpoint. At start it shows a consume
 * queue that was lost or cut short (a deleted queue directory or file) even
 * when the other queues are whole, so the store re-dispatches the commitlog
 * from the lowest record such a queue needs instead of restarting its queue
 * offsets at 0.
 *
 * It also names the commitlog's last message record as of a log end
 * ("tail"), so a clean start knows it without scanning the last segment (the
 * replication handshake sends it; the store checks the record before use).
 *
 * File (JSON, replaced atomically: temp file, fdatasync, rename, directory fsync):
 *   { "version": 1, "queues": [[topic, queueId, minOffset, maxOffset, firstPhysicalOffset], …],
 *     "tail": [recordOffset, recordSize, logEnd] }                 (tail optional)
 * firstPhysicalOffset is the commitlog offset of the entry at minOffset, −1
 * when unknown. A missing or unreadable file means "nothing known": then only
 * a fully lost consume queue tree is noticed (every queue empty).
 */
import { readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../../common/logger.js';
import { closeFile, fdatasync, fsyncDirectory, openFile, writeAt } from './positioned-io.js';

const VERSION = 1;

/** What one queue held when the checkpoint was taken. */
export interface QueueExtent {
  topic: string;
  queueId: number;
  minOffset: number;
  maxOffset: number;
  /** Commitlog offset of the entry at minOffset, −1 when unknown. */
  firstPhysicalOffset: number;
}

/** The commitlog's last message record when the log ended at `end`. */
export interface LogTail {
  offset: number;
  size: number;
  end: number;
}

export function queueKey(topic: string, queueId: number): string {
  return `${queueId}@${topic}`;
}

function isExtentRow(row: unknown): row is [string, number, number, number, number] {
  return (
    Array.isArray(row) &&
    row.length === 5 &&
    typeof row[0] === 'string' &&
    row.slice(1).every((n) => Number.isSafeInteger(n))
  );
}

export class QueueCheckpoint {
  /** The text last written (or read): an unchanged table is not written again. */
  private last = '';
  /** The tail the file named when load() read it. */
  loadedTail: LogTail | undefined;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
  ) {}

  /** Extents by queueKey; empty when the file is missing or not valid. */
  async load(): Promise<Map<string, QueueExtent>> {
    const out = new Map<string, QueueExtent>();
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn({ err, path: this.path }, 'queue checkpoint unreadable; ignoring it');
      }
      return out;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const { queues, tail } = (parsed ?? {}) as { queues?: unknown; tail?: unknown };
    if ((parsed as { version?: unknown })?.version !== VERSION || !Array.isArray(queues)) {
      this.logger.warn({ path: this.path }, 'queue checkpoint not valid; ignoring it');
      return out;
    }
    for (const row of queues) {
      if (!isExtentRow(row)) continue;
      const [topic, queueId, minOffset, maxOffset, firstPhysicalOffset] = row;
      out.set(queueKey(topic, queueId), {
        topic,
        queueId,
        minOffset,
        maxOffset,
        firstPhysicalOffset,
      });
    }
    if (
      Array.isArray(tail) &&
      tail.length === 3 &&
      tail.every((n) => Number.isSafeInteger(n) && n >= 0)
    ) {
      const [offset, size, end] = tail as [number, number, number];
      this.loadedTail = { offset, size, end };
    }
    this.last = text;
    return out;
  }

  /** Durably replaces the file with `extents` and `tail` (nothing is written when they did not change). */
  async write(extents: readonly QueueExtent[], tail?: LogTail): Promise<void> {
    const text = JSON.stringify({
      version: VERSION,
      queues: extents.map((e) => [
        e.topic,
        e.queueId,
        e.minOffset,
        e.maxOffset,
        e.firstPhysicalOffset,
      ]),
      ...(tail ? { tail: [tail.offset, tail.size, tail.end] } : {}),
    });
    if (text === this.last) return;
    const tmp = `${this.path}.tmp`;
    const fd = await openFile(tmp, 'w');
    try {
      await writeAt(fd, Buffer.from(text, 'utf8'), 0);
      await fdatasync(fd);
    } finally {
      await closeFile(fd);
    }
    await rename(tmp, this.path).catch(async (err: unknown) => {
      await rm(tmp, { force: true });
      throw err;
    });
    await fsyncDirectory(dirname(this.path));
    this.last = text;
  }
}
