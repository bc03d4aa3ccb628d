/**
 * The checkpoint file: how far each part of the store is known durable, read
 * at start to decide where recovery begins.
 *
 *    0  physicMsgTimestamp int64   store timestamp of the last flushed commitlog record
 *    8  logicsMsgTimestamp int64   … of the last record in flushed consume queues
 *   16  indexMsgTimestamp  int64   … of the last record in the flushed index
 *   24  physicalOffset     int64   commitlog bytes fdatasync'd (a record boundary)
 *   32  logicsOffset       int64   consume queues hold (durably) every record below this
 *   40  indexOffset        int64   the index holds (durably) every record below this
 *   48  magic int32 0x534C4350 ("SLCP")
 *   52  crc32 of bytes [0, 52)
 *
 * Written in place with one 56-byte positioned write and fdatasync; a torn or
 * missing checkpoint fails its CRC and recovery falls back to scanning.
 */

import { constants } from 'node:fs';
import { crc32 } from 'node:zlib';
import { readInt64, writeInt64 } from './commitlog-record.js';
import { closeFile, fdatasync, openFile, readAt, writeAt } from './positioned-io.js';

const CHECKPOINT_MAGIC = 0x534c4350;
export const CHECKPOINT_BYTES = 56;

export interface CheckpointData {
  physicMsgTimestamp: number;
  logicsMsgTimestamp: number;
  indexMsgTimestamp: number;
  physicalOffset: number;
  logicsOffset: number;
  indexOffset: number;
}

export function encodeCheckpoint(d: CheckpointData): Buffer {
  const b = Buffer.alloc(CHECKPOINT_BYTES);
  writeInt64(b, d.physicMsgTimestamp, 0);
  writeInt64(b, d.logicsMsgTimestamp, 8);
  writeInt64(b, d.indexMsgTimestamp, 16);
  writeInt64(b, d.physicalOffset, 24);
  writeInt64(b, d.logicsOffset, 32);
  writeInt64(b, d.indexOffset, 40);
  b.writeUInt32BE(CHECKPOINT_MAGIC, 48);
  b.writeUInt32BE(crc32(b.subarray(0, 52)), 52);
  return b;
}

/** Decodes a checkpoint; undefined when torn, missing or not one. */
export function decodeCheckpoint(b: Buffer): CheckpointData | undefined {
  if (b.length < CHECKPOINT_BYTES) return undefined;
  if (b.readUInt32BE(48) !== CHECKPOINT_MAGIC || crc32(b.subarray(0, 52)) !== b.readUInt32BE(52))
    return undefined;
  return {
    physicMsgTimestamp: readInt64(b, 0),
    logicsMsgTimestamp: readInt64(b, 8),
    indexMsgTimestamp: readInt64(b, 16),
    physicalOffset: readInt64(b, 24),
    logicsOffset: readInt64(b, 32),
    indexOffset: readInt64(b, 40),
  };
}

export class Checkpoint {
  private fd = -1;

  constructor(readonly path: string) {}

  /** Opens (creating) the file and answers what it holds, if valid. */
  async load(): Promise<CheckpointData | undefined> {
    this.fd = await openFile(this.path, constants.O_RDWR | constants.O_CREAT);
    const b = Buffer.alloc(CHECKPOINT_BYTES);
    const n = await readAt(this.fd, b, 0, CHECKPOINT_BYTES, 0);
    return n === CHECKPOINT_BYTES ? decodeCheckpoint(b) : undefined;
  }

  async write(d: CheckpointData): Promise<void> {
    await writeAt(this.fd, encodeCheckpoint(d), 0);
    await fdatasync(this.fd);
  }

  async close(): Promise<void> {
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      await closeFile(fd);
    }
  }
}
