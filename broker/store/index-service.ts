/**
 * The index: index files in commitlog order (each named by the 20-digit
 * physical offset of the first record it indexes), the one being filled and
 * the sealed ones. Puts `topic#key` for every KEYS entry and `topic#messageId`
 * for the client id of each record; lookups walk the files newest first.
 */
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import type { FilePool } from './file-pool.js';
import { IndexFile } from './index-file.js';
import { offsetFileName, parseOffsetFileName } from './positioned-io.js';
import { javaStringHash } from './tag-hash.js';

/** Pending entry bytes that trigger a background write before the periodic flush. */
const WRITE_THRESHOLD_BYTES = 1024 * 1024;

export class IndexService {
  readonly files: IndexFile[] = [];
  private readonly prefixHashes = new Map<string, number>();
  private writing = false;

  constructor(
    readonly dir: string,
    readonly slotCount: number,
    readonly maxEntries: number,
    private readonly logger: Logger,
    private readonly pool: FilePool,
  ) {}

  /** Physical offset through which every record is indexed. */
  get indexedThrough(): number {
    return this.files.at(-1)?.endPhyOffset ?? 0;
  }

  get isEmpty(): boolean {
    return this.files.length === 0;
  }

  /** Opens the index files; drops an invalid one and everything after it. */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const starts = (await readdir(this.dir))
      .map(parseOffsetFileName)
      .filter((n): n is number => n !== undefined)
      .sort((a, b) => a - b);
    for (let i = 0; i < starts.length; i++) {
      const f = await IndexFile.open(this.dir, starts[i]!, this.pool).catch(() => undefined);
      if (!f) {
        this.logger.warn(
          { file: starts[i] },
          'index: invalid file header; dropping it and later files',
        );
        for (let j = i; j < starts.length; j++)
          await unlink(join(this.dir, offsetFileName(starts[j]!))).catch(() => undefined);
        break;
      }
      this.files.push(f);
    }
    for (let i = 0; i < this.files.length; i++) {
      const f = this.files[i]!;
      if (f.sealed) continue;
      if (f.slotsOnDisk && i === this.files.length - 1) await f.loadSlots();
      else await f.rebuildSlots();
      // A file followed by another was full: seal it (its slots get written at the next flush).
      if (i < this.files.length - 1) f.seal();
    }
  }

  private prefixHash(topic: string): number {
    let h = this.prefixHashes.get(topic);
    if (h === undefined) {
      h = javaStringHash('#', javaStringHash(topic));
      if (this.prefixHashes.size > 65536) this.prefixHashes.clear();
      this.prefixHashes.set(topic, h);
    }
    return h;
  }

  /** Hash of `topic#key`, as RocketMQ's buildKey(topic, key).hashCode(). */
  keyHash(topic: string, key: string): number {
    return javaStringHash(key, this.prefixHash(topic));
  }

  /**
   * Indexes one record (synchronous, in memory). Records at or below
   * indexedThrough are skipped (re-dispatch after a crash).
   */
  putRecord(
    topic: string,
    keys: readonly string[],
    messageId: string,
    physicalOffset: number,
    size: number,
    storeTimestamp: number,
  ): void {
    let file = this.files.at(-1);
    if (file && physicalOffset < file.endPhyOffset) return;
    const needed = keys.length + (messageId.length > 0 ? 1 : 0);
    if (!file || file.sealed || file.count + needed > file.maxEntries) {
      if (file && !file.sealed) file.seal();
      file = IndexFile.create(this.dir, physicalOffset, this.slotCount, this.maxEntries, this.pool);
      this.files.push(file);
      this.kickWrite(true);
    }
    const prefix = this.prefixHash(topic);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (key.length > 0) file.put(javaStringHash(key, prefix), physicalOffset, storeTimestamp);
    }
    if (messageId.length > 0)
      file.put(javaStringHash(messageId, prefix), physicalOffset, storeTimestamp);
    file.endPhyOffset = physicalOffset + size;
    if (file.pendingBytes >= WRITE_THRESHOLD_BYTES) this.kickWrite(false);
  }

  private kickWrite(full: boolean): void {
    if (this.writing) return;
    this.writing = true;
    const run = full ? this.flush() : this.files.at(-1)!.writePending();
    run
      .catch((err) => this.logger.error({ err }, 'index write failed'))
      .finally(() => {
        this.writing = false;
      });
  }

  /** Writes every file's pending entries, seals, headers; fdatasyncs. */
  async flush(): Promise<void> {
    for (const f of [...this.files]) {
      if (f.pendingBytes > 0 || f.sealed || f === this.files.at(-1)) await f.flush();
    }
  }

  /**
   * Physical offsets of records whose `topic#key` hash matches, newest first
   * (callers re-check the key on the record: hashes collide).
   */
  async lookup(
    topic: string,
    key: string,
    max: number,
    beginMs: number,
    endMs: number,
  ): Promise<number[]> {
    const hash = this.keyHash(topic, key);
    const out: number[] = [];
    for (let i = this.files.length - 1; i >= 0 && out.length < max; i--) {
      await this.files[i]!.lookup(hash, beginMs, endMs, max, out);
    }
    return out;
  }

  /**
   * Recovery: the commitlog now ends at `end`. Files starting at or past it
   * go; a sealed file running past it goes too (its records are re-indexed from
   * its begin offset); the file being filled is cut back.
   */
  async truncatePast(end: number): Promise<void> {
    while (this.files.length > 0) {
      const f = this.files.at(-1)!;
      if (f.endPhyOffset <= end) break;
      if (f.beginPhyOffset >= end || !f.hasSlotsInMemory) {
        this.logger.warn(
          { file: f.path, end },
          'index: dropping a file that runs past the commitlog end',
        );
        this.files.pop();
        await f.destroy();
        continue;
      }
      await f.truncatePast(end);
      break;
    }
  }

  /** Retention: deletes files whose records are all below minPhysicalOffset (never the last). */
  async deleteFilesBelow(minPhysicalOffset: number): Promise<number> {
    let deleted = 0;
    while (this.files.length > 1 && this.files[0]!.endPhyOffset <= minPhysicalOffset) {
      const f = this.files.shift()!;
      await f.destroy();
      deleted++;
    }
    return deleted;
  }

  async close(): Promise<void> {
    await this.flush();
    // A clean close keeps the active file's slot table, so the next start need not rebuild it.
    await this.files.at(-1)?.flush(true);
    for (const f of this.files) await f.close();
  }
}
