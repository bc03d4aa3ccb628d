/**
 * Retention: deletes old commitlog segments and, with them, the consume queue
 * and index files that only point into them.
 *
 * A segment (never the one being written) is deleted when
 *  - it is older than fileReservedTime hours and the clock is in a deleteWhen
 *    hour (local time), or
 *  - disk use is above diskMaxUsedSpaceRatio percent: then the oldest segments
 *    go regardless of age, one at a time, until use drops below it (DESIGN.md
 *    §4: "or earlier once disk use passes diskMaxUsedSpaceRatio").
 * A segment's age is measured from the store timestamp of the next segment's
 * first record (when it stopped being written), so an injected clock drives it.
 * At most MAX_DELETES_PER_PASS segments go per pass (RocketMQ deletes in small
 * batches too), so a pass never stalls the store for long.
 *
 * Separately, appends are refused (DISK_FULL) while disk use is above
 * diskSpaceWarningLevelRatio (90%); the ratio is refreshed by each pass and by
 * a cheap timer.
 */
import type { Logger } from '../../common/logger.js';
import type { CommitLog } from './commitlog.js';
import type { ConsumeQueueTable } from './consume-queue-table.js';
import type { IndexService } from './index-service.js';
import type { RetentionReport } from './store-api.js';
import { parseDeleteWhen, type StoreOptions } from './store-options.js';

export const MAX_DELETES_PER_PASS = 10;
const HOUR_MS = 3_600_000;

export class Retention {
  /** Last measured disk use, 0..1. */
  diskUsedRatio = 0;
  private readonly deleteHours: number[];
  private running: Promise<RetentionReport> | undefined;

  constructor(
    private readonly commitlog: CommitLog,
    private readonly queues: ConsumeQueueTable,
    private readonly index: IndexService,
    private readonly options: Readonly<StoreOptions>,
    private readonly clock: () => number,
    private readonly diskUsage: (path: string) => number,
    private readonly logger: Logger,
  ) {
    this.deleteHours = parseDeleteWhen(options.deleteWhen);
  }

  refreshDiskUsage(): number {
    try {
      this.diskUsedRatio = this.diskUsage(this.options.storePathCommitLog);
    } catch (err) {
      this.logger.warn({ err }, 'retention: cannot measure disk use');
    }
    return this.diskUsedRatio;
  }

  get isDiskFull(): boolean {
    return this.diskUsedRatio > this.options.diskSpaceWarningLevelRatio;
  }

  /** Resolves when no pass is running. */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /** One pass; concurrent calls share it. */
  run(): Promise<RetentionReport> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<RetentionReport> {
    const ratio = this.refreshDiskUsage();
    const limit = this.options.diskMaxUsedSpaceRatio / 100;
    const now = this.clock();
    const deleteHour = this.deleteHours.includes(new Date(now).getHours());
    const reservedMs = this.options.fileReservedTime * HOUR_MS;
    let pressure = ratio > limit;
    let trigger: RetentionReport['trigger'] = 'none';
    let deleted = 0;
    const segments = this.commitlog.segments;
    while (deleted < MAX_DELETES_PER_PASS && segments.length > 1) {
      const seg = segments[0]!;
      const next = segments[1]!;
      if (seg.end > this.commitlog.writtenOffset) break;
      const stoppedAt = next.firstStoreTimestamp || now;
      const expired = now - stoppedAt >= reservedMs;
      if (pressure) trigger = 'disk';
      else if (expired && deleteHour) trigger = trigger === 'disk' ? 'disk' : 'expired';
      else break;
      await this.commitlog.deleteOldestSegment();
      deleted++;
      this.logger.info(
        {
          segment: seg.path,
          ageMs: now - stoppedAt,
          diskUsedRatio: this.diskUsedRatio,
          reason: pressure ? 'disk' : 'expired',
        },
        'retention: deleted commitlog segment',
      );
      if (pressure) pressure = this.refreshDiskUsage() > limit;
    }
    const minPhysicalOffset = this.commitlog.minOffset;
    let deletedQueueFiles = 0;
    let deletedIndexFiles = 0;
    if (deleted > 0) {
      deletedQueueFiles = await this.queues.deleteFilesBelow(minPhysicalOffset);
      deletedIndexFiles = await this.index.deleteFilesBelow(minPhysicalOffset);
    }
    return {
      deletedSegments: deleted,
      deletedQueueFiles,
      deletedIndexFiles,
      minPhysicalOffset,
      diskUsedRatio: ratio,
      trigger,
    };
  }
}
