/**
 * Slave side of metadata replication: applies a master's snapshot
 * (metadata-snapshot.ts) so that, when the master is gone, the slave
 * registers the same topics with the name servers and consumers continue
 * from the offsets the master last had.
 *
 *  - topics.json / subscriptionGroup.json: through the managers (the master's
 *    set wins: new and changed entries are upserted, missing ones deleted);
 *  - consumerOffset*.json: committed through the offset manager, forward
 *    only (offset-sync.ts): an offset committed here while the master was
 *    down is not moved back by the master's older copy. A pop state this
 *    slave keeps for the queue (it serves pops while the master is down)
 *    only moves forward too: offsets below the master's are settled, except
 *    those in flight here (a consumer may still ack them; they are never
 *    dropped);
 *  - consumerOffsetReset.json: the master's explicit resets; each one not
 *    applied yet sets its queue's offset (and pop state) to the reset offset,
 *    backwards too — the only way an offset moves back here. The file is
 *    then written here as well: it records which resets were applied;
 *  - deletedTopics.json: merged by the store (MessageStore.applyDeletedTopics),
 *    which drops or trims this slave's queues of deleted topics as the
 *    master did and writes its own copy;
 *  - any other file: written as is (atomically) into the slave's config
 *    directory, read by its owner at the next start;
 *  - readers (timer / transaction progress): the slave's consume-state is
 *    moved forward to the master's base.
 *
 * Everything is idempotent: applying the same snapshot twice changes nothing.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import type { ConsumeStateStore } from '../messaging/consume-state-store.js';
import { isInternalReader } from '../messaging/system-topics.js';
import type { ConsumerOffsetManager } from '../metadata/consumer-offset-manager.js';
import type {
  SubscriptionGroupConfig,
  SubscriptionGroupManager,
} from '../metadata/subscription-group-manager.js';
import type { TopicConfig, TopicConfigManager } from '../metadata/topic-config-manager.js';
import { DELETED_TOPICS_FILE, type MessageStore, parseTopicTombstones } from '../store/index.js';
import type { MetadataSnapshot } from './metadata-snapshot.js';
import {
  type HandshakeOffsets,
  offsetTableOf,
  parseResets,
  RESETS_FILE,
  type ResetTable,
  readResets,
  settlePopStateUpTo,
  splitOffsetKey,
} from './offset-sync.js';

/** File names the metadata managers use (broker/metadata). */
export const TOPICS_FILE = 'topics.json';
export const GROUPS_FILE = 'subscriptionGroup.json';
export const OFFSETS_FILE = 'consumerOffset.json';
export const BROADCAST_OFFSETS_FILE = 'consumerOffset-broadcast.json';

export interface MetadataTargets {
  configDir: string;
  topics: TopicConfigManager;
  groups: SubscriptionGroupManager;
  offsets: ConsumerOffsetManager;
  states?: Pick<ConsumeStateStore, 'get' | 'obtain' | 'reset' | 'settle'>;
  /** Applies the master's deleted-topic tombstones to this slave's consume queues. */
  store?: Pick<MessageStore, 'applyDeletedTopics'>;
  logger: Logger;
}

/** What one apply() changed (for logs and tests). */
export interface ApplyReport {
  topics: number;
  groups: number;
  offsets: number;
  files: number;
  readers: number;
}

type OffsetTable = Record<string, Record<string, number>>;
type BroadcastTable = Record<string, Record<string, Record<string, number>>>;

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class MetadataApplier {
  private running: Promise<unknown> = Promise.resolve();
  /** Epoch ms of the last snapshot applied completely; 0 = none yet. */
  lastAppliedAt = 0;

  /** Resets applied here (the master's RESETS_FILE as last applied). */
  private readonly applied: ResetTable;

  constructor(private readonly t: MetadataTargets) {
    this.applied = readResets(t.configDir);
  }

  /** This slave's offsets and applied resets, for its replication handshake. */
  handshakeOffsets(): HandshakeOffsets {
    const resets: HandshakeOffsets['resets'] = {};
    for (const [key, queues] of Object.entries(this.applied)) {
      resets[key] = Object.fromEntries(Object.entries(queues).map(([q, e]) => [q, e.seq]));
    }
    return { offsets: offsetTableOf(this.t.offsets), resets };
  }

  /** Applies snapshots one at a time, in arrival order. */
  apply(snapshot: MetadataSnapshot): Promise<ApplyReport> {
    const run = this.running.then(() => this.applyNow(snapshot));
    this.running = run.catch(() => undefined);
    return run;
  }

  private async applyNow(s: MetadataSnapshot): Promise<ApplyReport> {
    const report: ApplyReport = { topics: 0, groups: 0, offsets: 0, files: 0, readers: 0 };
    // Resets first: a reset and the offsets committed after it may arrive together.
    const resets = s.files[RESETS_FILE];
    if (resets !== undefined) report.offsets += await this.applyResets(resets);
    for (const [name, text] of Object.entries(s.files)) {
      if (name === RESETS_FILE) continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        this.t.logger.warn({ file: name }, 'replicated config file is not JSON; skipped');
        continue;
      }
      switch (name) {
        case TOPICS_FILE:
          report.topics += await this.applyTopics(
            value as { topics?: Record<string, TopicConfig> },
          );
          break;
        case GROUPS_FILE:
          report.groups += await this.applyGroups(value as Record<string, SubscriptionGroupConfig>);
          break;
        case OFFSETS_FILE:
          report.offsets += await this.applyOffsets(value as OffsetTable);
          break;
        case BROADCAST_OFFSETS_FILE:
          report.offsets += this.applyBroadcastOffsets(value as BroadcastTable);
          break;
        case DELETED_TOPICS_FILE:
          // The store merges and writes its own copy (it may know more than this master).
          if (this.t.store) {
            report.topics += await this.t.store.applyDeletedTopics(parseTopicTombstones(value));
          }
          break;
        default:
          report.files += (await this.writeIfChanged(name, text)) ? 1 : 0;
      }
    }
    if (report.offsets > 0) await this.t.offsets.flush();
    report.readers += await this.applyReaders(s);
    this.lastAppliedAt = Date.now();
    if (report.topics + report.groups + report.files + report.readers > 0) {
      this.t.logger.info({ ...report }, 'replicated metadata applied');
    }
    return report;
  }

  private async applyTopics(file: { topics?: Record<string, TopicConfig> }): Promise<number> {
    const master = file.topics ?? {};
    let changed = 0;
    for (const [name, config] of Object.entries(master)) {
      const local = this.t.topics.get(name);
      if (local && sameJson(local, config)) continue;
      await this.t.topics.upsert({ ...config, topic_name: name });
      changed++;
    }
    for (const local of this.t.topics.all()) {
      if (master[local.topic_name]) continue;
      await this.t.topics.delete(local.topic_name);
      changed++;
    }
    return changed;
  }

  private async applyGroups(master: Record<string, SubscriptionGroupConfig>): Promise<number> {
    let changed = 0;
    for (const [name, config] of Object.entries(master)) {
      const local = this.t.groups.get(name);
      if (local && sameJson(local, config)) continue;
      await this.t.groups.upsert({ ...config, group_name: name });
      changed++;
    }
    for (const local of this.t.groups.all()) {
      if (master[local.group_name]) continue;
      await this.t.groups.delete(local.group_name);
      changed++;
    }
    return changed;
  }

  private async applyOffsets(table: OffsetTable): Promise<number> {
    let changed = 0;
    for (const [key, queues] of Object.entries(table)) {
      const [topic, group] = splitOffsetKey(key);
      for (const [q, offset] of Object.entries(queues)) {
        const queueId = Number(q);
        if (!Number.isSafeInteger(queueId) || !Number.isSafeInteger(offset)) continue;
        // Forward only: a higher offset here was committed on this slave (or
        // arrived earlier) and the master's copy is older.
        const local = this.t.offsets.get(group, topic, queueId);
        if (local !== undefined && local >= offset) continue;
        // Pop state first: its progress is mirrored into the offsets (onAdvance),
        // and the master's offset is the one the table ends up with.
        const st = this.t.states?.get(group, topic, queueId);
        if (st && st.base < offset) await settlePopStateUpTo(this.t.states!, st, offset);
        this.t.offsets.commit(group, topic, queueId, offset);
        changed++;
      }
    }
    return changed;
  }

  /**
   * Applies the master's explicit resets this slave has not applied yet (by
   * sequence): the queue's offset and pop state go to the reset offset, even
   * backwards. Then records them (memory and the file here).
   */
  private async applyResets(text: string): Promise<number> {
    let master: ResetTable;
    try {
      master = parseResets(JSON.parse(text));
    } catch {
      this.t.logger.warn({ file: RESETS_FILE }, 'replicated config file is not JSON; skipped');
      return 0;
    }
    let changed = 0;
    for (const [key, queues] of Object.entries(master)) {
      const [topic, group] = splitOffsetKey(key);
      for (const [q, reset] of Object.entries(queues)) {
        const done = this.applied[key]?.[q]?.seq ?? 0;
        if (reset.seq <= done) continue;
        const queueId = Number(q);
        const st = this.t.states?.get(group, topic, queueId);
        if (st) await st.withLock(() => this.t.states!.reset(st, reset.offset));
        this.t.offsets.commit(group, topic, queueId, reset.offset);
        this.applied[key] ??= {};
        this.applied[key][q] = reset;
        changed++;
      }
    }
    if (changed > 0) {
      await this.t.offsets.flush();
      await this.writeIfChanged(RESETS_FILE, JSON.stringify(this.applied, null, 2));
      this.t.logger.info({ queues: changed }, 'applied consumer offset resets from the master');
    }
    return changed;
  }

  private applyBroadcastOffsets(table: BroadcastTable): number {
    let changed = 0;
    for (const [key, clients] of Object.entries(table)) {
      const [topic, group] = splitOffsetKey(key);
      for (const [clientId, queues] of Object.entries(clients)) {
        for (const [q, offset] of Object.entries(queues)) {
          const queueId = Number(q);
          if (!Number.isSafeInteger(queueId) || !Number.isSafeInteger(offset)) continue;
          const local = this.t.offsets.getForClient(group, clientId, topic, queueId);
          if (local !== undefined && local >= offset) continue;
          this.t.offsets.commitForClient(group, clientId, topic, queueId, offset);
          changed++;
        }
      }
    }
    return changed;
  }

  private async applyReaders(s: MetadataSnapshot): Promise<number> {
    const states = this.t.states;
    if (!states) return 0;
    let changed = 0;
    for (const r of s.readers) {
      if (!isInternalReader(r.group)) continue;
      const st = states.get(r.group, r.topic, r.queueId);
      if (!st) {
        states.obtain(r.group, r.topic, r.queueId, () => r.base);
        changed++;
      } else if (st.base < r.base) {
        await st.withLock(() => states.reset(st, r.base));
        changed++;
      }
    }
    return changed;
  }

  /** Writes a file atomically (temp + fsync + rename) unless it already has this text. */
  private async writeIfChanged(name: string, text: string): Promise<boolean> {
    const path = join(this.t.configDir, name);
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current === text) return false;
    await mkdir(this.t.configDir, { recursive: true });
    const tmp = `${path}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(text);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    return true;
  }
}
