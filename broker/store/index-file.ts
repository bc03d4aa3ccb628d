/**
 * One index file: a hash table from key hashes to commitlog offsets, with
 * chained entries, as RocketMQ's IndexFile. Keys are `topic#key` (KEYS) and
 * `topic#messageId`; hashes are Java's String.hashCode.
 *
 * File layout, big-endian:
 *
 *    header (64 bytes)
 *      0  magic int32 0x534C4931 ("SLI1")   4  flags int32 (bit 0: sealed, bit 1: slots valid)
 *      8  beginTimestamp int64              16 endTimestamp int64
 *     24  beginPhyOffset int64              32 endPhyOffset int64
 *     40  slotCount int32                   44 maxEntries int32
 *     48  entryCount int32                  52 reserved (8)
 *     60  crc32 of bytes [0, 60)
 *    slots: slotCount × int32 — number of the newest entry of the slot, 0 = empty
 *    entries: entry n (1-based) at 64 + slotCount×4 + (n−1)×20
 *      0  keyHash int32   4  phyOffset int64   12 timeDiff int32 (s since beginTimestamp)
 *     16  prevEntry int32 (older entry of the same slot, 0 = end of chain; always < n)
 *
 * endPhyOffset is the commitlog offset through which every record is indexed
 * in this file or an earlier one (the end of the last record dispatched).
 *
 * Durability: entries are append-only and the header (count, endPhyOffset) is
 * written after the entries it covers, so after a crash the header describes a
 * valid prefix. The slot table of the file being filled lives in memory (Node
 * has no mmap) and is written when the file is sealed, and at a clean close
 * (flag bit 1, valid for the header's entryCount; the next flush clears it).
 * After a crash an unsealed file's slots are rebuilt from its entries. Sealed files keep nothing in
 * memory: lookups read slots and entries with positioned reads.
 */

import { endianness } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { type FilePool, PooledFile } from './file-pool.js';
import { offsetFileName } from './positioned-io.js';

export const INDEX_HEADER_BYTES = 64;
export const INDEX_ENTRY_BYTES = 20;
const INDEX_MAGIC = 0x534c4931;
const FLAG_SEALED = 1;
/** An unsealed file's slot table on disk is valid for the header's entryCount (written at clean close). */
const FLAG_SLOTS_VALID = 2;
const LITTLE_ENDIAN = endianness() === 'LE';
const TWO_32 = 4294967296;
/** Longest chain walked per lookup (guards against pathological files). */
const MAX_CHAIN_STEPS = 100_000;
/** Entries read per batch when rebuilding slots. */
const REBUILD_CHUNK_ENTRIES = 50_000;

export function slotOf(hash: number, slotCount: number): number {
  // RocketMQ: Math.abs(hashCode) (with MIN_VALUE mapped to 0) % slotCount.
  const positive = hash === -2147483648 ? 0 : Math.abs(hash);
  return positive % slotCount;
}

export class IndexFile {
  readonly path: string;
  private readonly file: PooledFile;
  beginTimestamp = 0;
  endTimestamp = 0;
  endPhyOffset: number;
  /** Entries put (1..count). */
  count = 0;
  /** Entries present in the file (1..writtenCount). */
  private writtenCount = 0;
  sealed = false;
  private sealWritten = false;
  /** Set at open when a clean close left a valid slot table (load it instead of rebuilding). */
  slotsOnDisk = false;
  /** Slot table while the file is being filled (and until its seal is written). */
  private slots: Int32Array | undefined;
  /** Entries writtenCount+1..count, not yet in the file. */
  private pending: Buffer = Buffer.alloc(0);
  private busy: Promise<void> = Promise.resolve();

  /** @param file the file (not on disk yet for a new index file: created with 'w+' at its first write). */
  private constructor(
    file: PooledFile,
    readonly beginPhyOffset: number,
    readonly slotCount: number,
    readonly maxEntries: number,
  ) {
    this.file = file;
    this.path = file.path;
    this.endPhyOffset = beginPhyOffset;
  }

  private get entriesAt(): number {
    return INDEX_HEADER_BYTES + this.slotCount * 4;
  }

  /** A new, empty file (created on disk at its first flush; pinned open until sealed). */
  static create(
    dir: string,
    beginPhyOffset: number,
    slotCount: number,
    maxEntries: number,
    pool: FilePool,
  ): IndexFile {
    const file = new PooledFile(join(dir, offsetFileName(beginPhyOffset)), pool, 'w+');
    file.pin();
    const f = new IndexFile(file, beginPhyOffset, slotCount, maxEntries);
    f.slots = new Int32Array(slotCount);
    return f;
  }

  /** Opens an existing file; undefined when its header is not valid. */
  static async open(
    dir: string,
    beginPhyOffset: number,
    pool: FilePool,
  ): Promise<IndexFile | undefined> {
    const file = new PooledFile(join(dir, offsetFileName(beginPhyOffset)), pool);
    const h = Buffer.alloc(INDEX_HEADER_BYTES);
    const n = await file.read(h, 0, INDEX_HEADER_BYTES, 0).catch(async (err: unknown) => {
      await file.close();
      throw err;
    });
    if (
      n < INDEX_HEADER_BYTES ||
      h.readUInt32BE(0) !== INDEX_MAGIC ||
      crc32(h.subarray(0, 60)) !== h.readUInt32BE(60) ||
      readInt64(h, 24) !== beginPhyOffset
    ) {
      await file.close();
      return undefined;
    }
    const f = new IndexFile(file, beginPhyOffset, h.readInt32BE(40), h.readInt32BE(44));
    const flags = h.readInt32BE(4);
    f.sealed = (flags & FLAG_SEALED) !== 0;
    f.sealWritten = f.sealed;
    f.slotsOnDisk = !f.sealed && (flags & FLAG_SLOTS_VALID) !== 0;
    f.beginTimestamp = readInt64(h, 8);
    f.endTimestamp = readInt64(h, 16);
    f.endPhyOffset = readInt64(h, 32);
    f.count = h.readInt32BE(48);
    f.writtenCount = f.count;
    if (!f.sealWritten) file.pin(); // still being filled (or its seal is not written yet)
    return f;
  }

  get isFull(): boolean {
    return this.count >= this.maxEntries;
  }

  get hasSlotsInMemory(): boolean {
    return this.slots !== undefined;
  }

  /** Loads the slot table a clean close wrote (an unsealed file at load; see slotsOnDisk). */
  async loadSlots(): Promise<void> {
    const table = Buffer.allocUnsafe(this.slotCount * 4);
    if ((await this.file.read(table, 0, table.length, INDEX_HEADER_BYTES)) < table.length) {
      await this.rebuildSlots();
      return;
    }
    if (LITTLE_ENDIAN) table.swap32();
    this.slots = new Int32Array(table.buffer, table.byteOffset, this.slotCount);
  }

  /** Rebuilds the in-memory slot table from the entries (an unsealed file at load). */
  async rebuildSlots(): Promise<void> {
    const slots = new Int32Array(this.slotCount);
    const buf = Buffer.allocUnsafe(REBUILD_CHUNK_ENTRIES * INDEX_ENTRY_BYTES);
    for (let n = 1; n <= this.writtenCount; ) {
      const k = Math.min(REBUILD_CHUNK_ENTRIES, this.writtenCount - n + 1);
      const got = await this.file.read(buf, 0, k * INDEX_ENTRY_BYTES, this.entryPosition(n));
      if (got < k * INDEX_ENTRY_BYTES) {
        // The header promised more than the file holds: keep the valid prefix.
        this.writtenCount = n - 1 + Math.floor(got / INDEX_ENTRY_BYTES);
        this.count = this.writtenCount;
      }
      const whole = Math.floor(got / INDEX_ENTRY_BYTES);
      for (let i = 0; i < whole; i++)
        slots[slotOf(buf.readInt32BE(i * INDEX_ENTRY_BYTES), this.slotCount)] = n + i;
      if (whole < k) break;
      n += k;
    }
    this.slots = slots;
  }

  private entryPosition(n: number): number {
    return this.entriesAt + (n - 1) * INDEX_ENTRY_BYTES;
  }

  /** Adds an entry (in memory). The file must not be full or sealed. */
  put(hash: number, physicalOffset: number, storeTimestamp: number): void {
    const slots = this.slots!;
    if (this.count === 0) {
      this.beginTimestamp = storeTimestamp;
    }
    const slot = slotOf(hash, this.slotCount);
    const n = ++this.count;
    const at = (n - this.writtenCount - 1) * INDEX_ENTRY_BYTES;
    if (at + INDEX_ENTRY_BYTES > this.pending.length) {
      const bigger = Buffer.allocUnsafe(Math.max(4096, this.pending.length * 2));
      this.pending.copy(bigger, 0, 0, at);
      this.pending = bigger;
    }
    const p = this.pending;
    p.writeInt32BE(hash, at);
    const hi = Math.floor(physicalOffset / TWO_32);
    p.writeInt32BE(hi, at + 4);
    p.writeUInt32BE(physicalOffset - hi * TWO_32, at + 8);
    p.writeInt32BE(Math.max(0, Math.floor((storeTimestamp - this.beginTimestamp) / 1000)), at + 12);
    p.writeInt32BE(slots[slot]!, at + 16);
    slots[slot] = n;
    if (storeTimestamp > this.endTimestamp) this.endTimestamp = storeTimestamp;
  }

  get pendingBytes(): number {
    return (this.count - this.writtenCount) * INDEX_ENTRY_BYTES;
  }

  /** Stops taking entries; the next flush writes the slot table and frees it from memory. */
  seal(): void {
    this.sealed = true;
  }

  private serial(task: () => Promise<void>): Promise<void> {
    const run = this.busy.then(task, task);
    this.busy = run.catch(() => undefined);
    return run;
  }

  /** Writes pending entries (no header, no sync). */
  writePending(): Promise<void> {
    return this.serial(() => this.writeEntries());
  }

  private async writeEntries(): Promise<void> {
    const n = this.count;
    const k = n - this.writtenCount;
    if (k <= 0) return;
    await this.file.write(
      this.pending.subarray(0, k * INDEX_ENTRY_BYTES),
      this.entryPosition(this.writtenCount + 1),
    );
    // Entries put during the write sit after the ones written: move them to the front.
    const rest = (this.count - n) * INDEX_ENTRY_BYTES;
    this.pending.copy(this.pending, 0, k * INDEX_ENTRY_BYTES, k * INDEX_ENTRY_BYTES + rest);
    this.writtenCount = n;
  }

  /**
   * Writes entries, then (if sealed, or `persistSlots` at a clean close) the
   * slot table, then the header; fdatasyncs. The header says the slot table is
   * valid only when this flush wrote it: any later flush clears that again.
   */
  flush(persistSlots = false): Promise<void> {
    return this.serial(async () => {
      // Decided first: a file sealed before the snapshot takes no more entries, so the
      // snapshot is final; one sealed during this flush is sealed by the next flush.
      const sealing = this.sealed && !this.sealWritten;
      const writeSlots = sealing || (persistSlots && !this.sealWritten && this.slots !== undefined);
      const through = this.endPhyOffset;
      const endTimestamp = this.endTimestamp;
      await this.writeEntries();
      const count = this.writtenCount;
      if (writeSlots) {
        const slots = this.slots!;
        const table = Buffer.allocUnsafe(this.slotCount * 4);
        table.set(new Uint8Array(slots.buffer, slots.byteOffset, this.slotCount * 4));
        if (LITTLE_ENDIAN) table.swap32();
        await this.file.write(table, INDEX_HEADER_BYTES);
      }
      const flags =
        sealing || this.sealWritten
          ? FLAG_SEALED
          : writeSlots && count === this.count
            ? FLAG_SLOTS_VALID
            : 0;
      await this.file.write(this.header(count, through, endTimestamp, flags), 0);
      await this.file.sync();
      if (sealing) {
        this.sealWritten = true;
        this.slots = undefined;
        this.pending = Buffer.alloc(0);
        this.file.unpin(); // complete: lookups reopen it on demand
      }
    });
  }

  private header(count: number, through: number, endTimestamp: number, flags: number): Buffer {
    const h = Buffer.alloc(INDEX_HEADER_BYTES);
    h.writeUInt32BE(INDEX_MAGIC, 0);
    h.writeInt32BE(flags, 4);
    writeInt64(h, this.beginTimestamp, 8);
    writeInt64(h, endTimestamp, 16);
    writeInt64(h, this.beginPhyOffset, 24);
    writeInt64(h, through, 32);
    h.writeInt32BE(this.slotCount, 40);
    h.writeInt32BE(this.maxEntries, 44);
    h.writeInt32BE(count, 48);
    h.writeUInt32BE(crc32(h.subarray(0, 60)), 60);
    return h;
  }

  /** Reads entry n (1-based) into out[0..20). */
  private async entry(n: number, out: Buffer): Promise<boolean> {
    if (n > this.writtenCount) {
      const at = (n - this.writtenCount - 1) * INDEX_ENTRY_BYTES;
      if (n > this.count) return false;
      this.pending.copy(out, 0, at, at + INDEX_ENTRY_BYTES);
      return true;
    }
    const got = await this.file.read(out, 0, INDEX_ENTRY_BYTES, this.entryPosition(n));
    return got === INDEX_ENTRY_BYTES;
  }

  private async slotHead(slot: number): Promise<number> {
    if (this.slots) return this.slots[slot]!;
    const b = Buffer.allocUnsafe(4);
    const got = await this.file.read(b, 0, 4, INDEX_HEADER_BYTES + slot * 4);
    return got === 4 ? b.readInt32BE(0) : 0;
  }

  /**
   * Physical offsets of entries with this key hash stored within
   * [beginMs − 1 s, endMs] (entry times have one-second resolution), newest
   * first, appended to `out` until it holds `max`.
   */
  async lookup(
    hash: number,
    beginMs: number,
    endMs: number,
    max: number,
    out: number[],
  ): Promise<void> {
    if (this.count === 0 || this.endTimestamp < beginMs - 1000 || this.beginTimestamp > endMs)
      return;
    const e = Buffer.allocUnsafe(INDEX_ENTRY_BYTES);
    let n = await this.slotHead(slotOf(hash, this.slotCount));
    for (
      let steps = 0;
      n > 0 && n <= this.count && out.length < max && steps < MAX_CHAIN_STEPS;
      steps++
    ) {
      if (!(await this.entry(n, e))) return;
      const prev = e.readInt32BE(16);
      if (e.readInt32BE(0) === hash) {
        const t = this.beginTimestamp + e.readInt32BE(12) * 1000;
        if (t >= beginMs - 1000 && t <= endMs) out.push(readInt64(e, 4));
      }
      if (prev >= n) return; // chains always point to older entries
      n = prev;
    }
  }

  /**
   * Recovery: drops entries whose record is at or past `end` (the commitlog was
   * cut there). Only for a file whose slots are in memory.
   */
  async truncatePast(end: number): Promise<void> {
    await this.writePending();
    const e = Buffer.allocUnsafe(INDEX_ENTRY_BYTES);
    let n = this.count;
    while (n > 0 && (await this.entry(n, e)) && readInt64(e, 4) >= end) n--;
    this.count = n;
    this.writtenCount = n;
    if (this.endPhyOffset > end) this.endPhyOffset = end;
    await this.rebuildSlots();
    await this.flush();
  }

  async close(): Promise<void> {
    await this.busy;
    await this.file.close();
  }

  async destroy(): Promise<void> {
    await this.busy;
    await this.file.destroy().catch(() => undefined);
  }
}

function writeInt64(buf: Buffer, value: number, off: number): void {
  const hi = Math.floor(value / TWO_32);
  buf.writeInt32BE(hi, off);
  buf.writeUInt32BE(value - hi * TWO_32, off + 4);
}

function readInt64(buf: Buffer, off: number): number {
  return buf.readInt32BE(off) * TWO_32 + buf.readUInt32BE(off + 4);
}
