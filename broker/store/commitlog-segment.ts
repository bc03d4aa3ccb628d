/**
 * One commitlog segment: a file of at most mapedFileSizeCommitLog bytes named by
 * the 20-digit physical offset of its first byte. Files are not preallocated;
 * a segment's length is the bytes written to it, and a full one ends with a
 * blank record, so its length is then exactly the segment size.
 *
 * Only a few numbers are kept in memory; the descriptor comes from the store's
 * file pool. The segment being filled is pinned open (appends write without
 * waiting for an open); a full one is closed while idle when the pool needs
 * room, and reopened by the next read. Reads are positioned reads; a retention
 * delete waits for reads in flight before the descriptor is closed.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errors } from '../../common/errors.js';
import { type FilePool, PooledFile } from './file-pool.js';
import { offsetFileName } from './positioned-io.js';

export class CommitLogSegment {
  readonly path: string;
  private readonly file: PooledFile;
  /** Bytes in the file (written, not necessarily flushed). */
  length = 0;
  /** Store timestamp of the first record, 0 when unknown (empty). Used for retention age. */
  firstStoreTimestamp = 0;

  /**
   * @param exists the file is on disk (found at load); otherwise the first
   *   write creates it (truncating a stale file of that name).
   */
  constructor(
    dir: string,
    /** Physical offset of the first byte. */
    readonly start: number,
    readonly capacity: number,
    pool: FilePool,
    exists: boolean,
  ) {
    this.path = join(dir, offsetFileName(start));
    this.file = new PooledFile(this.path, pool, exists ? undefined : 'w+');
    if (!exists) this.file.pin();
  }

  get end(): number {
    return this.start + this.capacity;
  }

  /** Learns an existing file's length (at load; nothing is opened). Pins it if it is not full. */
  async loadLength(): Promise<void> {
    this.length = (await stat(this.path)).size;
    if (this.length < this.capacity) this.file.pin();
  }

  /** Writes buffers back to back at segment-relative position `pos` (one writev). */
  /**
   * Writes `bufs` at segment-relative `pos`. `now`: on this thread when the
   * file is open (see CommitLog's SYNC_WRITE_MAX_BYTES); the promise is then
   * settled already. Otherwise an open (pinned) segment hands the writev to
   * the thread pool within this call: it must reach the thread pool before
   * the caller's queued callbacks run.
   */
  write(bufs: Buffer[], pos: number, bytes: number, now = false): Promise<void> {
    if (now) {
      try {
        if (this.file.writevNow(bufs, pos)) {
          this.wrote(pos, bytes);
          return Promise.resolve();
        }
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.file.writev(bufs, pos).then(() => this.wrote(pos, bytes));
  }

  private wrote(pos: number, bytes: number): void {
    if (pos + bytes > this.length) this.length = pos + bytes;
    if (this.length >= this.capacity) this.file.unpin();
  }

  /**
   * Positioned read at segment-relative `pos`; answers bytes read (fewer at end
   * of file). `hot`: the bytes are likely in the page cache, so read them on
   * this thread when the descriptor is open (see CommitLog.read).
   */
  async read(buf: Buffer, off: number, len: number, pos: number, hot = false): Promise<number> {
    if (this.file.isDeleted) {
      throw errors.illegalOffset(`commitlog segment ${this.start} is not readable (deleted)`);
    }
    return (
      (hot ? this.file.readNow(buf, off, len, pos) : undefined) ??
      this.file.read(buf, off, len, pos)
    );
  }

  /** fdatasync of what was written since the last one (and, for a new file, its directory entry). */
  async sync(): Promise<void> {
    await this.file.sync();
  }

  /** Cuts the file to `len` bytes (recovery, failed writes); a cut segment is being filled again. */
  async truncate(len: number): Promise<void> {
    await this.file.truncate(len);
    this.length = len;
    if (len < this.capacity) this.file.pin();
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  /** Unlinks the file; the descriptor closes once reads in flight finish. */
  async destroy(): Promise<void> {
    await this.file.destroy();
  }
}
