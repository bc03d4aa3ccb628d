/**
 * Tombstones of deleted topics. Deleting a topic drops its consume queues,
 * but its records stay in the commitlog (until retention) with queue offsets
 * 0..N-1. A tombstone keeps, per deleted topic:
 *
 *  - physicalOffset: the commitlog end at the deletion. The topic's records
 *    below it belong to the deleted topic: a dispatch (consume queue rebuild,
 *    recovery, a slave replaying the log) never puts them into a queue again;
 *  - queues: per queue id, the next queue offset the deleted queue would have
 *    given. A re-created queue continues there, so old and new records never
 *    share a queue offset (RocketMQ's minLogicOffset idea), and a queue that
 *    still holds the old entries below it (a slave that replicated them
 *    before it learned of the deletion) hides them (its minimum moves there).
 *
 * Physical offsets are the same on a master and its slaves (a slave writes
 * the master's bytes at the master's offsets), so a master's tombstone means
 * the same on its slaves: the file lives in the broker's config directory,
 * which metadata replication ships, and a slave merges what it receives
 * (MessageStore.applyDeletedTopics). Merging keeps, per topic, the tombstone
 * with the higher physicalOffset (a later deletion covers an earlier one),
 * with the higher next offset per queue.
 *
 * A tombstone is dropped once retention has deleted every record below its
 * physicalOffset: nothing is left to skip, and a queue that had entries
 * since keeps its offsets in its own files. Memory: one small entry per
 * deleted topic whose records are still in the commitlog.
 *
 * File (JSON, replaced atomically: temp file, fdatasync, rename, directory fsync):
 *   { "version": 1, "topics": { "<topic>": { "physicalOffset": P, "queues": { "<queueId>": N, … } }, … } }
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeJsonFile } from '../../common/json-file.js';
import type { Logger } from '../../common/logger.js';
import { fsyncDirectory } from './positioned-io.js';

const VERSION = 1;

/** What is known of one deleted topic (see the file comment). */
export interface TopicTombstone {
  topic: string;
  /** Commitlog end at the deletion, bytes: the topic's records below it are the deleted topic's. */
  physicalOffset: number;
  /** Queue id → the first queue offset a re-created queue may use. */
  queues: ReadonlyMap<number, number>;
}

function isOffset(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

/**
 * Reads tombstones from the file's JSON value (also as replicated from a
 * master); entries that are not well formed are left out.
 */
export function parseTopicTombstones(value: unknown): TopicTombstone[] {
  const topics = (value as { topics?: unknown } | null)?.topics;
  if ((value as { version?: unknown } | null)?.version !== VERSION) return [];
  if (typeof topics !== 'object' || topics === null) return [];
  const out: TopicTombstone[] = [];
  for (const [topic, entry] of Object.entries(topics)) {
    const { physicalOffset, queues } = (entry ?? {}) as {
      physicalOffset?: unknown;
      queues?: unknown;
    };
    if (!isOffset(physicalOffset) || typeof queues !== 'object' || queues === null) continue;
    const map = new Map<number, number>();
    for (const [q, next] of Object.entries(queues)) {
      const queueId = Number(q);
      if (/^\d+$/.test(q) && queueId <= 0x7fffffff && isOffset(next)) map.set(queueId, next);
    }
    out.push({ topic, physicalOffset, queues: map });
  }
  return out;
}

export class TopicTombstones {
  private readonly byTopic = new Map<string, TopicTombstone>();
  /** Saves run one at a time, each writing the table as it is then. */
  private saving: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly logger: Logger,
  ) {}

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // Written atomically, so never torn: someone edited it. Nothing to go on.
      this.logger.error(
        { path: this.path },
        'deleted-topic tombstones are not JSON; ignoring them',
      );
      return;
    }
    for (const t of parseTopicTombstones(value)) this.byTopic.set(t.topic, t);
  }

  get(topic: string): TopicTombstone | undefined {
    return this.byTopic.get(topic);
  }

  get size(): number {
    return this.byTopic.size;
  }

  all(): IterableIterator<TopicTombstone> {
    return this.byTopic.values();
  }

  /**
   * Merges `t` into the table (see the file comment); answers the tombstone
   * now in force for its topic when that changed, undefined when `t` added
   * nothing.
   */
  merge(t: TopicTombstone): TopicTombstone | undefined {
    const have = this.byTopic.get(t.topic);
    if (have && have.physicalOffset >= t.physicalOffset) {
      let grows = false;
      for (const [q, next] of t.queues) if (next > (have.queues.get(q) ?? 0)) grows = true;
      if (!grows) return undefined;
    }
    const queues = new Map(have?.queues);
    for (const [q, next] of t.queues) if (next > (queues.get(q) ?? 0)) queues.set(q, next);
    const merged: TopicTombstone = {
      topic: t.topic,
      physicalOffset: Math.max(have?.physicalOffset ?? 0, t.physicalOffset),
      queues,
    };
    this.byTopic.set(t.topic, merged);
    return merged;
  }

  /** Drops tombstones with no record left below them (retention passed them); answers how many. */
  prune(minPhysicalOffset: number): number {
    let dropped = 0;
    for (const [topic, t] of this.byTopic) {
      if (t.physicalOffset <= minPhysicalOffset) {
        this.byTopic.delete(topic);
        dropped++;
      }
    }
    return dropped;
  }

  /** Durably writes the table as it is now. */
  save(): Promise<void> {
    const run = this.saving.then(async () => {
      const topics: Record<string, { physicalOffset: number; queues: Record<string, number> }> = {};
      for (const t of this.byTopic.values()) {
        topics[t.topic] = {
          physicalOffset: t.physicalOffset,
          queues: Object.fromEntries([...t.queues].sort((a, b) => a[0] - b[0])),
        };
      }
      await writeJsonFile(this.path, { version: VERSION, topics });
      await fsyncDirectory(dirname(this.path));
    });
    this.saving = run.catch(() => undefined);
    return run;
  }
}
