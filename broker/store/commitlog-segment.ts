/**
 * One commitlog segment: a file of at most mapedFileSizeCommitLog bytes named by
 * the 20-digit physical offset of its first byte. Files are not preallocated;
 * a segment's length is the bytes written to it, and a full one ends with a
 * blank record, so its length is then exactly the segment size.
 *
 * Only the descriptor and a few numbers are kept in memory. Reads are
 * positioned reads; a retention delete waits for reads in flight before the
 * descriptor is closed.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errors } from '../../common/errors.js';
import {
  closeFile,
  fdatasync,
  fileSize,
  ftruncate,
  offsetFileName,
  openFile,
  readAt,
  writevAt,
} from './positioned-io.js';

export class CommitLogSegment {
  readonly path: string;
  /** -1 until opened (a new segment is opened by the writer, off the hot path). */
  private fd = -1;
  private opening: Promise<void> | undefined;
  /** Bytes in the file (written, not necessarily flushed). */
  length = 0;
  /** Store timestamp of the first record, 0 when unknown (empty). Used for retention age. */
  firstStoreTimestamp = 0;
  private inflight = 0;
  private deleted = false;
  private closed = false;

  constructor(
    dir: string,
    /** Physical offset of the first byte. */
    readonly start: number,
    readonly capacity: number,
  ) {
    this.path = join(dir, offsetFileName(start));
  }

  get end(): number {
    return this.start + this.capacity;
  }

  /** Opens an existing file (at load) and learns its length. */
  async openExisting(): Promise<void> {
    this.fd = await openFile(this.path, 'r+');
    this.length = await fileSize(this.fd);
  }

  /** Creates the file (truncating a stale one); idempotent. */
  ensureCreated(): Promise<void> {
    if (this.fd >= 0) return Promise.resolve();
    this.opening ??= openFile(this.path, 'w+').then((fd) => {
      this.fd = fd;
    });
    return this.opening;
  }

  get isOpen(): boolean {
    return this.fd >= 0 && !this.closed;
  }

  /** Writes buffers back to back at segment-relative position `pos` (one writev). */
  write(bufs: Buffer[], pos: number, bytes: number): Promise<void> {
    // No await before the writev when open: the write must reach the thread
    // pool before the caller's queued callbacks run.
    if (this.fd >= 0) return this.writeOpen(bufs, pos, bytes);
    return this.ensureCreated().then(() => this.writeOpen(bufs, pos, bytes));
  }

  private async writeOpen(bufs: Buffer[], pos: number, bytes: number): Promise<void> {
    await writevAt(this.fd, bufs, pos);
    if (pos + bytes > this.length) this.length = pos + bytes;
  }

  /** Positioned read at segment-relative `pos`; answers bytes read (fewer at end of file). */
  async read(buf: Buffer, off: number, len: number, pos: number): Promise<number> {
    if (this.deleted || this.fd < 0) {
      throw errors.illegalOffset(`commitlog segment ${this.start} is not readable (deleted)`);
    }
    this.inflight++;
    try {
      return await readAt(this.fd, buf, off, len, pos);
    } finally {
      this.inflight--;
      if (this.deleted && this.inflight === 0) await this.closeFd();
    }
  }

  async sync(): Promise<void> {
    if (this.fd < 0 || this.closed) return;
    this.inflight++;
    try {
      await fdatasync(this.fd);
    } finally {
      this.inflight--;
      if (this.deleted && this.inflight === 0) await this.closeFd();
    }
  }

  /** Cuts the file to `len` bytes (recovery, failed writes). */
  async truncate(len: number): Promise<void> {
    await this.ensureCreated();
    await ftruncate(this.fd, len);
    this.length = len;
  }

  async close(): Promise<void> {
    await this.opening?.catch(() => undefined);
    await this.closeFd();
  }

  /** Unlinks the file; the descriptor closes once reads in flight finish. */
  async destroy(): Promise<void> {
    this.deleted = true;
    await this.opening?.catch(() => undefined);
    await unlink(this.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    if (this.inflight === 0) await this.closeFd();
  }

  private async closeFd(): Promise<void> {
    if (this.fd < 0 || this.closed) return;
    this.closed = true;
    await closeFile(this.fd);
  }
}
