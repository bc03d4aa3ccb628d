/**
 * Master side of one slave's Replication stream.
 *
 * Protocol (proto/sluice/v1/replication.proto):
 *  1. the slave opens the stream and sends a ReplicationAck with its max
 *     commitlog offset (the handshake);
 *  2. the master streams ReplicationData from that offset: raw commitlog
 *     bytes (whole records, never across a segment end, at most
 *     haTransferBatchSize per message), plus `metadata` whenever it changed
 *     (the config files that changed since this stream last sent them),
 *     plus an empty heartbeat every haSendHeartbeatInterval when idle;
 *  3. the slave acks what it has written (max_physical_offset), as writes
 *     complete and every haSendHeartbeatInterval.
 *
 * Back-pressure: at most `windowBytes` are sent beyond what the slave acked,
 * and a write() that returns false waits for 'drain' — memory on both sides
 * stays bounded however far behind the slave is.
 *
 * Start offset: the slave's own offset. An empty slave (offset 0) of a master
 * whose oldest segments were deleted starts at the master's minimum (a
 * segment start). A slave behind the master's minimum with data of its own
 * cannot be served: the stream ends with ILLEGAL_OFFSET.
 *
 * Handshake checks (each failure ends the stream with REPLICA_MISMATCH, logged
 * here at error level naming the offsets; the slave logs it too and retries
 * only slowly; the session never counts as in sync, so a SYNC_MASTER answers
 * SLAVE_NOT_AVAILABLE rather than acking on the slave's bytes):
 *  - segment size: the slave's mapedFileSizeCommitLog equals the master's
 *    (records never cross a segment end, so the two logs could not match);
 *  - ahead: the slave's end is past the master's (an ASYNC master lost
 *    its unflushed tail, or its store was replaced);
 *  - diverged: the slave's last record is not byte-identical (CRC32 over
 *    the whole record) to the master's record at the same offset.
 * Classic mode does not truncate a slave: an operator wipes the slave's
 * store (deploy/conf/README.md) and it catches up from zero.
 *
 * The handshake's consumer offsets are handed to the host (offset-sync.ts)
 * before anything is sent, so the master has taken the slave's progress
 * before this slave can count as in sync.
 */
import { crc32 } from 'node:zlib';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { errors } from '../../common/errors.js';
import { toGrpcError } from '../../common/errors-grpc.js';
import type { ReplicationAck__Output } from '../../common/generated/sluice/v1/ReplicationAck.js';
import type { ReplicationData } from '../../common/generated/sluice/v1/ReplicationData.js';
import type { Logger } from '../../common/logger.js';
import type { MessageStore } from '../store/index.js';
import { encodeMetadata, type MetadataSnapshot } from './metadata-snapshot.js';
import { Wakeup } from './wakeup.js';

/** Fallback poll while idle, ms (appends normally wake the pump at once). */
export const IDLE_POLL_MS = 10;

export interface SessionHost {
  store: MessageStore;
  logger: Logger;
  brokerName: string;
  /** This master's mapedFileSizeCommitLog; a slave's must equal it. */
  segmentSize: number;
  batchBytes: number;
  windowBytes: number;
  heartbeatMs: number;
  clock: () => number;
  /** The current metadata snapshot and its version (0 = none yet). */
  metadata(): { version: number; snapshot: MetadataSnapshot | undefined };
  /** A slave passed the handshake checks: take its consumer offsets (never rejects). */
  onHandshake(session: SlaveSession, ack: ReplicationAck__Output): Promise<void>;
  onAck(session: SlaveSession): void;
  /** Round trip of one data message: written to the stream → acked by the slave, ms. */
  onRoundTrip(ms: number): void;
  onClose(session: SlaveSession): void;
}

export class SlaveSession {
  readonly wake = new Wakeup();
  /** Set by the handshake. */
  slaveName = '';
  slaveId = 0;
  slaveAddr = '';
  /** Next commitlog offset to send; -1 before the handshake. */
  sendOffset = -1;
  /** Everything below this offset is on the slave. */
  acked = 0;
  lastHeardAt: number;
  private lastSentAt = 0;
  /** [end offset, time sent] of data messages not acked yet, in offset order. */
  private readonly unacked: Array<[number, number]> = [];
  private metadataSent = 0;
  /** Config file texts this slave has been sent (metadata goes as per-file deltas). */
  private readonly filesSent = new Map<string, string>();
  private readersSent = '';
  private closed = false;
  /** The handshake's checks are running (acks meanwhile are heartbeats: ignored). */
  private handshaking = false;
  readonly connectedAt: number;
  private readonly peer: string;

  constructor(
    private readonly call: ServerDuplexStream<ReplicationAck__Output, ReplicationData>,
    private readonly host: SessionHost,
  ) {
    this.connectedAt = host.clock();
    this.lastHeardAt = this.connectedAt;
    this.peer = call.getPeer();
    call.on('data', (ack: ReplicationAck__Output) => this.onAck(ack));
    call.on('end', () => this.close());
    call.on('error', () => this.close());
    call.on('cancelled', () => this.close());
    call.on('close', () => this.close());
  }

  get handshaken(): boolean {
    return this.sendOffset >= 0;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private onAck(ack: ReplicationAck__Output): void {
    if (this.closed) return;
    this.lastHeardAt = this.host.clock();
    if (!this.handshaken) {
      if (this.handshaking) return;
      this.handshaking = true;
      void this.handshake(ack).catch((err: unknown) => this.fail(err));
      return;
    }
    if (ack.max_physical_offset > this.acked) {
      this.acked = Math.min(ack.max_physical_offset, this.sendOffset);
      const now = this.host.clock();
      let n = 0;
      while (n < this.unacked.length && this.unacked[n]![0] <= this.acked) n++;
      if (n > 0) {
        this.host.onRoundTrip(now - this.unacked[n - 1]![1]);
        this.unacked.splice(0, n);
      }
      this.host.onAck(this);
      this.wake.notify();
    }
  }

  private async handshake(ack: ReplicationAck__Output): Promise<void> {
    const { store, brokerName, logger } = this.host;
    this.slaveName = ack.broker_name;
    this.slaveId = ack.broker_id;
    this.slaveAddr = ack.broker_addr || this.peer;
    if (ack.broker_name !== brokerName) {
      this.fail(
        errors.forbidden(
          `slave of ${ack.broker_name} cannot replicate ${brokerName}: brokerName differs`,
        ),
      );
      return;
    }
    const from = ack.max_physical_offset;
    const max = store.maxPhysicalOffset();
    const min = store.minPhysicalOffset();
    const mismatch = await this.mismatch(ack, max);
    if (this.closed) return;
    if (mismatch) {
      logger.error(
        {
          slave: this.slaveAddr,
          slaveId: this.slaveId,
          slaveMaxOffset: from,
          masterMaxOffset: max,
          ...mismatch.facts,
        },
        `slave refused: ${mismatch.why}`,
      );
      this.fail(errors.replicaMismatch(mismatch.why));
      return;
    }
    if (from < min && from !== 0) {
      this.fail(
        errors.illegalOffset(
          `slave ${this.slaveAddr} stops at ${from}, before the master's oldest commitlog byte ${min}: rebuild the slave's store`,
        ),
      );
      return;
    }
    await this.host.onHandshake(this, ack);
    if (this.closed) return;
    this.sendOffset = Math.max(from, min);
    this.acked = from;
    this.handshaking = false;
    logger.info(
      { slave: this.slaveAddr, slaveId: this.slaveId, from: this.sendOffset, masterMax: max },
      'slave connected; replicating',
    );
    this.host.onAck(this);
    void this.pump().catch((err: unknown) => this.fail(err));
  }

  /**
   * Why this slave's log cannot follow this master's (see the file comment),
   * with the facts to log; undefined when it can. A slave of an older version
   * that sends no segment size (0) is not refused for it.
   */
  private async mismatch(
    ack: ReplicationAck__Output,
    max: number,
  ): Promise<{ why: string; facts: Record<string, number> } | undefined> {
    const { segmentSize, store } = this.host;
    const from = ack.max_physical_offset;
    if (ack.segment_size > 0 && ack.segment_size !== segmentSize) {
      return {
        why: `slave ${this.slaveAddr} has mapedFileSizeCommitLog=${ack.segment_size}, this master ${segmentSize}: set the same value on both and wipe the slave's store`,
        facts: { slaveSegmentSize: ack.segment_size, masterSegmentSize: segmentSize },
      };
    }
    if (from > max) {
      return {
        why: `slave ${this.slaveAddr} is ahead of the master (slave ends at ${from}, master at ${max}): it holds bytes this master lost; wipe the slave's store`,
        facts: {},
      };
    }
    const at = ack.last_record_offset;
    const size = ack.last_record_size;
    if (size <= 0 || at < store.minPhysicalOffset()) return undefined;
    let same = false;
    try {
      const mine = await store.readRaw(at, size);
      same =
        mine.length >= size &&
        mine.readInt32BE(0) === size &&
        crc32(mine.subarray(0, size)) === ack.last_record_crc;
    } catch {
      // No record starts there on this master: diverged.
    }
    if (same) return undefined;
    return {
      why: `slave ${this.slaveAddr} diverged from the master: its last record at ${at} (${size} bytes, crc ${ack.last_record_crc}) differs from the master's bytes there; wipe the slave's store`,
      facts: { slaveLastRecordOffset: at, slaveLastRecordSize: size },
    };
  }

  private async pump(): Promise<void> {
    const { store, batchBytes, windowBytes, heartbeatMs } = this.host;
    while (!this.closed) {
      const meta = this.host.metadata();
      if (meta.snapshot && meta.version > this.metadataSent) {
        this.metadataSent = meta.version;
        const delta = this.metadataDelta(meta.snapshot);
        if (delta) {
          await this.send({
            offset: this.sendOffset,
            master_max_offset: store.maxPhysicalOffset(),
            metadata: encodeMetadata(delta),
          });
        }
        continue;
      }
      const max = store.maxPhysicalOffset();
      if (this.sendOffset < max && this.sendOffset - this.acked < windowBytes) {
        const data = await store.readRaw(this.sendOffset, batchBytes);
        if (this.closed) break;
        if (data.length > 0) {
          const offset = this.sendOffset;
          this.sendOffset += data.length;
          this.unacked.push([this.sendOffset, this.host.clock()]);
          await this.send({ offset, data, master_max_offset: store.maxPhysicalOffset() });
          continue;
        }
      }
      const now = this.host.clock();
      if (now - this.lastSentAt >= heartbeatMs) {
        await this.send({ offset: this.sendOffset, master_max_offset: max });
        continue;
      }
      await this.wake.wait(Math.min(IDLE_POLL_MS, heartbeatMs));
    }
  }

  /**
   * What this slave lacks of `snapshot`: the files whose text changed since
   * they were last sent (all of them on a new stream) and the readers when
   * they moved; undefined when nothing changed. Topic configs seldom change
   * while offsets do every second: only what changed travels.
   */
  private metadataDelta(snapshot: MetadataSnapshot): MetadataSnapshot | undefined {
    const files: Record<string, string> = {};
    let changed = false;
    for (const [name, text] of Object.entries(snapshot.files)) {
      if (this.filesSent.get(name) === text) continue;
      files[name] = text;
      this.filesSent.set(name, text);
      changed = true;
    }
    const readers = JSON.stringify(snapshot.readers);
    if (readers !== this.readersSent) {
      this.readersSent = readers;
      changed = true;
    }
    return changed ? { ...snapshot, files } : undefined;
  }

  /** Writes one message; waits for 'drain' when the stream's buffer is full. */
  private async send(msg: ReplicationData): Promise<void> {
    if (this.closed) return;
    this.lastSentAt = this.host.clock();
    if (this.call.write(msg)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.call.off('drain', done);
        this.call.off('close', done);
        this.wake.notify();
        resolve();
      };
      this.call.on('drain', done);
      this.call.on('close', done);
    });
  }

  /** Ends the stream with an error status (the slave logs it and reconnects later). */
  fail(err: unknown): void {
    if (this.closed) return;
    this.host.logger.warn(
      { slave: this.slaveAddr || this.peer, err: (err as Error).message },
      'replication stream to slave closed with an error',
    );
    this.call.emit('error', toGrpcError(err));
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wake.notify();
    if (this.handshaken) {
      this.host.logger.info(
        { slave: this.slaveAddr, acked: this.acked },
        'slave replication stream closed',
      );
    }
    try {
      this.call.end();
    } catch {
      // already ended
    }
    this.host.onClose(this);
  }
}
