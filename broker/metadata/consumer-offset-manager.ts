/**
 * Committed consumer offsets per group, topic and queue, persisted in
 * `<storePathRootDir>/config/consumerOffset.json`; broadcasting consumers'
 * offsets (one set per consumer instance) in `consumerOffset-broadcast.json`.
 * Commits are kept in memory and written at most every FLUSH_INTERVAL_MS plus
 * on close; `commitDurable` waits for the write.
 *
 * Pop groups: the offset shown here mirrors the pop state's base (everything
 * below settled); the pop state itself is kept by the consume-state journal.
 */
import { join } from 'node:path';
import { JsonFileWriter, readJsonFile } from '../../common/json-file.js';

export const DEFAULT_OFFSET_FLUSH_INTERVAL_MS = 1_000;

/** Key `topic@group` -> queueId -> next offset to consume. */
type OffsetTable = Record<string, Record<string, number>>;
/** Key `topic@group` -> client id -> queueId -> next offset. */
type BroadcastTable = Record<string, Record<string, Record<string, number>>>;

export class ConsumerOffsetManager {
  private readonly table: OffsetTable;
  private readonly writer: JsonFileWriter;
  private readonly broadcast: BroadcastTable;
  private readonly broadcastWriter: JsonFileWriter;
  private dirty = false;
  private broadcastDirty = false;
  private readonly timer: NodeJS.Timeout;

  constructor(rootDir: string, flushIntervalMs = DEFAULT_OFFSET_FLUSH_INTERVAL_MS) {
    const path = join(rootDir, 'config', 'consumerOffset.json');
    this.table = readJsonFile<OffsetTable>(path, {});
    this.writer = new JsonFileWriter(path, () => this.table);
    const bpath = join(rootDir, 'config', 'consumerOffset-broadcast.json');
    this.broadcast = readJsonFile<BroadcastTable>(bpath, {});
    this.broadcastWriter = new JsonFileWriter(bpath, () => this.broadcast);
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

  /** A broadcasting consumer's offset, or undefined. */
  getForClient(
    group: string,
    clientId: string,
    topic: string,
    queueId: number,
  ): number | undefined {
    return this.broadcast[ConsumerOffsetManager.key(group, topic)]?.[clientId]?.[String(queueId)];
  }

  commitForClient(
    group: string,
    clientId: string,
    topic: string,
    queueId: number,
    offset: number,
  ): void {
    const key = ConsumerOffsetManager.key(group, topic);
    const clients = this.broadcast[key] ?? {};
    this.broadcast[key] = clients;
    const queues = clients[clientId] ?? {};
    clients[clientId] = queues;
    if (queues[String(queueId)] === offset) return;
    queues[String(queueId)] = offset;
    this.broadcastDirty = true;
  }

  /** Topic -> queue -> offset for one broadcasting consumer. */
  byClient(group: string, clientId: string): Map<string, Map<number, number>> {
    const out = new Map<string, Map<number, number>>();
    for (const [key, clients] of Object.entries(this.broadcast)) {
      const at = key.lastIndexOf('@');
      const queues = clients[clientId];
      if (key.slice(at + 1) !== group || !queues) continue;
      out.set(key.slice(0, at), new Map(Object.entries(queues).map(([q, o]) => [Number(q), o])));
    }
    return out;
  }

  async commitDurable(
    group: string,
    topic: string,
    queueId: number,
    offset: number,
  ): Promise<void> {
    this.commit(group, topic, queueId, offset);
    await this.flush();
  }

  /** Topic -> queue -> offset for one group. */
  byGroup(group: string): Map<string, Map<number, number>> {
    const out = new Map<string, Map<number, number>>();
    for (const [key, queues] of Object.entries(this.table)) {
      const at = key.lastIndexOf('@');
      if (key.slice(at + 1) !== group) continue;
      out.set(key.slice(0, at), new Map(Object.entries(queues).map(([q, o]) => [Number(q), o])));
    }
    return out;
  }

  /** Every group offset as [group, topic, queueId, offset] (replication handshake). */
  *entries(): IterableIterator<[string, string, number, number]> {
    for (const [key, queues] of Object.entries(this.table)) {
      const at = key.lastIndexOf('@');
      for (const [q, offset] of Object.entries(queues)) {
        yield [key.slice(at + 1), key.slice(0, at), Number(q), offset];
      }
    }
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
    for (const key of Object.keys(this.broadcast)) {
      if (key.slice(key.lastIndexOf('@') + 1) === group) delete this.broadcast[key];
    }
    this.dirty = true;
    this.broadcastDirty = true;
  }

  /** Drops every group's offsets of a topic (deleted). */
  deleteTopic(topic: string): void {
    for (const key of Object.keys(this.table)) {
      if (key.slice(0, key.lastIndexOf('@')) === topic) delete this.table[key];
    }
    for (const key of Object.keys(this.broadcast)) {
      if (key.slice(0, key.lastIndexOf('@')) === topic) delete this.broadcast[key];
    }
    this.dirty = true;
    this.broadcastDirty = true;
  }

  async flush(): Promise<void> {
    const writes: Promise<void>[] = [];
    if (this.dirty) {
      this.dirty = false;
      writes.push(this.writer.save());
    }
    if (this.broadcastDirty) {
      this.broadcastDirty = false;
      writes.push(this.broadcastWriter.save());
    }
    await Promise.all(writes);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
