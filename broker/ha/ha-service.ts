/**
 * Replication for one broker, by role: a master (ASYNC_MASTER or
 * SYNC_MASTER) serves the Replication stream and, when SYNC_MASTER, holds
 * sends until a slave acked them; a SLAVE follows its master. main.ts wires
 * it: `register` before the gRPC server binds, `start` once the broker's
 * address is known (with a way to re-register for a fresh master_addr), `ctx.replication = ha`, `services.status = () =>
 * ha.stats()`, the registry's master_addr into `setMasterAddr`.
 *
 * GetBrokerStatus stats (all values strings):
 *   every role   haRole                   ASYNC_MASTER | SYNC_MASTER | SLAVE
 *   master       haConnectedSlaves        slaves with an open stream (0: none, "no slave")
 *                haInSyncSlaves           of those, within haMaxGapNotInSync
 *                haSlaves                 "id@addr:ackedOffset;…"
 *                haSlave.<id>.addr        per connected slave: its address,
 *                haSlave.<id>.ackedOffset   what it acked,
 *                haSlave.<id>.lagBytes      commitlog end - that,
 *                haSlave.<id>.lagMs         ms since the master held the first byte it lacks,
 *                haSlave.<id>.inSync        lagBytes < haMaxGapNotInSync
 *                haPush2SlaveMaxOffset    highest offset any slave acked
 *                haReplicationLagBytes    the worst slave's lagBytes (only with a slave)
 *                haReplicationLagMs       the worst slave's lagMs (only with a slave)
 *                haSyncWaiting            SYNC_MASTER sends waiting for an ack now
 *                haSyncTimeouts           … answered FLUSH_SLAVE_TIMEOUT so far
 *                haSyncSlaveNotAvailable  … answered SLAVE_NOT_AVAILABLE so far
 *                haAckRoundTripMsP50/P99  data sent → acked by a slave, last 10 s
 *   slave        haMasterAddress          master replicated from ('' = unknown yet)
 *                haConnected              true while a stream is open
 *                haMasterMaxOffset        master's commitlog end, last heard
 *                haSlaveAckOffset         written here and acked
 *                haReplicationLagBytes    master end - own end
 *                haReplicationLagMsP50/P99/Max, haReplicationLagSamples
 *                                         master store time → written here, last 10 s
 *                haReconnects             streams reopened since start
 *                haRefusedByMaster        why the master refused this slave ('' = it did not)
 *                haLastMetadataSyncMs     epoch ms of the last metadata applied (0 = never)
 */
import { join } from 'node:path';
import type { Server, ServerDuplexStream } from '@grpc/grpc-js';
import { errors } from '../../common/errors.js';
import { toGrpcError } from '../../common/errors-grpc.js';
import type { ReplicationAck__Output } from '../../common/generated/sluice/v1/ReplicationAck.js';
import type { ReplicationData } from '../../common/generated/sluice/v1/ReplicationData.js';
import type { Status } from '../../common/generated/sluice/v1/Status.js';
import { JsonFileWriter, readJsonFile } from '../../common/json-file.js';
import type { Logger } from '../../common/logger.js';
import { sluiceProto } from '../../common/proto.js';
import type { ConsumeStateStore } from '../messaging/consume-state-store.js';
import { isInternalReader } from '../messaging/system-topics.js';
import type { ConsumerOffsetManager } from '../metadata/consumer-offset-manager.js';
import type { SubscriptionGroupManager } from '../metadata/subscription-group-manager.js';
import type { TopicConfigManager } from '../metadata/topic-config-manager.js';
import type { BrokerOptions } from '../options.js';
import type { AppendResult, MessageStore } from '../store/index.js';
import type { ReplicationHook } from './index.js';
import { MetadataApplier } from './metadata-applier.js';
import { type ReaderProgress, readMetadataSnapshot } from './metadata-snapshot.js';
import {
  decodeHandshakeOffsets,
  encodeHandshakeOffsets,
  mergeSlaveOffsets,
  OffsetResetLog,
} from './offset-sync.js';
import { ReplicationMaster } from './replication-master.js';
import { MAX_RETRY_DELAY_MS, ReplicationSlave } from './replication-slave.js';
import { suggestBrokerId } from './slave-read-advice.js';

/** Slaves connected to a master, kept across restarts: ROOT/ha/slaves.json. */
const SLAVES_FILE = 'slaves.json';
/** How long a restarted master that had slaves waits for one before registering, ms. */
export const DEFAULT_SLAVE_WAIT_ON_START_MS = 2 * MAX_RETRY_DELAY_MS + 1_000;

export interface HaDeps {
  options: BrokerOptions;
  /** The real store (a slave's appendRaw goes here). */
  store: MessageStore;
  /** storePathRootDir with `~` expanded; metadata lives in ROOT/config. */
  rootDir: string;
  topics: TopicConfigManager;
  groups: SubscriptionGroupManager;
  offsets: ConsumerOffsetManager;
  /** Timer / transaction progress and pop states. */
  consumeStates?: ConsumeStateStore;
  logger: Logger;
  clock?: () => number;
}

export class HaService implements ReplicationHook {
  readonly master: ReplicationMaster | undefined;
  private slave: ReplicationSlave | undefined;
  private readonly applier: MetadataApplier | undefined;
  /** Master only: explicit offset resets (replicated so slaves apply them). */
  private readonly resets: OffsetResetLog | undefined;
  /** Master only: slaves connected at the end of the last run (ROOT/ha/slaves.json). */
  private readonly hadSlaves: string[] = [];
  private slaves: string[] = [];
  private slavesWriter: JsonFileWriter | undefined;
  private slaveJoined: () => void = () => undefined;
  private readonly firstSlave = new Promise<void>((resolve) => {
    this.slaveJoined = resolve;
  });
  private readonly isSync: boolean;
  private readonly clock: () => number;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: HaDeps) {
    const { options, store, logger } = deps;
    this.clock = deps.clock ?? Date.now;
    this.isSync = options.brokerRole === 'SYNC_MASTER';
    const configDir = join(deps.rootDir, 'config');
    if ((options.brokerRole === 'SLAVE') !== options.brokerId > 0) {
      logger.warn(
        { brokerRole: options.brokerRole, brokerId: options.brokerId },
        'brokerId 0 is the master of its group and ids > 0 are slaves; this role and id disagree',
      );
    }
    if (options.brokerRole === 'SLAVE') {
      this.applier = new MetadataApplier({
        configDir,
        topics: deps.topics,
        groups: deps.groups,
        offsets: deps.offsets,
        ...(deps.consumeStates ? { states: deps.consumeStates } : {}),
        store,
        logger,
      });
    } else {
      const resets = new OffsetResetLog(configDir, this.clock);
      this.resets = resets;
      const slavesFile = join(deps.rootDir, 'ha', SLAVES_FILE);
      this.hadSlaves = readJsonFile<{ slaves?: string[] }>(slavesFile, {}).slaves ?? [];
      this.slavesWriter = new JsonFileWriter(slavesFile, () => ({ slaves: this.slaves }));
      this.master = new ReplicationMaster({
        options,
        store,
        logger,
        clock: this.clock,
        snapshot: () => readMetadataSnapshot(configDir, this.readers()),
        onSlavesChanged: (slaves) => {
          this.slaves = slaves;
          if (slaves.length > 0) this.slaveJoined();
          void this.slavesWriter?.save().catch((err: unknown) => {
            logger.warn({ err }, 'writing the list of slaves failed');
          });
        },
        onHandshake: async (slaveAddr, ack) => {
          const offsets = decodeHandshakeOffsets(ack.consumer_offsets);
          if (!offsets) return;
          await mergeSlaveOffsets(
            {
              offsets: deps.offsets,
              ...(deps.consumeStates ? { states: deps.consumeStates } : {}),
              resets,
              logger,
            },
            offsets,
            slaveAddr,
          );
        },
      });
    }
  }

  /** Adds the Replication service to the broker's gRPC server (before it binds). */
  register(server: Server): void {
    const definition = sluiceProto().grpc.sluice.v1.Replication.service;
    server.addService(definition, {
      Replicate: (call: ServerDuplexStream<ReplicationAck__Output, ReplicationData>) => {
        if (this.master) {
          this.master.serve(call);
        } else {
          call.emit(
            'error',
            toGrpcError(errors.notMaster(`${this.deps.options.brokerName} (this broker)`)),
          );
        }
      },
    });
  }

  /**
   * Master only, before the broker serves its Broker API and registers with
   * the name servers (main.ts; calls meanwhile answer "broker is starting"):
   * when it had slaves at the end of its last run, waits up to `timeoutMs`
   * for one to connect, so the consumer offsets committed on the slave while
   * this master was down are taken (offset-sync.ts) before consumers reach
   * it again — otherwise they would read this master's older offsets and get
   * again what the slave delivered. A slave retries its master at least
   * every MAX_RETRY_DELAY_MS, so the default covers two retries; a master
   * whose slaves are gone for good starts after the timeout.
   */
  async waitForSlavesOnStart(timeoutMs = DEFAULT_SLAVE_WAIT_ON_START_MS): Promise<void> {
    if (!this.master || this.hadSlaves.length === 0) return;
    const { logger } = this.deps;
    logger.info(
      { slaves: this.hadSlaves, timeoutMs },
      'waiting for a slave before serving and registering (to take the offsets committed on it)',
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.firstSlave.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut)
      logger.warn({ timeoutMs }, 'no slave connected in time; serving and registering without it');
  }

  /**
   * Starts replication once the broker's own address is known. A slave calls
   * `refreshMaster` (re-register with the name servers, whose answer carries
   * master_addr) while it has no working master.
   */
  start(brokerAddr: string, refreshMaster?: () => void): void {
    const master = this.master;
    if (master) {
      // Every record dispatched wakes the pumps at once (no waiting for their idle poll).
      this.unsubscribe = this.deps.store.onDispatch(() => master.notifyAppended());
      master.start();
      return;
    }
    const applier = this.applier!;
    this.slave = new ReplicationSlave({
      options: this.deps.options,
      store: this.deps.store,
      logger: this.deps.logger,
      clock: this.clock,
      brokerAddr,
      applyMetadata: (s) => applier.apply(s),
      handshakeOffsets: () => encodeHandshakeOffsets(applier.handshakeOffsets()),
      ...(refreshMaster ? { refreshMaster } : {}),
    });
    this.slave.start();
  }

  /** The group's master address as a name server answered it (slaves only). */
  setMasterAddr(addr: string): void {
    this.slave?.setMasterAddr(addr);
  }

  /** New bytes are in the commitlog: replicate them now rather than at the next poll. */
  notifyAppended(): void {
    this.master?.notifyAppended();
  }

  waitForSlaves(appended: readonly AppendResult[]): Promise<Status | undefined> | undefined {
    if (!this.master || appended.length === 0) return undefined;
    if (!this.isSync) {
      this.master.notifyAppended();
      return undefined;
    }
    let end = 0;
    for (const r of appended) end = Math.max(end, r.physicalOffset + r.size);
    return this.master.waitForSlaves(end);
  }

  async noteOffsetReset(
    group: string,
    topic: string,
    queueId: number,
    offset: number,
  ): Promise<void> {
    await this.resets?.note(group, topic, queueId, offset);
  }

  suggestBrokerId(group: string, lastPulledPhysicalOffset: number): number {
    return suggestBrokerId(this.deps, group, lastPulledPhysicalOffset);
  }

  stats(): Record<string, string> {
    const role = { haRole: this.deps.options.brokerRole };
    if (this.master) return { ...role, ...this.master.stats() };
    return {
      ...role,
      ...(this.slave?.stats() ?? {}),
      haLastMetadataSyncMs: String(this.applier?.lastAppliedAt ?? 0),
    };
  }

  async close(): Promise<void> {
    // The slaves dropped by this shutdown are still this master's slaves at the next start.
    this.slavesWriter = undefined;
    this.unsubscribe?.();
    this.master?.close();
    await this.slave?.close();
  }

  /** Progress of the broker's own readers (timer, transactions), for the slaves. */
  private readers(): ReaderProgress[] {
    const out: ReaderProgress[] = [];
    for (const st of this.deps.consumeStates?.all() ?? []) {
      if (isInternalReader(st.group)) {
        out.push({ group: st.group, topic: st.topic, queueId: st.queueId, base: st.base });
      }
    }
    return out;
  }
}
