/**
 * Master → slave replication (DESIGN.md §7): what the rest of the broker sees
 * of it. The implementation is HaService (ha-service.ts), wired in main.ts.
 *
 * Roles: an ASYNC_MASTER answers a send after its own write; a SYNC_MASTER
 * only once a slave acknowledged the bytes; a SLAVE is read-only and follows
 * its master over the `Replication` gRPC stream.
 */
import type { Status } from '../../common/generated/sluice/v1/Status.js';
import type { AppendResult } from '../store/index.js';

export interface ReplicationHook {
  /**
   * SYNC_MASTER: resolves once a slave has every byte of `appended`, with
   * undefined, or with the failure as a Status (FLUSH_SLAVE_TIMEOUT after
   * slaveTimeout; SLAVE_NOT_AVAILABLE at once when no slave is in sync). The
   * batch stays stored either way, as in RocketMQ: a producer that retries may
   * store it twice. Other roles: undefined at once. Never rejects.
   *
   * Many concurrent sends share one slave acknowledgement (group commit).
   *
   * @example
   *   const appended = await store.appendBatch(inputs);
   *   const failed = await ctx.replication?.waitForSlaves(appended);
   *   const status = failed ?? OK_STATUS;
   */
  waitForSlaves(appended: readonly AppendResult[]): Promise<Status | undefined> | undefined;

  /**
   * The broker id a pulling consumer should read from next (RocketMQ's
   * suggestWhichBrokerId): with slaveReadEnable, a consumer whose last pulled
   * record lies further behind the commitlog end than
   * accessMessageInMemoryMaxRatio % of memory is sent to
   * whichBrokerWhenConsumeSlowly (the group's setting, else the broker's);
   * otherwise to the master (0).
   *
   * @param lastPulledPhysicalOffset commitlog offset of the last record answered, -1 when none
   */
  suggestBrokerId(group: string, lastPulledPhysicalOffset: number): number;

  /**
   * An explicit reset moved a group's committed offset of a queue (possibly
   * backwards): recorded so slaves apply it even though they otherwise only
   * move offsets forward (broker/ha/offset-sync.ts). Call before committing
   * the new offset. A no-op on a slave.
   */
  noteOffsetReset?(group: string, topic: string, queueId: number, offset: number): Promise<void>;
}
