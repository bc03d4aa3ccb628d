/**
 * Master side of replication: serves the Replication stream to any number of
 * slaves (one SlaveSession each), publishes metadata snapshots to them, and
 * runs SYNC_MASTER's wait for a slave acknowledgement.
 *
 * "In sync" (RocketMQ's isSlaveOK): at least one slave is connected and acked
 * within haMaxGapNotInSync bytes of the commitlog end. A SYNC_MASTER send
 * when none is in sync fails at once with SLAVE_NOT_AVAILABLE; otherwise it
 * waits up to slaveTimeout for any slave to ack its batch's end, then fails
 * with FLUSH_SLAVE_TIMEOUT. The message is stored on the master either way.
 *
 * Lag is reported per slave and for the worst one (stats()): a slave that
 * falls behind is never hidden by another that keeps up.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { errors, statusOf } from '../../common/errors.js';
import type { ReplicationAck__Output } from '../../common/generated/sluice/v1/ReplicationAck.js';
import type { ReplicationData } from '../../common/generated/sluice/v1/ReplicationData.js';
import type { Status } from '../../common/generated/sluice/v1/Status.js';
import type { Logger } from '../../common/logger.js';
import type { BrokerOptions } from '../options.js';
import type { MessageStore } from '../store/index.js';
import { AppendTimeline } from './append-timeline.js';
import { LagWindow } from './lag-window.js';
import { encodeMetadata, type MetadataSnapshot } from './metadata-snapshot.js';
import { SlaveAckWaiters } from './slave-ack-waiters.js';
import { type SessionHost, SlaveSession } from './slave-session.js';

/** Unacked bytes in flight to one slave, at most this many batches. */
export const WINDOW_BATCHES = 32;

export interface MasterDeps {
  options: BrokerOptions;
  store: MessageStore;
  logger: Logger;
  clock: () => number;
  /** The metadata to replicate now (read at most every haSyncMetadataInterval). */
  snapshot: () => Promise<MetadataSnapshot>;
  /** A slave passed the handshake: take what it brings (consumer offsets). Never rejects. */
  onHandshake?: (slaveAddr: string, ack: ReplicationAck__Output) => Promise<void>;
  /** The slaves that passed the handshake changed ("id@addr" each; after onHandshake). */
  onSlavesChanged?: (slaves: string[]) => void;
}

export class ReplicationMaster {
  private readonly sessions = new Set<SlaveSession>();
  /** Sessions past the handshake (offsets taken). */
  private readonly joined = new Set<SlaveSession>();
  readonly waiters: SlaveAckWaiters;
  private readonly host: SessionHost;
  /** The last snapshot read, and its encoding (to tell whether anything changed). */
  private metadataSnapshot: MetadataSnapshot | undefined;
  private metadataData: Buffer | undefined;
  private metadataVersion = 0;
  private metadataBusy = false;
  private timers: NodeJS.Timeout[] = [];
  /** Data message → slave ack round trips, ms. */
  readonly roundTrips = new LagWindow();
  /** Commitlog end over time (per-slave lag in ms). */
  private readonly timeline = new AppendTimeline();
  /** SYNC_MASTER sends answered SLAVE_NOT_AVAILABLE. */
  slaveNotAvailable = 0;

  constructor(private readonly deps: MasterDeps) {
    const o = deps.options;
    this.waiters = new SlaveAckWaiters(o.slaveTimeout, deps.clock);
    this.host = {
      store: deps.store,
      logger: deps.logger,
      brokerName: o.brokerName,
      segmentSize: o.mapedFileSizeCommitLog,
      batchBytes: o.haTransferBatchSize,
      windowBytes: o.haTransferBatchSize * WINDOW_BATCHES,
      heartbeatMs: o.haSendHeartbeatInterval,
      clock: deps.clock,
      metadata: () => ({ version: this.metadataVersion, snapshot: this.metadataSnapshot }),
      onHandshake: async (s, ack) => {
        try {
          await deps.onHandshake?.(s.slaveAddr, ack);
        } catch (err) {
          deps.logger.warn({ slave: s.slaveAddr, err }, 'taking the slave handshake data failed');
        }
        this.joined.add(s);
        this.publishSlaves();
      },
      onAck: (s) => this.waiters.advance(s.acked),
      onRoundTrip: (ms) => this.roundTrips.record(ms),
      onClose: (s) => {
        this.sessions.delete(s);
        if (this.joined.delete(s)) this.publishSlaves();
      },
    };
  }

  start(): void {
    const o = this.deps.options;
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(o.haSyncMetadataInterval, () => void this.refreshMetadata());
    every(Math.max(50, Math.floor(o.haHousekeepingInterval / 4)), () => this.housekeep());
    void this.refreshMetadata();
  }

  /** The gRPC handler of Replication.Replicate. */
  serve(call: ServerDuplexStream<ReplicationAck__Output, ReplicationData>): void {
    const session = new SlaveSession(call, this.host);
    this.sessions.add(session);
    // Metadata is only read while someone listens: bring it up to date for the newcomer.
    void this.refreshMetadata();
  }

  private publishSlaves(): void {
    this.deps.onSlavesChanged?.([...this.joined].map((s) => `${s.slaveId}@${s.slaveAddr}`));
  }

  /** New bytes were appended: wake every pump. */
  notifyAppended(): void {
    this.timeline.note(this.deps.store.maxPhysicalOffset(), this.deps.clock());
    for (const s of this.sessions) s.wake.notify();
  }

  /** True when at least one slave is connected and within haMaxGapNotInSync of `end`. */
  inSync(end: number): boolean {
    for (const s of this.sessions) {
      if (s.handshaken && end - s.acked < this.deps.options.haMaxGapNotInSync) return true;
    }
    return false;
  }

  /** SYNC_MASTER: waits until a slave acked `end`; the failure as a Status, else undefined. */
  async waitForSlaves(end: number): Promise<Status | undefined> {
    if (end <= this.waiters.acked) return undefined;
    this.notifyAppended();
    if (!this.inSync(end)) {
      this.slaveNotAvailable++;
      return statusOf(errors.slaveNotAvailable());
    }
    try {
      await this.waiters.wait(end);
      return undefined;
    } catch (err) {
      return statusOf(err);
    }
  }

  private async refreshMetadata(): Promise<void> {
    if (this.metadataBusy || this.sessions.size === 0) return;
    this.metadataBusy = true;
    try {
      const snapshot = await this.deps.snapshot();
      const data = encodeMetadata(snapshot);
      if (!this.metadataData || !data.equals(this.metadataData)) {
        this.metadataData = data;
        this.metadataSnapshot = snapshot;
        this.metadataVersion++;
        this.notifyAppended();
      }
    } catch (err) {
      this.deps.logger.warn({ err }, 'reading metadata for the slaves failed');
    } finally {
      this.metadataBusy = false;
    }
  }

  private housekeep(): void {
    const now = this.deps.clock();
    for (const s of this.sessions) {
      if (now - s.lastHeardAt > this.deps.options.haHousekeepingInterval) {
        s.fail(
          errors.unavailable(`slave ${s.slaveAddr} silent for more than haHousekeepingInterval`),
        );
      }
    }
  }

  /** Replication stats for GetBrokerStatus (names documented in ha-service.ts). */
  stats(): Record<string, string> {
    const max = this.deps.store.maxPhysicalOffset();
    const now = this.deps.clock();
    const gap = this.deps.options.haMaxGapNotInSync;
    const live = [...this.sessions].filter((s) => s.handshaken);
    const best = live.reduce((m, s) => Math.max(m, s.acked), -1);
    const out: Record<string, string> = {
      haConnectedSlaves: String(live.length),
      haInSyncSlaves: String(live.filter((s) => max - s.acked < gap).length),
      haSlaves: live.map((s) => `${s.slaveId}@${s.slaveAddr}:${s.acked}`).join(';'),
      haPush2SlaveMaxOffset: String(Math.max(0, best)),
      haSyncWaiting: String(this.waiters.size),
      haSyncTimeouts: String(this.waiters.timedOut),
      haSyncSlaveNotAvailable: String(this.slaveNotAvailable),
    };
    let worstBytes = 0;
    let worstMs = 0;
    // Oldest stream first: a slave that reconnected is described by its newest stream.
    for (const s of [...live].sort((a, b) => a.connectedAt - b.connectedAt)) {
      const lagBytes = Math.max(0, max - s.acked);
      const lagMs = this.timeline.lagMs(s.acked, max, now);
      worstBytes = Math.max(worstBytes, lagBytes);
      worstMs = Math.max(worstMs, lagMs);
      const p = `haSlave.${s.slaveId}.`;
      out[`${p}addr`] = s.slaveAddr;
      out[`${p}ackedOffset`] = String(s.acked);
      out[`${p}lagBytes`] = String(lagBytes);
      out[`${p}lagMs`] = String(lagMs);
      out[`${p}inSync`] = String(lagBytes < gap);
    }
    if (live.length > 0) {
      out.haReplicationLagBytes = String(worstBytes);
      out.haReplicationLagMs = String(worstMs);
    }
    const rtt = this.roundTrips.summary();
    out.haAckRoundTripMsP50 = String(rtt.p50);
    out.haAckRoundTripMsP99 = String(rtt.p99);
    return out;
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const s of [...this.sessions]) s.close();
    this.waiters.failAll(errors.unavailable('broker is shutting down'));
  }
}
