/**
 * Slave side of replication: finds the master (haMasterAddress, else the
 * master_addr the name servers answer for this brokerName), opens the
 * Replication stream, reports its own commitlog end, and writes what arrives
 * at the same offsets with MessageStore.appendRaw (which CRC-checks the
 * records and rebuilds consume queues and index). Metadata snapshots go to
 * the MetadataApplier.
 *
 * Pipelining: appendRaw calls are issued in arrival order without waiting
 * (the store reserves offsets synchronously); acks report the end of the
 * longest prefix of completed writes. While more than `windowBytes` are
 * being written the stream is paused (gRPC flow control then holds the
 * master back).
 *
 * Reconnects after any error with a backoff (IDLE … MAX_RETRY_DELAY_MS), at
 * once when a name server names the master while disconnected; a restarted
 * slave resumes from its own offset, a new one from zero. Before
 * reconnecting every write of the old stream settles, so the offset it
 * reports is the true end of its log.
 *
 * Handshake (the first ack of a stream): besides its end of log, the slave
 * sends its segment size, its last message record (offset, size, CRC32 of
 * its bytes) and its consumer offsets (offset-sync.ts). The last record is
 * tracked as data is written; after a start it is found by reading the
 * last segment once (up to mapedFileSizeCommitLog bytes, in chunks). A
 * master that refuses the slave (REPLICA_MISMATCH: segment size differs,
 * slave ahead or diverged) is logged once at error level and retried only
 * every MISMATCH_RETRY_DELAY_MS; an operator must act (deploy/conf/README.md).
 */
import { crc32 } from 'node:zlib';
import { type ClientDuplexStream, credentials } from '@grpc/grpc-js';
import { errors } from '../../common/errors.js';
import { fromGrpcError } from '../../common/errors-grpc.js';
import type { ReplicationClient } from '../../common/generated/sluice/v1/Replication.js';
import type { ReplicationAck } from '../../common/generated/sluice/v1/ReplicationAck.js';
import type { ReplicationData__Output } from '../../common/generated/sluice/v1/ReplicationData.js';
import { GRPC_CHANNEL_OPTIONS } from '../../common/grpc.js';
import type { Logger } from '../../common/logger.js';
import { sluiceProto } from '../../common/proto.js';
import type { BrokerOptions } from '../options.js';
import { BLANK_MAGIC, OFF_MAGIC, readStoreTimestamp } from '../store/commitlog-record.js';
import type { MessageStore } from '../store/index.js';
import { LagWindow } from './lag-window.js';
import { decodeMetadata, validateMetadata } from './metadata-snapshot.js';
import { Wakeup } from './wakeup.js';

export const MIN_RETRY_DELAY_MS = 200;
export const MAX_RETRY_DELAY_MS = 2_000;
/** Retry delay after the master refused this slave as incompatible (REPLICA_MISMATCH), ms. */
export const MISMATCH_RETRY_DELAY_MS = 60_000;
/** Bytes being written before the stream is paused, in batches of haTransferBatchSize. */
const WRITE_WINDOW_BATCHES = 64;
/**
 * HTTP/2 receive window of the replication channel. The default 64 KiB makes
 * the master wait for a WINDOW_UPDATE every 64 KiB, so any pause of this
 * process stalls the stream; a wide window lets bursts through (memory stays
 * bounded by it and by WRITE_WINDOW_BATCHES).
 */
export const REPLICATION_FLOW_CONTROL_WINDOW_BYTES = 16 * 1024 * 1024;

export interface SlaveDeps {
  options: BrokerOptions;
  store: MessageStore;
  logger: Logger;
  clock: () => number;
  /** This broker's registered address (sent to the master for its stats). */
  brokerAddr: string;
  applyMetadata: (snapshot: ReturnType<typeof validateMetadata>) => Promise<unknown>;
  /**
   * Asks the name servers again who the master is (re-registers now); called
   * when no master is known or its stream failed, at most every
   * MAX_RETRY_DELAY_MS, so a master restarted on another address is found
   * without waiting a whole registerBrokerInterval.
   */
  refreshMaster?: () => void;
  /** This slave's consumer offsets for the handshake (offset-sync.ts encoding). */
  handshakeOffsets?: () => Buffer;
}

/** The last message record of the log, as of log end `end` (size 0: none). */
interface Tail {
  offset: number;
  size: number;
  crc: number;
  end: number;
}

interface PendingWrite {
  end: number;
  done: boolean;
}

export class ReplicationSlave {
  private masterAddr = '';
  private client: { addr: string; client: ReplicationClient } | undefined;
  private call: ClientDuplexStream<ReplicationAck, ReplicationData__Output> | undefined;
  private readonly wake = new Wakeup();
  private closed = false;
  private loop: Promise<void> | undefined;
  /** Everything below is written on this slave (acked to the master). */
  private confirmed = 0;
  private masterMax = 0;
  private connected = false;
  private reconnects = 0;
  private lastError = '';
  private lastRefreshAt = 0;
  /** Why the master refused this slave last ('' = it did not). */
  private refused = '';
  private tail: Tail | undefined;
  readonly lag = new LagWindow();

  constructor(private readonly deps: SlaveDeps) {}

  /** The address replication uses now: haMasterAddress wins over what the name servers say. */
  get master(): string {
    return this.deps.options.haMasterAddress || this.masterAddr;
  }

  /** Told by the registry whenever a name server names this group's master. */
  setMasterAddr(addr: string): void {
    if (addr && addr === this.masterAddr && !this.connected && !this.refused) {
      // Registered again (often: restarted): try now rather than after the backoff.
      this.wake.notify();
      return;
    }
    if (!addr || addr === this.masterAddr) return;
    const before = this.master;
    this.masterAddr = addr;
    if (this.master !== before) {
      this.refused = '';
      this.deps.logger.info({ master: this.master }, 'master address learned');
      // A stream to an old address is dropped; the loop reconnects to the new one.
      this.call?.cancel();
      this.wake.notify();
    }
  }

  start(): void {
    this.confirmed = this.deps.store.maxPhysicalOffset();
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let delay = MIN_RETRY_DELAY_MS;
    while (!this.closed) {
      const addr = this.master;
      if (!addr) {
        this.refreshMaster();
        await this.wake.wait(MAX_RETRY_DELAY_MS);
        continue;
      }
      let received = false;
      let mismatch = false;
      try {
        received = await this.session(addr, await this.currentTail());
      } catch (err) {
        const e = fromGrpcError(err, addr);
        mismatch = e.reason === 'REPLICA_MISMATCH';
        if (mismatch) {
          if (e.message !== this.refused) {
            this.deps.logger.error(
              {
                master: addr,
                err: e.message,
                slaveMaxOffset: this.deps.store.maxPhysicalOffset(),
                retryInMs: MISMATCH_RETRY_DELAY_MS,
              },
              'the master refused this slave; replication stopped until an operator acts (deploy/conf/README.md)',
            );
          }
          this.refused = e.message;
        } else if (e.message !== this.lastError) {
          this.deps.logger.warn({ master: addr, err: e.message }, 'replication stream failed');
          this.lastError = e.message;
        }
      }
      this.connected = false;
      if (this.closed) break;
      this.reconnects++;
      if (mismatch) {
        // Slowly: only a new master address (which clears `refused`) cuts this short.
        const until = this.deps.clock() + MISMATCH_RETRY_DELAY_MS;
        while (!this.closed && this.refused && this.deps.clock() < until) {
          await this.wake.wait(until - this.deps.clock());
        }
        continue;
      }
      if (!received) this.refreshMaster();
      delay = received ? MIN_RETRY_DELAY_MS : Math.min(delay * 2, MAX_RETRY_DELAY_MS);
      await this.wake.wait(delay);
    }
  }

  private refreshMaster(): void {
    const now = this.deps.clock();
    if (!this.deps.refreshMaster || now - this.lastRefreshAt < MAX_RETRY_DELAY_MS) return;
    this.lastRefreshAt = now;
    this.deps.refreshMaster();
  }

  private clientFor(addr: string): ReplicationClient {
    if (this.client?.addr !== addr) {
      this.client?.client.close();
      const Replication = sluiceProto().grpc.sluice.v1.Replication;
      this.client = {
        addr,
        client: new Replication(addr, credentials.createInsecure(), {
          ...GRPC_CHANNEL_OPTIONS,
          'grpc-node.flow_control_window': REPLICATION_FLOW_CONTROL_WINDOW_BYTES,
        }),
      };
    }
    return this.client.client;
  }

  /**
   * One stream: resolves when it ends (true when it carried data or metadata),
   * rejects with its error. Every write it started has settled by then.
   */
  /** The last record as of the log's current end (asked from the store after a start or a failed write). */
  private async currentTail(): Promise<Tail> {
    const end = this.deps.store.maxPhysicalOffset();
    if (this.tail?.end !== end) this.tail = await this.scanTail(end);
    return this.tail;
  }

  /** The log's last message record: the store keeps its place, so this reads that one record. */
  private async scanTail(end: number): Promise<Tail> {
    const last = await this.deps.store.lastRecord();
    return last ? { ...last, end } : { offset: 0, size: 0, crc: 0, end };
  }

  private session(addr: string, tail: Tail): Promise<boolean> {
    const { store, options, logger, clock } = this.deps;
    const call = this.clientFor(addr).Replicate();
    this.call = call;
    const pending: PendingWrite[] = [];
    const writes = new Set<Promise<void>>();
    let expected = store.maxPhysicalOffset();
    this.confirmed = expected;
    let received = false;
    let inflightBytes = 0;
    let paused = false;
    let ackScheduled = false;
    let failure: Error | undefined;
    let lastHeard = clock();
    let ended = false;
    const windowBytes = options.haTransferBatchSize * WRITE_WINDOW_BATCHES;

    const ack = () => {
      ackScheduled = false;
      if (failure || ended) return;
      call.write({
        broker_name: options.brokerName,
        broker_id: options.brokerId,
        max_physical_offset: this.confirmed,
        broker_addr: this.deps.brokerAddr,
      });
    };
    const scheduleAck = () => {
      if (ackScheduled) return;
      ackScheduled = true;
      setImmediate(ack);
    };
    const fail = (err: unknown) => {
      if (failure) return;
      failure = err instanceof Error ? err : errors.internal(String(err));
      call.cancel();
    };
    const onData = (d: ReplicationData__Output) => {
      lastHeard = clock();
      if (failure) return;
      if (!this.connected) {
        this.connected = true;
        this.lastError = '';
        this.refused = '';
        logger.info({ master: addr, from: expected }, 'replicating from master');
      }
      // In order within a stream; a restarted master may have a shorter log than before.
      this.masterMax = d.master_max_offset;
      if (d.metadata.length > 0) {
        received = true;
        try {
          const snapshot = validateMetadata(decodeMetadata(d.metadata));
          this.deps
            .applyMetadata(snapshot)
            .catch((err: unknown) =>
              logger.warn({ err }, 'applying replicated metadata failed; next snapshot retries'),
            );
        } catch (err) {
          logger.warn({ err }, 'replicated metadata refused');
        }
      }
      if (d.data.length === 0) return;
      received = true;
      const emptyStart = expected === 0 && store.maxPhysicalOffset() === 0 && pending.length === 0;
      if (d.offset !== expected && !emptyStart) {
        fail(errors.illegalOffset(`master sent offset ${d.offset}, slave expected ${expected}`));
        return;
      }
      const bornAt = firstStoreTimestamp(d.data);
      // The handshake of the next stream names the last record; a failed write makes it rescan.
      const t: Tail = this.tail ?? { offset: 0, size: 0, crc: 0, end: 0 };
      noteLastRecord(t, d.offset, d.data);
      t.end = d.offset + d.data.length;
      this.tail = t;
      const p: PendingWrite = { end: d.offset + d.data.length, done: false };
      expected = p.end;
      pending.push(p);
      inflightBytes += d.data.length;
      const size = d.data.length;
      const w = store.appendRaw(d.offset, d.data).then(
        () => {
          p.done = true;
          inflightBytes -= size;
          if (bornAt > 0) this.lag.record(clock() - bornAt);
          while (pending.length > 0 && pending[0]!.done) this.confirmed = pending.shift()!.end;
          if (paused && inflightBytes <= windowBytes / 2) {
            paused = false;
            call.resume();
          }
          scheduleAck();
        },
        (err: unknown) => {
          inflightBytes -= size;
          fail(err);
        },
      );
      writes.add(w);
      void w.finally(() => writes.delete(w));
      if (!paused && inflightBytes > windowBytes) {
        paused = true;
        call.pause();
      }
    };

    return new Promise<boolean>((resolve, reject) => {
      const heartbeat = setInterval(() => {
        if (clock() - lastHeard > options.haHousekeepingInterval) {
          fail(errors.unavailable(`master ${addr} silent for more than haHousekeepingInterval`));
          return;
        }
        scheduleAck();
      }, options.haSendHeartbeatInterval);
      heartbeat.unref();
      const finish = async (err: unknown) => {
        if (ended) return;
        ended = true;
        clearInterval(heartbeat);
        if (this.call === call) this.call = undefined;
        await Promise.allSettled([...writes]);
        const cause = failure ?? err;
        if (cause && !this.closed) reject(cause);
        else resolve(received);
      };
      call.on('data', onData);
      call.on('error', (err) => void finish(err));
      call.on('end', () => void finish(undefined));
      call.on('status', (s) => {
        if (s.code !== 0) void finish(fromGrpcError(s, addr));
        else void finish(undefined);
      });
      // Handshake: this slave's end of log, segment size, last record and consumer offsets.
      call.write({
        broker_name: options.brokerName,
        broker_id: options.brokerId,
        max_physical_offset: expected,
        broker_addr: this.deps.brokerAddr,
        consumer_offsets: this.deps.handshakeOffsets?.() ?? Buffer.alloc(0),
        segment_size: options.mapedFileSizeCommitLog,
        last_record_offset: tail.offset,
        last_record_size: tail.size,
        last_record_crc: tail.crc,
      });
    });
  }

  /** Replication stats for GetBrokerStatus (names documented in ha-service.ts). */
  stats(): Record<string, string> {
    const lag = this.lag.summary();
    const own = this.deps.store.maxPhysicalOffset();
    return {
      haMasterAddress: this.master,
      haConnected: String(this.connected),
      haMasterMaxOffset: String(this.masterMax),
      haSlaveAckOffset: String(this.confirmed),
      haReplicationLagBytes: String(Math.max(0, this.masterMax - own)),
      haReplicationLagMsP50: String(lag.p50),
      haReplicationLagMsP99: String(lag.p99),
      haReplicationLagMsMax: String(lag.max),
      haReplicationLagSamples: String(lag.samples),
      haReconnects: String(this.reconnects),
      haRefusedByMaster: this.refused,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.call?.cancel();
    this.wake.notify();
    await this.loop;
    this.client?.client.close();
  }
}

/** Store timestamp of the first message record in raw commitlog bytes; 0 when none. */
function firstStoreTimestamp(data: Buffer): number {
  for (let p = 0; p + 8 <= data.length; ) {
    const size = data.readInt32BE(p);
    if (size < 8) return 0;
    if (data.readUInt32BE(p + OFF_MAGIC) !== BLANK_MAGIC) return readStoreTimestamp(data, p);
    p += size;
  }
  return 0;
}

/** Moves `tail` to the last message record (not a blank) of raw bytes `data` found at `offset`. */
function noteLastRecord(tail: Tail, offset: number, data: Buffer): void {
  let last = -1;
  for (let p = 0; p + 8 <= data.length; ) {
    const size = data.readInt32BE(p);
    if (size < 8 || p + size > data.length) break;
    if (data.readUInt32BE(p + OFF_MAGIC) !== BLANK_MAGIC) last = p;
    p += size;
  }
  if (last < 0) return;
  const size = data.readInt32BE(last);
  tail.offset = offset + last;
  tail.size = size;
  tail.crc = crc32(data.subarray(last, last + size));
}
