/**
 * The dispatcher turns commitlog records into consume queue entries and index
 * entries, then tells listeners (long polls) a message arrived. It is fed in
 * physical order: from the batch just written (no re-read), from raw bytes a
 * slave appended, or from a recovery scan of the files — which is why consume
 * queues and index can always be rebuilt from the commitlog alone.
 *
 * Dispatch is idempotent: a consume queue skips queue offsets it has, the index
 * skips records below what it covers.
 */
import type { Logger } from '../../common/logger.js';
import type { ConsumeQueueTable } from './consume-queue-table.js';
import type { IndexService } from './index-service.js';
import { type DispatchEvent, SysFlag } from './store-api.js';
import { tagHash } from './tag-hash.js';

export class Dispatcher {
  private readonly listeners = new Set<(event: DispatchEvent) => void>();
  /** End of the last record dispatched. */
  dispatchedOffset = 0;
  /** Store timestamp of that record. */
  lastStoreTimestamp = 0;

  constructor(
    private readonly queues: ConsumeQueueTable,
    private readonly index: IndexService,
    private readonly logger: Logger,
  ) {}

  onDispatch(listener: (event: DispatchEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Dispatches one record. `tagsCode` is the caller's override or undefined
   * (then the tag's hash). `index` = false skips the index (already covered).
   */
  dispatch(
    topic: string,
    queueId: number,
    queueOffset: number,
    physicalOffset: number,
    size: number,
    tag: string,
    tagsCode: bigint | undefined,
    storeTimestamp: number,
    keys: readonly string[],
    messageId: string,
    sysFlag: number,
  ): void {
    const tx = sysFlag & SysFlag.TRANSACTION_MASK;
    // RocketMQ: prepared and rolled-back records stay out of consume queues.
    if (tx !== SysFlag.TRANSACTION_PREPARED && tx !== SysFlag.TRANSACTION_ROLLBACK) {
      let hi: number;
      let lo: number;
      if (tagsCode === undefined) {
        lo = tagHash(tag);
        hi = lo < 0 ? -1 : 0;
      } else {
        const v = BigInt.asIntN(64, tagsCode);
        hi = Number(v >> 32n);
        lo = Number(BigInt.asIntN(32, v));
      }
      const cq = this.queues.getOrCreate(topic, queueId);
      const added = this.queues.put(cq, queueOffset, physicalOffset, size, hi, lo);
      if (added && this.listeners.size > 0) {
        const event: DispatchEvent = {
          topic,
          queueId,
          queueOffset,
          physicalOffset,
          tagsCode: tagsCode ?? BigInt(lo),
          storeTimestamp,
        };
        for (const listener of this.listeners) {
          try {
            listener(event);
          } catch (err) {
            this.logger.error({ err }, 'dispatch listener failed');
          }
        }
      }
    }
    if (tx !== SysFlag.TRANSACTION_ROLLBACK) {
      this.index.putRecord(topic, keys, messageId, physicalOffset, size, storeTimestamp);
    }
    const end = physicalOffset + size;
    if (end > this.dispatchedOffset) {
      this.dispatchedOffset = end;
      this.lastStoreTimestamp = storeTimestamp;
    }
  }

  /** A blank (padding) record was passed: nothing to index, but the dispatch position moves. */
  skip(end: number): void {
    if (end > this.dispatchedOffset) this.dispatchedOffset = end;
  }
}
