/**
 * Broker metadata a master replicates next to its commitlog, carried in
 * ReplicationData.metadata whenever it changed. UTF-8 JSON:
 *
 *   {
 *     "v": 1,
 *     "files": {                          *.json directly under <storePathRootDir>/config: all of
 *                                         them first on a stream, then those that changed
 *       "topics.json": "<file text>",     except LOCAL_ONLY_CONFIG_FILES; text as on disk
 *       "subscriptionGroup.json": "…",
 *       "consumerOffset.json": "…",
 *       …                                 files other engineers add later travel too
 *     },
 *     "readers": [                        progress of the broker's own readers (timer, transactions)
 *       { "group": "#timer", "topic": "rmq_sys_wheel_timer", "queueId": 0, "base": 1234 }
 *     ]
 *   }
 *
 * Why whole files: they are small, written atomically (temp + rename), and
 * shipping the config directory generically means a state file added later
 * reaches the slave without a change here. What a file means is the
 * applier's business (metadata-applier.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errors } from '../../common/errors.js';

export const METADATA_FORMAT_VERSION = 1;

/** Config files that describe this broker itself, not its data: never replicated. */
export const LOCAL_ONLY_CONFIG_FILES: ReadonlySet<string> = new Set(['broker.json']);

/** A reader's settled position in one queue (everything below `base` is done). */
export interface ReaderProgress {
  group: string;
  topic: string;
  queueId: number;
  base: number;
}

export interface MetadataSnapshot {
  v: number;
  /** File name (no directories) → content. */
  files: Record<string, string>;
  readers: ReaderProgress[];
}

/** Reads the master's config directory into a snapshot (files that vanish meanwhile are skipped). */
export async function readMetadataSnapshot(
  configDir: string,
  readers: readonly ReaderProgress[],
): Promise<MetadataSnapshot> {
  let names: string[];
  try {
    names = await readdir(configDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    names = [];
  }
  const files: Record<string, string> = {};
  for (const name of names.sort()) {
    if (!name.endsWith('.json') || LOCAL_ONLY_CONFIG_FILES.has(name)) continue;
    try {
      files[name] = await readFile(join(configDir, name), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EISDIR') throw err;
    }
  }
  return { v: METADATA_FORMAT_VERSION, files, readers: [...readers] };
}

export function encodeMetadata(snapshot: MetadataSnapshot): Buffer {
  return Buffer.from(JSON.stringify(snapshot), 'utf8');
}

/** Parses the bytes; throws MESSAGE_CORRUPTED when they are not JSON. */
export function decodeMetadata(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch (cause) {
    throw errors.messageCorrupted(`replicated metadata is not JSON: ${(cause as Error).message}`);
  }
}

/** Checks a decoded snapshot's shape; answers it typed, or throws MESSAGE_CORRUPTED. */
export function validateMetadata(value: unknown): MetadataSnapshot {
  const bad = (why: string) => errors.messageCorrupted(`replicated metadata: ${why}`);
  if (typeof value !== 'object' || value === null) throw bad('not an object');
  const s = value as Partial<MetadataSnapshot>;
  if (s.v !== METADATA_FORMAT_VERSION) throw bad(`format ${String(s.v)} is not supported`);
  if (typeof s.files !== 'object' || s.files === null) throw bad('files missing');
  for (const [name, text] of Object.entries(s.files)) {
    if (typeof text !== 'string' || name.includes('/') || name.includes('\\') || name === '..') {
      throw bad(`file '${name}' is not a plain name with text`);
    }
  }
  if (!Array.isArray(s.readers)) throw bad('readers missing');
  for (const r of s.readers) {
    if (
      typeof r?.group !== 'string' ||
      typeof r.topic !== 'string' ||
      !Number.isSafeInteger(r.queueId) ||
      !Number.isSafeInteger(r.base)
    ) {
      throw bad('a reader entry is malformed');
    }
  }
  return s as MetadataSnapshot;
}
