/**
 * Transactional messages (RocketMQ's half-message model).
 *
 * A half message is stored in the internal topic RMQ_SYS_TRANS_HALF_TOPIC
 * (queue 0, transaction bits cleared so it has a consume queue to scan) with
 * its real topic/queue in REAL_TOPIC/REAL_QID; consumers never see that
 * topic. Its transaction id is the half record's offset message id.
 *
 *  - commit:   the decision is journalled first (a PUT of the half's entry
 *              with the `committing` flag, durable per flushDiskType), then
 *              the real message is appended to its topic (sysFlag
 *              TRANSACTION_COMMIT, preparedTransactionOffset = the half's
 *              commitlog offset), then the half offset is settled. A restart
 *              finds journalled commits that were not settled and finishes
 *              them: the real message is appended unless the commitlog
 *              already has it (looked up by message id, matched on
 *              preparedTransactionOffset), so a crash anywhere in between
 *              yields exactly one copy and no check-back.
 *  - rollback: the half offset is settled; nothing is delivered.
 *  - no decision transactionTimeOut ms after it was stored: the half is
 *    offered by orphans() (GetOrphanedTransactions; the gateway asks the
 *    producer), again every transactionCheckInterval ms, at most
 *    transactionCheckMax times; when it is due once more after that, it is
 *    discarded and logged.
 *
 * The op log is the consume-state journal of reader `#transaction`: SETTLE
 * for decided/discarded halves, PUT for check counts (attempt = checks so far,
 * popTime + invisibleMs = next check) and commit decisions. At start the open
 * halves are rebuilt by reading the half topic from the reader's base,
 * skipping settled runs.
 *
 * A repeated EndTransaction is answered from durable state, so it is
 * idempotent across restarts too: the transaction id is the half's offset
 * message id (it names the half's commitlog position); a settled half whose
 * committed message is in the commitlog was committed, any other settled half
 * was rolled back (or discarded, which counts as a rollback).
 */
import { Code, errors, statusOf } from '../../common/errors.js';
import type { EndTransactionEntry__Output } from '../../common/generated/sluice/v1/EndTransactionEntry.js';
import type { OrphanedTransaction } from '../../common/generated/sluice/v1/OrphanedTransaction.js';
import type { Status } from '../../common/generated/sluice/v1/Status.js';
import {
  type AppendResult,
  type MessageInput,
  type StoredRecord,
  SysFlag,
} from '../store/index.js';
import type { BrokerContext } from './broker-context.js';
import type { InflightEntry, QueueState } from './consume-state.js';
import type { ConsumeStateStore } from './consume-state-store.js';
import { toStoredMessage } from './message-codec.js';
import { SystemProperty } from './properties.js';
import { scanOpenRecords } from './queue-scan.js';
import { TRANS_HALF_TOPIC, TRANSACTION_READER } from './system-topics.js';

const DISCARD_SCAN_INTERVAL_MS = 1_000;
export const MAX_ORPHANS_PER_CALL = 1_000;

interface Half {
  offset: number;
  physicalOffset: number;
  transactionId: string;
  messageId: string;
  realTopic: string;
  storeTimestamp: number;
  /** Check-backs offered so far. */
  checks: number;
  /** Epoch ms of the next check-back. */
  nextCheckAt: number;
  /** A decision is being applied. */
  busy: boolean;
}

export interface TransactionStats {
  open: number;
  committed: number;
  rolledBack: number;
  discarded: number;
}

export class TransactionService {
  private state: QueueState | undefined;
  /** Open halves by half-topic queue offset (insertion order = offset order). */
  private readonly open = new Map<number, Half>();
  private readonly byId = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  committed = 0;
  rolledBack = 0;
  discarded = 0;

  constructor(
    private readonly ctx: BrokerContext,
    private readonly states: ConsumeStateStore,
  ) {}

  async start(): Promise<void> {
    const store = this.ctx.store;
    this.state = this.states.obtain(TRANSACTION_READER, TRANS_HALF_TOPIC, 0, () =>
      store.minOffset(TRANS_HALF_TOPIC, 0),
    );
    const st = this.state;
    const committing: Half[] = [];
    const lost = await scanOpenRecords(
      store,
      st,
      (r) => {
        const e = st.inflight.get(r.queueOffset);
        const h = this.add(
          r.queueOffset,
          r.physicalOffset,
          r.offsetMessageId,
          r,
          r.storeTimestamp,
          e,
        );
        if (e?.committing) committing.push(h);
      },
      true,
    );
    if (committing.length > 0) await this.finishCommits(committing);
    if (lost.length > 0) {
      this.ctx.logger.warn(
        { halves: lost.length },
        'half messages removed by retention before a decision',
      );
      await this.states.settleOffsets(st, lost);
    }
    this.ctx.logger.info({ open: this.open.size }, 'open transactions recovered');
    this.timer = setInterval(() => void this.discardExpired(), DISCARD_SCAN_INTERVAL_MS);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  stats(): TransactionStats {
    return {
      open: this.open.size,
      committed: this.committed,
      rolledBack: this.rolledBack,
      discarded: this.discarded,
    };
  }

  private add(
    offset: number,
    physicalOffset: number,
    transactionId: string,
    r: Pick<StoredRecord, 'messageId' | 'properties'>,
    storeTimestamp: number,
    checked?: InflightEntry,
  ): Half {
    const h: Half = {
      offset,
      physicalOffset,
      transactionId,
      messageId: r.messageId,
      realTopic: r.properties[SystemProperty.REAL_TOPIC] ?? '',
      storeTimestamp,
      checks: checked?.attempt ?? 0,
      nextCheckAt: checked
        ? checked.popTime + checked.invisibleMs
        : storeTimestamp + this.ctx.options.transactionTimeOut,
      busy: false,
    };
    this.open.set(offset, h);
    this.byId.set(transactionId, offset);
    return h;
  }

  /**
   * Start: commits that were journalled but not settled before a crash. The
   * real message is appended only when the commitlog does not have it yet.
   */
  private async finishCommits(halves: Half[]): Promise<void> {
    for (const h of halves) h.busy = true;
    const records = await Promise.all(halves.map((h) => this.ctx.store.readAt(h.physicalOffset)));
    const inputs: MessageInput[] = [];
    for (let i = 0; i < halves.length; i++) {
      const h = halves[i]!;
      const r = records[i];
      if (r && !(await this.committedCopy(h.realTopic, h.messageId, h.physicalOffset))) {
        inputs.push(this.unwrap(r, h.physicalOffset));
      }
    }
    if (inputs.length > 0) await this.ctx.store.appendBatch(inputs);
    for (const h of halves) {
      this.open.delete(h.offset);
      this.byId.delete(h.transactionId);
    }
    this.committed += halves.length;
    await this.states.settleOffsets(
      this.state!, // called from start()
      halves.map((h) => h.offset),
    );
    this.ctx.logger.info(
      { transactions: halves.length, appended: inputs.length },
      'commits journalled before a crash finished',
    );
  }

  /** True when `realTopic` holds the committed message of the half at `halfPhysicalOffset`. */
  private async committedCopy(
    realTopic: string,
    messageId: string,
    halfPhysicalOffset: number,
  ): Promise<boolean> {
    const r = await this.ctx.store.lookupById(realTopic, messageId);
    return (
      r !== undefined &&
      r.preparedTransactionOffset === halfPhysicalOffset &&
      (r.sysFlag & SysFlag.TRANSACTION_MASK) === SysFlag.TRANSACTION_COMMIT
    );
  }

  /**
   * The decision taken on a transaction that is no longer open, from durable
   * state: 'commit', 'rollback' (or discarded), or undefined when the id names
   * no half that was decided.
   */
  private async decisionOf(transactionId: string): Promise<'commit' | 'rollback' | undefined> {
    const st = this.state;
    if (!st) return undefined;
    const half = await this.ctx.store.lookupById(TRANS_HALF_TOPIC, transactionId);
    if (!half || half.offsetMessageId !== transactionId.toUpperCase()) return undefined;
    if (!st.isSettled(half.queueOffset)) return undefined;
    const realTopic = half.properties[SystemProperty.REAL_TOPIC] ?? '';
    return (await this.committedCopy(realTopic, half.messageId, half.physicalOffset))
      ? 'commit'
      : 'rollback';
  }

  /** Turns a message for `input.topic` into its half record. */
  wrap(input: MessageInput): MessageInput {
    return {
      ...input,
      topic: TRANS_HALF_TOPIC,
      queueId: 0,
      sysFlag: (input.sysFlag ?? 0) & ~SysFlag.TRANSACTION_MASK,
      properties: {
        ...input.properties,
        [SystemProperty.REAL_TOPIC]: input.topic,
        [SystemProperty.REAL_QUEUE_ID]: String(input.queueId),
        [SystemProperty.TRANSACTION_PREPARED]: 'true',
      },
    };
  }

  /** Registers half records just appended (before the send is answered). */
  track(results: readonly AppendResult[], inputs: readonly MessageInput[]): void {
    results.forEach((r, i) => {
      const input = inputs[i]!;
      this.add(r.queueOffset, r.physicalOffset, r.offsetMessageId, input, r.storeTimestamp);
    });
  }

  /** Commits or rolls back a batch; answers per entry. */
  async end(entries: readonly EndTransactionEntry__Output[]): Promise<Status[]> {
    if (!this.state) throw errors.notMaster(this.ctx.options.brokerName);
    const results: Status[] = new Array(entries.length);
    const commits: Array<{ i: number; h: Half }> = [];
    const rollbacks: Array<{ i: number; h: Half }> = [];
    const repeated: number[] = [];
    entries.forEach((entry, i) => {
      try {
        const offset = this.byId.get(entry.transaction_id);
        const h = offset === undefined ? undefined : this.open.get(offset);
        if (!h) {
          repeated.push(i); // decided before (maybe before a restart), or unknown
          return;
        }
        if (entry.message_id && entry.message_id !== h.messageId) {
          throw errors.invalidTransactionId(entry.transaction_id);
        }
        if (entry.topic && entry.topic !== h.realTopic) {
          throw errors.badRequest(
            `transaction ${entry.transaction_id} belongs to topic '${h.realTopic}'`,
          );
        }
        if (h.busy) throw errors.invalidTransactionId(entry.transaction_id);
        h.busy = true;
        (entry.commit ? commits : rollbacks).push({ i, h });
      } catch (err) {
        results[i] = statusOf(err);
      }
    });
    await Promise.all(
      repeated.map(async (i) => {
        const entry = entries[i]!;
        try {
          const earlier = await this.decisionOf(entry.transaction_id);
          if (earlier === undefined || (earlier === 'commit') !== entry.commit) {
            throw errors.invalidTransactionId(entry.transaction_id);
          }
          results[i] = { code: Code.OK, message: 'already decided', reason: '' };
        } catch (err) {
          results[i] = statusOf(err);
        }
      }),
    );
    if (commits.length > 0) {
      try {
        // The decision is durable before the message goes out: a crash after
        // this point finishes the commit at the next start (see start()).
        const now = this.ctx.clock();
        await this.states.put(
          this.state,
          commits.map(({ h }) => ({
            offset: h.offset,
            physicalOffset: h.physicalOffset,
            popTime: now,
            invisibleMs: this.ctx.options.transactionCheckInterval,
            attempt: h.checks,
            messageGroup: '',
            fifo: false,
            committing: true,
          })),
        );
        const records = await Promise.all(
          commits.map(({ h }) => this.ctx.store.readAt(h.physicalOffset)),
        );
        const inputs: MessageInput[] = [];
        records.forEach((r, k) => {
          if (r) inputs.push(this.unwrap(r, commits[k]!.h.physicalOffset));
        });
        if (inputs.length > 0) await this.ctx.store.appendBatch(inputs);
        commits.forEach(({ i, h }, k) => {
          results[i] = records[k]
            ? { code: Code.OK, message: 'OK', reason: '' }
            : statusOf(
                errors.messageNotFound(`half message of ${h.transactionId} is no longer stored`),
              );
        });
      } catch (err) {
        for (const { i, h } of commits) {
          h.busy = false;
          results[i] = statusOf(err);
        }
        // Not committed: take the journalled decision back (best effort; the
        // producer got an error and is asked again by a check-back).
        const undo = this.state.inflight;
        void this.states
          .put(
            this.state,
            commits.flatMap(({ h }) => {
              const e = undo.get(h.offset);
              return e?.committing ? [{ ...e, committing: false }] : [];
            }),
          )
          .catch(() => undefined);
        commits.length = 0;
      }
    }
    for (const { i } of rollbacks) results[i] = { code: Code.OK, message: 'OK', reason: '' };
    const done = [...commits.map((c) => c.h), ...rollbacks.map((r) => r.h)];
    if (done.length === 0) return results;
    for (const h of done) this.finish(h);
    this.committed += commits.length;
    this.rolledBack += rollbacks.length;
    await this.states.settleOffsets(
      this.state,
      done.map((h) => h.offset),
    );
    for (const { h } of rollbacks) {
      this.ctx.logger.info(
        { transactionId: h.transactionId, topic: h.realTopic },
        'transaction rolled back',
      );
    }
    return results;
  }

  private finish(h: Half): void {
    this.open.delete(h.offset);
    this.byId.delete(h.transactionId);
  }

  /**
   * Halves undecided past their check time, each counted as one check-back
   * (the gateway asks the producer). Halves checked transactionCheckMax times
   * are discarded instead. With `topic`, only that topic's halves are looked at.
   */
  async orphans(max: number, topic = ''): Promise<OrphanedTransaction[]> {
    if (!this.state) return []; // a slave: its master offers them
    const limit = Math.min(Math.max(1, max || 32), MAX_ORPHANS_PER_CALL);
    const now = this.ctx.clock();
    const offered: Half[] = [];
    const checks: InflightEntry[] = [];
    const expired: Half[] = [];
    for (const h of this.open.values()) {
      if (offered.length >= limit) break;
      if (h.busy || h.nextCheckAt > now || (topic && h.realTopic !== topic)) continue;
      if (h.checks >= this.ctx.options.transactionCheckMax) {
        expired.push(h);
        continue;
      }
      h.checks++;
      h.nextCheckAt = now + this.ctx.options.transactionCheckInterval;
      offered.push(h);
      checks.push({
        offset: h.offset,
        physicalOffset: h.physicalOffset,
        popTime: now,
        invisibleMs: this.ctx.options.transactionCheckInterval,
        attempt: h.checks,
        messageGroup: '',
        fifo: false,
      });
    }
    await Promise.all([this.states.put(this.state, checks), this.discard(expired)]);
    const records = await Promise.all(offered.map((h) => this.ctx.store.readAt(h.physicalOffset)));
    const out: OrphanedTransaction[] = [];
    records.forEach((r, i) => {
      const h = offered[i]!;
      if (!r) return;
      out.push({
        message: toStoredMessage(r, this.ctx.options.brokerName),
        transaction_id: h.transactionId,
        check_times: h.checks,
      });
    });
    return out;
  }

  private async discardExpired(): Promise<void> {
    const now = this.ctx.clock();
    const expired: Half[] = [];
    for (const h of this.open.values()) {
      if (!h.busy && h.nextCheckAt <= now && h.checks >= this.ctx.options.transactionCheckMax) {
        expired.push(h);
      }
    }
    try {
      await this.discard(expired);
    } catch (err) {
      this.ctx.logger.error({ err }, 'discarding expired transactions failed');
    }
  }

  private async discard(halves: Half[]): Promise<void> {
    if (halves.length === 0) return;
    for (const h of halves) {
      this.open.delete(h.offset);
      this.byId.delete(h.transactionId);
      this.ctx.logger.warn(
        {
          transactionId: h.transactionId,
          topic: h.realTopic,
          messageId: h.messageId,
          checks: h.checks,
        },
        'transaction discarded: no decision after the maximum number of check-backs',
      );
    }
    this.discarded += halves.length;
    await this.states.settleOffsets(
      this.state!, // only reached after start()
      halves.map((h) => h.offset),
    );
  }

  /** The committed message of a half record. */
  private unwrap(r: StoredRecord, halfPhysicalOffset: number): MessageInput {
    const p = { ...r.properties };
    const topic = p[SystemProperty.REAL_TOPIC] ?? r.topic;
    let queueId = Number(p[SystemProperty.REAL_QUEUE_ID] ?? 0);
    const config = this.ctx.topics.get(topic);
    if (config && queueId >= config.write_queue_nums)
      queueId %= Math.max(1, config.write_queue_nums);
    delete p[SystemProperty.REAL_TOPIC];
    delete p[SystemProperty.REAL_QUEUE_ID];
    delete p[SystemProperty.TRANSACTION_PREPARED];
    return {
      topic,
      queueId,
      body: r.body,
      tag: r.tag,
      keys: r.keys,
      properties: p,
      messageId: r.messageId,
      flag: r.flag,
      sysFlag: SysFlag.TRANSACTION_COMMIT,
      bornTimestamp: r.bornTimestamp,
      bornHost: r.bornHost,
      reconsumeTimes: r.reconsumeTimes,
      preparedTransactionOffset: halfPhysicalOffset,
    };
  }
}
