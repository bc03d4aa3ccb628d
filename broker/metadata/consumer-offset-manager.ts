/**
 * Committed consumer offsets per group, topic and queue, persisted in
 * `<storePathRootDir>/config/consumerOffset.json`. Commits are kept in memory
 * and written at most every FLUSH_INTERVAL_MS plus on close; `commitDurable`
 * waits for the write (used where a lost commit would redeliver acked messages).
 */
import { join } from 'node:path';
import { JsonFileWriter, readJsonFile } from '../../common/json-file.js';

export const DEFAULT_OFFSET_FLUSH_INTERVAL_MS = 1_000;

/** Key `topic@group` -> queueId -> next offset to consume. */
type OffsetTable = Record<string, Record<string, number>>;

export class ConsumerOffsetManager {
  private readonly table: OffsetTable;
  private readonly writer: JsonFileWriter;
  private dirty = false;
  private readonly timer: NodeJS.Timeout;

  constructor(rootDir: string, flushIntervalMs = DEFAULT_OFFSET_FLUSH_INTERVAL_MS) {
    const path = join(rootDir, 'config', 'consumerOffset.json');
    this.table = readJsonFile<OffsetTable>(path, {});
    this.writer = new JsonFileWriter(path, () => this.table);
    this.timer = setInterval(() => void this.flush(), flushIntervalMs);
    this.timer.unref();
  }

  private static key(group: string, topic: string): string {
    return `${topic}@${group}`;
  }

  /** The committed offset, or undefined when the group never committed one. */
  get(group: string, topic: string, queueId: number): number | undefined {
    return this.table[ConsumerOffsetManager.key(group, topic)]?.[String(queueId)];
  }

  commit(group: string, topic: string, queueId: number, offset: number): void {
    const key = ConsumerOffsetManager.key(group, topic);
    const queues = this.table[key] ?? {};
    this.table[key] = queues;
    if (queues[String(queueId)] === offset) return;
    queues[String(queueId)] = offset;
    this.dirty = true;
  }

  async commitDurable(group: string, topic: string, queueId: number, offset: number): Promise<void> {
    this.commit(group, topic, queueId, offset);
    await this.flush();
  }

  /** Topic -> queue -> offset for one group. */
  byGroup(group: string): Map<string, Map<number, number>> {
    const out = new Map<string, Map<number, number>>();
    for (const [key, queues] of Object.entries(this.table)) {
      const at = key.lastIndexOf('@');
      if (key.slice(at + 1) !== group) continue;
      out.set(
        key.slice(0, at),
        new Map(Object.entries(queues).map(([q, o]) => [Number(q), o])),
      );
    }
    return out;
  }

  /** Every group that has committed offsets for a topic. */
  groupsOf(topic: string): string[] {
    return Object.keys(this.table)
      .filter((key) => key.slice(0, key.lastIndexOf('@')) === topic)
      .map((key) => key.slice(key.lastIndexOf('@') + 1));
  }

  deleteGroup(group: string): void {
    for (const key of Object.keys(this.table)) {
      if (key.slice(key.lastIndexOf('@') + 1) === group) delete this.table[key];
    }
    this.dirty = true;
  }

  async flush(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    await this.writer.save();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
