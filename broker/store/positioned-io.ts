/**
 * Positioned file I/O on raw descriptors (libuv thread pool, callback API
 * wrapped in promises: cheaper per call than FileHandle). Every read and write
 * names its file position, so nothing depends on a shared file cursor. Only
 * the *Sync functions block the event loop; they are for small page-cache
 * copies (see CommitLog.read, the consume-state journal), where one syscall
 * costs a few µs and the thread-pool round trip of an async one costs several
 * times that in CPU.
 */
import fs from 'node:fs';
import { errors } from '../../common/errors.js';

export function openFile(path: string, flags: string | number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.open(path, flags, 0o644, (err, fd) => (err ? reject(err) : resolve(fd)));
  });
}

export function closeFile(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.close(fd, (err) => (err ? reject(err) : resolve()));
  });
}

function readOnce(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/**
 * Reads up to `len` bytes at file position `pos` into buf[off…]. Loops on short
 * reads; answers fewer bytes only at end of file.
 */
export async function readAt(
  fd: number,
  buf: Buffer,
  off: number,
  len: number,
  pos: number,
): Promise<number> {
  let done = 0;
  while (done < len) {
    const n = await readOnce(fd, buf, off + done, len - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** readAt without the thread pool: blocks until the bytes are copied. */
export function readAtSync(fd: number, buf: Buffer, off: number, len: number, pos: number): number {
  let done = 0;
  while (done < len) {
    const n = fs.readSync(fd, buf, off + done, len - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function writevOnce(fd: number, bufs: Buffer[], pos: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.writev(fd, bufs, pos, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** The bytes of `bufs` past the first `written` (after a short write). */
function unwritten(bufs: Buffer[], written: number): Buffer[] {
  let skip = written;
  const rest: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    rest.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return rest;
}

function bytesOf(bufs: Buffer[]): number {
  let total = 0;
  for (const b of bufs) total += b.length;
  return total;
}

function wroteNothing(pos: number): Error {
  return errors.internal(`writev wrote nothing at file position ${pos}`);
}

/** Writes all buffers back to back at file position `pos` (one writev; loops on short writes). */
export async function writevAt(fd: number, bufs: Buffer[], pos: number): Promise<void> {
  const total = bytesOf(bufs);
  let written = await writevOnce(fd, bufs, pos);
  // Short writes are rare on regular files (disk full, signals): continue from where it stopped.
  while (written < total) {
    const n = await writevOnce(fd, unwritten(bufs, written), pos + written);
    if (n === 0) throw wroteNothing(pos + written);
    written += n;
  }
}

/** writevAt without the thread pool: blocks until every byte is written; answers the byte count. */
export function writevAtSync(fd: number, bufs: Buffer[], pos: number): number {
  const total = bytesOf(bufs);
  let written = fs.writevSync(fd, bufs, pos);
  while (written < total) {
    const n = fs.writevSync(fd, unwritten(bufs, written), pos + written);
    if (n === 0) throw wroteNothing(pos + written);
    written += n;
  }
  return total;
}

export function writeAt(fd: number, buf: Buffer, pos: number): Promise<void> {
  return writevAt(fd, [buf], pos);
}

export function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()));
  });
}

export function ftruncate(fd: number, len: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.ftruncate(fd, len, (err) => (err ? reject(err) : resolve()));
  });
}

export function fileSize(fd: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st.size)));
  });
}

/** fsyncs a directory so a file created or removed in it survives a power cut. */
export async function fsyncDirectory(path: string): Promise<void> {
  const fd = await openFile(path, 'r');
  try {
    await new Promise<void>((resolve, reject) => {
      fs.fsync(fd, (err) => (err ? reject(err) : resolve()));
    });
  } finally {
    await closeFile(fd);
  }
}

/** Zero-padded 20-digit file name of an offset, as RocketMQ names its files. */
export function offsetFileName(offset: number): string {
  return String(offset).padStart(20, '0');
}

/** Inverse of offsetFileName; undefined for names that are not 20 digits. */
export function parseOffsetFileName(name: string): number | undefined {
  if (!/^\d{20}$/.test(name)) return undefined;
  const n = Number(name);
  return Number.isSafeInteger(n) ? n : undefined;
}
