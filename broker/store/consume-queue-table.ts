/**
 * Every consume queue of the store, by topic and queue id, and the batched
 * writing and syncing of their pending entries.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import { ConsumeQueue, CQ_WRITE_THRESHOLD_BYTES, EntryBufferPool } from './consume-queue.js';
import type { FilePool } from './file-pool.js';
import type { QueueExtent } from './queue-checkpoint.js';
import type { TopicTombstone, TopicTombstones } from './topic-tombstones.js';

export class ConsumeQueueTable {
  private readonly topics = new Map<string, ConsumeQueue[]>();
  /**
   * Topics whose dropped queues' files are being deleted: their new queues
   * write nothing until then (they use the same directories).
   */
  private readonly deleting = new Map<string, Promise<void>>();
  /** Queues holding entries not yet written. */
  private readonly pending = new Set<ConsumeQueue>();
  /** Queues written since the last sync. */
  private readonly unsynced = new Set<ConsumeQueue>();
  /** Entry buffers shared by the queues. */
  readonly buffers = new EntryBufferPool();

  constructor(
    readonly dir: string,
    readonly fileBytes: number,
    private readonly logger: Logger,
    private readonly pool: FilePool,
    private readonly tombstones: TopicTombstones,
  ) {}

  /** Opens every queue found on disk (load the tombstones first: they apply to what is found). */
  async load(): Promise<void> {
    const topics = await readdir(this.dir, { withFileTypes: true });
    for (const t of topics) {
      if (!t.isDirectory()) continue;
      const queues = await readdir(join(this.dir, t.name), { withFileTypes: true });
      for (const q of queues) {
        const queueId = Number(q.name);
        if (!q.isDirectory() || !/^\d+$/.test(q.name) || queueId > 0x7fffffff) continue;
        const cq = this.getOrCreate(t.name, queueId);
        await cq.load();
        this.unsynced.add(cq); // load may have cut a partial entry
      }
    }
    // Old entries of a deleted topic left behind (a crash before their files were deleted).
    for (const t of this.tombstones.all()) await this.applyTombstone(t);
  }

  get(topic: string, queueId: number): ConsumeQueue | undefined {
    return this.topics.get(topic)?.[queueId];
  }

  getOrCreate(topic: string, queueId: number): ConsumeQueue {
    let queues = this.topics.get(topic);
    if (!queues) {
      queues = [];
      this.topics.set(topic, queues);
    }
    let cq = queues[queueId];
    if (!cq) {
      cq = new ConsumeQueue(
        this.dir,
        topic,
        queueId,
        this.fileBytes,
        this.logger,
        this.pool,
        this.buffers,
      );
      const deleted = this.tombstones.get(topic);
      if (deleted) {
        // Re-created after a deletion: new offsets continue after the old ones, old records stay out.
        cq.deletedBelow = deleted.physicalOffset;
        cq.nextAssign = deleted.queues.get(queueId) ?? 0;
      }
      queues[queueId] = cq;
    }
    return cq;
  }

  queueIds(topic: string): number[] {
    const out: number[] = [];
    this.topics.get(topic)?.forEach((cq, id) => {
      if (cq) out.push(id);
    });
    return out;
  }

  get topicCount(): number {
    return this.topics.size;
  }

  get isEmpty(): boolean {
    for (const queues of this.topics.values()) {
      for (const cq of queues) if (cq && !cq.isEmpty) return false;
    }
    return true;
  }

  *all(): IterableIterator<ConsumeQueue> {
    for (const queues of this.topics.values()) for (const cq of queues) if (cq) yield cq;
  }

  /** Adds an entry (see ConsumeQueue.put); starts a background write once a queue has enough pending. */
  put(
    cq: ConsumeQueue,
    queueOffset: number,
    physicalOffset: number,
    size: number,
    tagsHi: number,
    tagsLo: number,
  ): boolean {
    if (!cq.put(queueOffset, physicalOffset, size, tagsHi, tagsLo)) return false;
    this.pending.add(cq);
    if (cq.pendingBytes >= CQ_WRITE_THRESHOLD_BYTES) this.writeQueue(cq).catch(() => undefined);
    return true;
  }

  private async writeQueue(cq: ConsumeQueue): Promise<void> {
    const deleting = this.deleting.get(cq.topic);
    if (deleting) await deleting.catch(() => undefined);
    this.unsynced.add(cq);
    try {
      await cq.writePending();
    } catch (err) {
      this.pending.add(cq);
      throw err;
    }
  }

  /** Writes every queue's pending entries. */
  async writeAll(): Promise<void> {
    const queues = [...this.pending];
    this.pending.clear();
    for (const cq of queues) await this.writeQueue(cq);
  }

  /** Writes and fdatasyncs everything pending. */
  async flush(): Promise<void> {
    await this.writeAll();
    const queues = [...this.unsynced];
    this.unsynced.clear();
    for (const cq of queues) await cq.sync();
  }

  /**
   * What every non-empty queue holds now (for the queue checkpoint; take it
   * before the flush that makes it durable).
   */
  async extents(): Promise<QueueExtent[]> {
    const out: QueueExtent[] = [];
    for (const cq of this.all()) {
      if (cq.maxOffset > cq.minOffset) {
        out.push({
          topic: cq.topic,
          queueId: cq.queueId,
          minOffset: cq.minOffset,
          maxOffset: cq.maxOffset,
          firstPhysicalOffset: -1,
        });
      }
    }
    // Offsets first (synchronously, all at one point in time), then the lookups.
    for (const e of out) {
      e.firstPhysicalOffset = await this.get(e.topic, e.queueId)!.firstPhysicalOffset();
    }
    return out;
  }

  /**
   * Start: compares the loaded queues with what the queue checkpoint says they
   * held; answers the lowest commitlog offset from which records must be
   * re-dispatched to rebuild every queue that was lost or cut short (undefined
   * when none was). Records below `minPhysicalOffset` are gone anyway.
   */
  async lowestLagging(
    expected: ReadonlyMap<string, QueueExtent>,
    minPhysicalOffset: number,
  ): Promise<number | undefined> {
    let lowest: number | undefined;
    for (const e of expected.values()) {
      // A queue of a deleted topic (a crash before the next checkpoint): gone on purpose.
      const next = this.tombstones.get(e.topic)?.queues.get(e.queueId);
      if (next !== undefined && e.maxOffset <= next) continue;
      const cq = this.get(e.topic, e.queueId);
      const have = cq && !cq.isEmpty ? cq.maxOffset : 0;
      if (have >= e.maxOffset) continue;
      let from = have > 0 && cq ? await cq.endPhysicalOffset() : -1;
      if (from < 0) from = e.firstPhysicalOffset;
      from = Math.max(from, minPhysicalOffset);
      this.logger.warn(
        { topic: e.topic, queueId: e.queueId, have, expected: e.maxOffset, from },
        'consume queue lost or shorter than the queue checkpoint says; rebuilding it from the commitlog',
      );
      if (lowest === undefined || from < lowest) lowest = from;
    }
    return lowest;
  }

  /** Recovery: drops entries past the commitlog end; answers how many. */
  async truncatePast(end: number): Promise<number> {
    let dropped = 0;
    for (const cq of this.all()) {
      const n = await cq.truncatePast(end);
      if (n > 0) this.unsynced.add(cq);
      dropped += n;
    }
    return dropped;
  }

  async correctMinOffsets(minPhysicalOffset: number): Promise<void> {
    for (const cq of this.all()) await cq.correctMinOffset(minPhysicalOffset);
  }

  /** Retention: deletes queue files wholly below minPhysicalOffset; answers how many. */
  async deleteFilesBelow(minPhysicalOffset: number): Promise<number> {
    let deleted = 0;
    for (const cq of this.all()) deleted += await cq.deleteFilesBelow(minPhysicalOffset);
    return deleted;
  }

  /**
   * Applies a deleted topic's tombstone to its queues here: a queue holding
   * only entries of the deleted topic (all below the tombstone's next offset)
   * is dropped, files included; one that also holds newer entries (a slave
   * that replicated the old ones before it learned of the deletion) keeps
   * them and hides the old ones. Either way records below the tombstone's
   * physical offset are refused from now on. `beforeDelete` (making the
   * tombstone durable) runs once the queues are detached, before any file
   * is deleted.
   */
  async applyTombstone(t: TopicTombstone, beforeDelete?: () => Promise<void>): Promise<void> {
    const queues = this.topics.get(t.topic) ?? [];
    const dropped: ConsumeQueue[] = [];
    let kept = 0;
    queues.forEach((cq, queueId) => {
      if (!cq) return;
      if (cq.deletedBelow < t.physicalOffset) cq.deletedBelow = t.physicalOffset;
      const next = t.queues.get(queueId) ?? 0;
      if (cq.maxOffset <= next) {
        dropped.push(cq);
        delete queues[queueId];
        this.pending.delete(cq);
        this.unsynced.delete(cq);
      } else {
        if (cq.minOffset < next) cq.minOffset = next;
        kept++;
      }
    });
    if (kept === 0 && !queues.some(Boolean)) this.topics.delete(t.topic);
    const previous = this.deleting.get(t.topic);
    const run = (async () => {
      await previous?.catch(() => undefined);
      await beforeDelete?.();
      for (const cq of dropped) await cq.destroy();
      // The topic's directory goes too unless a queue kept files in it.
      if (kept === 0) await rm(join(this.dir, t.topic), { recursive: true, force: true });
    })();
    this.deleting.set(t.topic, run);
    try {
      await run;
    } finally {
      if (this.deleting.get(t.topic) === run) this.deleting.delete(t.topic);
    }
  }

  async close(): Promise<void> {
    for (const cq of this.all()) await cq.close();
  }
}
