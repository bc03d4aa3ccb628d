/**
 * Open file descriptors of the store's files, bounded.
 *
 * A store holds many files — commitlog segments, a few consume queue files
 * per topic/queue, index files — but touches few of them at a time. A
 * PooledFile opens its descriptor on demand; a FilePool keeps at most
 * `maxOpen` of them open (least recently used closed first), apart from
 * pinned files, which stay open: the commitlog segment and index file being
 * filled. A descriptor is only closed when it is idle: no operation in flight
 * and nothing written since its last fdatasync (so an fdatasync error can
 * never be lost with a closed descriptor). A file written but not yet synced
 * therefore stays open past the bound until its sync; every store file is
 * synced periodically.
 *
 * New files: the directory entry of a file this process created is made
 * durable (directory fsync) by the file's first sync(), so a file whose data a
 * sync reports durable also survives a power cut.
 */
import { constants } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errors } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import {
  closeFile,
  fdatasync,
  fileSize,
  fsyncDirectory,
  ftruncate,
  openFile,
  readAt,
  readAtSync,
  writeAt,
  writevAt,
  writevAtSync,
} from './positioned-io.js';

/** Busy or unsynced files one trim() passes over at most before giving up. */
const TRIM_SCAN_SKIPS = 64;

export class FilePool {
  /** Open, unpinned files, least recently used first (a Set keeps insertion order). */
  private readonly lru = new Set<PooledFile>();

  constructor(
    /** Unpinned descriptors kept open at most (a file being synced may go over briefly). */
    readonly maxOpen: number,
    private readonly logger: Logger,
  ) {}

  /** Unpinned files open now. */
  get openCount(): number {
    return this.lru.size;
  }

  /** @internal A file's descriptor was used (it becomes the most recently used). */
  touched(file: PooledFile): void {
    this.lru.delete(file);
    this.lru.add(file);
    if (this.lru.size > this.maxOpen) this.trim();
  }

  /** @internal The file is pinned or closed for good. */
  forget(file: PooledFile): void {
    this.lru.delete(file);
  }

  /** Closes idle descriptors, least recently used first, until at most maxOpen stay open. */
  trim(): void {
    // Files in use or not yet synced are skipped; a scan never looks at more than a few
    // of them (a burst of writes must not make each use walk the whole list). They move
    // to the recent end once used again, so later trims get past them.
    let skipped = 0;
    for (const file of this.lru) {
      if (this.lru.size <= this.maxOpen || skipped >= TRIM_SCAN_SKIPS) break;
      if (!file.idle) {
        skipped++;
        continue;
      }
      this.lru.delete(file);
      file
        .evict()
        .catch((err: unknown) =>
          this.logger.warn({ err, file: file.path }, 'file pool: closing a descriptor failed'),
        );
    }
  }
}

type FileState = 'live' | 'closed' | 'deleted';

/** A store file whose descriptor a FilePool opens on demand and may close while idle. */
export class PooledFile {
  private fd = -1;
  private opening: Promise<number> | undefined;
  private users = 0;
  private pinned = false;
  /** Writes (and truncations) done, and how many of them a finished fdatasync covers. */
  private writes = 0;
  private synced = 0;
  private needsDirectorySync: boolean;
  private state: FileState = 'live';

  /**
   * @param createFlags open flags that create the file (e.g. 'w+'), for a file
   *   not on disk yet; later opens, and every open of an existing file, use O_RDWR.
   */
  constructor(
    readonly path: string,
    private readonly pool: FilePool,
    private createFlags?: string | number,
  ) {
    this.needsDirectorySync = createFlags !== undefined;
  }

  get isOpen(): boolean {
    return this.fd >= 0;
  }

  get isDeleted(): boolean {
    return this.state === 'deleted';
  }

  /** Written since the last finished fdatasync. */
  get dirty(): boolean {
    return this.writes !== this.synced || this.needsDirectorySync;
  }

  /** Open, unused, unpinned and clean: closing it loses nothing. */
  get idle(): boolean {
    return (
      this.fd >= 0 && this.users === 0 && this.opening === undefined && !this.pinned && !this.dirty
    );
  }

  /** Keeps the descriptor open (a file being filled). */
  pin(): void {
    this.pinned = true;
    this.pool.forget(this);
  }

  /** The file is complete: its descriptor may be closed while idle. */
  unpin(): void {
    if (!this.pinned) return;
    this.pinned = false;
    if (this.fd >= 0 && this.state === 'live') this.pool.touched(this);
  }

  /**
   * Runs `op` with an open descriptor (opening it if needed). When the file is
   * open, `op` starts synchronously, within this call.
   */
  async use<T>(op: (fd: number) => Promise<T>): Promise<T> {
    if (this.state !== 'live') {
      throw errors.illegalOffset(`store file ${this.path} is ${this.state}`);
    }
    this.users++;
    try {
      const fd = this.fd >= 0 ? this.fd : await this.open();
      return await op(fd);
    } finally {
      this.users--;
      if (this.users === 0) this.released();
    }
  }

  private open(): Promise<number> {
    this.opening ??= openFile(this.path, this.createFlags ?? constants.O_RDWR).then(
      (fd) => {
        this.opening = undefined;
        this.createFlags = undefined;
        this.fd = fd;
        return fd;
      },
      (err: unknown) => {
        this.opening = undefined;
        throw err;
      },
    );
    return this.opening;
  }

  private released(): void {
    if (this.state !== 'live') {
      this.closeFd().catch(() => undefined);
    } else if (!this.pinned && this.fd >= 0) {
      this.pool.touched(this);
    }
  }

  /** Positioned read (see positioned-io readAt). */
  read(buf: Buffer, off: number, len: number, pos: number): Promise<number> {
    return this.use((fd) => readAt(fd, buf, off, len, pos));
  }

  /**
   * Positioned read on the calling thread (readAtSync), when the descriptor is
   * open; undefined when it is not (the caller reads with read() instead,
   * which opens it).
   */
  readNow(buf: Buffer, off: number, len: number, pos: number): number | undefined {
    if (this.state !== 'live' || this.fd < 0) return undefined;
    const n = readAtSync(this.fd, buf, off, len, pos);
    if (!this.pinned && this.users === 0) this.pool.touched(this);
    return n;
  }

  /**
   * writev on the calling thread (writevAtSync) when the descriptor is open,
   * answering true once every byte is written; false when it is not open
   * (nothing written: the caller uses writev()).
   */
  writevNow(bufs: Buffer[], pos: number): boolean {
    if (this.state !== 'live' || this.fd < 0) return false;
    writevAtSync(this.fd, bufs, pos);
    this.writes++;
    return true;
  }

  /** Positioned write of one buffer. */
  write(buf: Buffer, pos: number): Promise<void> {
    return this.use(async (fd) => {
      await writeAt(fd, buf, pos);
      this.writes++;
    });
  }

  /** Positioned write of buffers back to back (one writev when open: no await before it). */
  writev(bufs: Buffer[], pos: number): Promise<void> {
    return this.use(async (fd) => {
      await writevAt(fd, bufs, pos);
      this.writes++;
    });
  }

  truncate(len: number): Promise<void> {
    return this.use(async (fd) => {
      await ftruncate(fd, len);
      this.writes++;
    });
  }

  size(): Promise<number> {
    return this.use((fd) => fileSize(fd));
  }

  /**
   * fdatasync, if anything was written since the last one; the first sync of
   * a file this process created also fsyncs its directory. Answers whether it synced.
   */
  async sync(): Promise<boolean> {
    if (!this.dirty || this.state !== 'live') return false;
    const upto = this.writes;
    const directory = this.needsDirectorySync;
    await this.use((fd) => fdatasync(fd));
    if (directory) {
      await fsyncDirectory(dirname(this.path));
      this.needsDirectorySync = false;
    }
    if (upto > this.synced) this.synced = upto;
    // Clean now: the pool may close it if it is over its bound.
    if (!this.pinned) this.pool.trim();
    return true;
  }

  /** @internal Closes an idle descriptor (the pool's choice); the next use reopens it. */
  async evict(): Promise<void> {
    if (!this.idle && this.state === 'live') return;
    await this.closeFd();
  }

  /** Closes the file for good (the descriptor once operations in flight finish). */
  async close(): Promise<void> {
    if (this.state === 'live') this.state = 'closed';
    await this.finish();
  }

  /** Unlinks the file; the descriptor closes once operations in flight finish. */
  async destroy(): Promise<void> {
    this.state = 'deleted';
    await this.finish();
    await unlink(this.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  private async finish(): Promise<void> {
    this.pool.forget(this);
    await this.opening?.catch(() => undefined);
    if (this.users === 0) await this.closeFd();
  }

  private async closeFd(): Promise<void> {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    await closeFile(fd);
  }
}
