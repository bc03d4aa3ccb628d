/**
 * Consumer offsets between a master and its slaves, in both directions.
 *
 * Master → slave: the master's consumerOffset.json travels with the metadata
 * (metadata-snapshot.ts). The slave applies it forward only: an offset on the
 * slave never moves back because the master's copy is older (a master that
 * restarted on its pre-crash offsets, a snapshot read before a flush). The one
 * way back is an explicit reset (ResetOffsetByTime, or an UpdateConsumerOffsets
 * that moves a committed offset backwards): the master records it in
 * RESETS_FILE with an increasing sequence number, and a slave applies every
 * reset whose sequence it has not applied yet — the reset's own offset, then
 * forward again from there.
 *
 * Slave → master: when a slave (re)connects, its handshake carries its
 * committed offsets and the reset sequences it applied (HandshakeOffsets).
 * The master keeps, per group/topic/queue, the higher of its own offset and
 * the slave's — unless the master has a reset the slave has not seen (the
 * slave's higher offset predates that reset). So what consumers committed on
 * the slave while the master was down is not delivered again by the master.
 *
 * RESETS_FILE (`<storePathRootDir>/config/consumerOffsetReset.json`, JSON):
 *   { "topic@group": { "queueId": { "offset": 12, "seq": 1718000000000 } } }
 * one entry per queue (the latest reset), so it is bounded like the offset
 * table itself. On a slave the same file holds the resets it applied.
 */
import { join } from 'node:path';
import { JsonFileWriter, readJsonFile } from '../../common/json-file.js';
import type { Logger } from '../../common/logger.js';
import type { QueueState } from '../messaging/consume-state.js';
import type { ConsumeStateStore } from '../messaging/consume-state-store.js';
import type { ConsumerOffsetManager } from '../metadata/consumer-offset-manager.js';

export const RESETS_FILE = 'consumerOffsetReset.json';

/** `topic@group` → queueId → next offset to consume (consumerOffset.json's shape). */
export type OffsetTable = Record<string, Record<string, number>>;

export interface ResetEntry {
  offset: number;
  /** Increasing per master (epoch ms, bumped past the previous one). */
  seq: number;
}

/** `topic@group` → queueId → the latest explicit reset. */
export type ResetTable = Record<string, Record<string, ResetEntry>>;

/** What a slave's handshake carries (ReplicationAck.consumer_offsets, UTF-8 JSON). */
export interface HandshakeOffsets {
  offsets: OffsetTable;
  /** `topic@group` → queueId → sequence of the last reset applied. */
  resets: Record<string, Record<string, number>>;
}

export function offsetKey(group: string, topic: string): string {
  return `${topic}@${group}`;
}

export function splitOffsetKey(key: string): [topic: string, group: string] {
  const at = key.lastIndexOf('@');
  return [key.slice(0, at), key.slice(at + 1)];
}

/** Reads a reset table file ({} when missing or malformed). */
export function readResets(configDir: string): ResetTable {
  const t = readJsonFile<unknown>(join(configDir, RESETS_FILE), {});
  return parseResets(t);
}

/** Keeps the well-formed entries of a decoded reset table. */
export function parseResets(value: unknown): ResetTable {
  const out: ResetTable = {};
  if (typeof value !== 'object' || value === null) return out;
  for (const [key, queues] of Object.entries(value as Record<string, unknown>)) {
    if (typeof queues !== 'object' || queues === null || !key.includes('@')) continue;
    for (const [q, e] of Object.entries(queues as Record<string, unknown>)) {
      const entry = e as Partial<ResetEntry> | null;
      if (
        !Number.isSafeInteger(Number(q)) ||
        !Number.isSafeInteger(entry?.offset) ||
        !Number.isSafeInteger(entry?.seq)
      ) {
        continue;
      }
      out[key] ??= {};
      out[key][q] = { offset: entry!.offset!, seq: entry!.seq! };
    }
  }
  return out;
}

/**
 * Master side: the explicit resets of this broker's consumer offsets,
 * persisted in RESETS_FILE (which replicates with the other config files).
 */
export class OffsetResetLog {
  private readonly table: ResetTable;
  private readonly writer: JsonFileWriter;
  private lastSeq = 0;

  constructor(
    configDir: string,
    private readonly clock: () => number = Date.now,
  ) {
    this.table = readResets(configDir);
    for (const queues of Object.values(this.table)) {
      for (const e of Object.values(queues)) this.lastSeq = Math.max(this.lastSeq, e.seq);
    }
    this.writer = new JsonFileWriter(join(configDir, RESETS_FILE), () => this.table);
  }

  /** Records a reset of one queue's offset; resolves once it is on disk. */
  note(group: string, topic: string, queueId: number, offset: number): Promise<void> {
    this.lastSeq = Math.max(this.clock(), this.lastSeq + 1);
    const key = offsetKey(group, topic);
    this.table[key] ??= {};
    this.table[key][String(queueId)] = { offset, seq: this.lastSeq };
    return this.writer.save();
  }

  /** Sequence of the latest reset of a queue, 0 when never reset. */
  seq(key: string, queueId: string): number {
    return this.table[key]?.[queueId]?.seq ?? 0;
  }
}

export function encodeHandshakeOffsets(h: HandshakeOffsets): Buffer {
  return Buffer.from(JSON.stringify(h), 'utf8');
}

/** Decodes a handshake's offsets; undefined when absent or malformed (nothing is merged then). */
export function decodeHandshakeOffsets(buf: Buffer): HandshakeOffsets | undefined {
  if (buf.length === 0) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
  const h = v as Partial<HandshakeOffsets> | null;
  if (typeof h?.offsets !== 'object' || h.offsets === null) return undefined;
  if (typeof h.resets !== 'object' || h.resets === null) return undefined;
  return h as HandshakeOffsets;
}

/** A slave's committed offsets in table form (for its handshake). */
export function offsetTableOf(offsets: ConsumerOffsetManager): OffsetTable {
  const out: OffsetTable = {};
  for (const [group, topic, queueId, offset] of offsets.entries()) {
    const key = offsetKey(group, topic);
    out[key] ??= {};
    out[key][String(queueId)] = offset;
  }
  return out;
}

/**
 * Settles a pop state's offsets below `offset` under the queue's lock (so it
 * does not race a pop); offsets in flight stay in flight (a consumer may
 * still ack them; the base stays below them). Never moves the state back.
 */
export async function settlePopStateUpTo(
  states: Pick<ConsumeStateStore, 'settle'>,
  st: QueueState,
  offset: number,
): Promise<void> {
  await st.withLock(async () => {
    if (st.base >= offset) return;
    const runs: Array<[number, number]> = [];
    let start = st.base;
    const inflight = [...st.inflight.keys()].filter((o) => o < offset).sort((a, b) => a - b);
    for (const o of inflight) {
      if (o > start) runs.push([start, o]);
      start = Math.max(start, o + 1);
    }
    if (offset > start) runs.push([start, offset]);
    await states.settle(st, runs);
  });
}

export interface MergeTargets {
  offsets: ConsumerOffsetManager;
  states?: Pick<ConsumeStateStore, 'get' | 'settle'>;
  resets: OffsetResetLog;
  logger: Logger;
}

/**
 * Master side of a slave's handshake: takes the slave's offsets where they
 * are higher (see the file comment); answers how many queues moved.
 */
export async function mergeSlaveOffsets(
  t: MergeTargets,
  slave: HandshakeOffsets,
  slaveAddr: string,
): Promise<number> {
  let moved = 0;
  for (const [key, queues] of Object.entries(slave.offsets)) {
    if (typeof queues !== 'object' || queues === null || !key.includes('@')) continue;
    const [topic, group] = splitOffsetKey(key);
    for (const [q, offset] of Object.entries(queues)) {
      const queueId = Number(q);
      if (!Number.isSafeInteger(queueId) || !Number.isSafeInteger(offset)) continue;
      const mine = t.offsets.get(group, topic, queueId);
      if (mine !== undefined && mine >= offset) continue;
      // A reset here the slave has not applied: its higher offset is from before it.
      if (t.resets.seq(key, q) > (slave.resets[key]?.[q] ?? 0)) continue;
      const st = t.states?.get(group, topic, queueId);
      if (st && st.base < offset) await settlePopStateUpTo(t.states!, st, offset);
      t.offsets.commit(group, topic, queueId, offset);
      moved++;
    }
  }
  if (moved > 0) {
    await t.offsets.flush();
    t.logger.info(
      { slave: slaveAddr, queues: moved },
      'took consumer offsets committed on the slave (higher than this master had)',
    );
  }
  return moved;
}
