/**
 * Transport-free gateway operations (REST and gRPC both call these): send
 * with retry on another broker, receive (pop) across a topic's brokers with
 * long polling, settle (ack / change invisibility / dead-letter) by the
 * broker a receipt handle names, offset-based pull and offset commits, and
 * ending transactions.
 *
 * Producer behaviour follows RocketMQ's clients: a send that fails on one
 * broker is retried on another (`sendRetries`), brokers that were slow or
 * failing are avoided for a while (LatencyFaultTolerance), and concurrent
 * sends to one broker share batch RPCs (SendBatcher).
 *
 * Read failover (DESIGN.md §7): a read (receive, pull, offsets, ack /
 * change-invisible of a handle) whose broker cannot be reached (UNAVAILABLE)
 * drops the topic's route, marks that master unreachable in the
 * RouteResolver (its reads then go to the broker's lowest-id slave until the
 * master is back) and is tried once more on the slave. Dead-lettering writes,
 * so it needs the master (a slave answers NOT_MASTER). A receipt handle names
 * the broker name, not the broker id: a handle popped from the slave is
 * settled on the slave while the master is down, and is stale (40013) on the
 * master once reads go back to it (the message may then come again: at least
 * once).
 */

import { randomBytes } from 'node:crypto';
import { anyAddrOf, masterAddrOf } from '../../common/broker-addrs.js';
import { messagesOf } from '../../common/compact-messages.js';
import { sendEntries } from '../../common/compact-send-results.js';
import {
  Code,
  errors,
  isSluiceError,
  RETRIABLE_CODES,
  type SluiceError,
  statusOf,
} from '../../common/errors.js';
import { fromGrpcError } from '../../common/errors-grpc.js';
import type { BrokerClient } from '../../common/generated/sluice/v1/Broker.js';
import type { Empty__Output } from '../../common/generated/sluice/v1/Empty.js';
import type { EndTransactionRequest } from '../../common/generated/sluice/v1/EndTransactionRequest.js';
import type { EndTransactionResponse__Output } from '../../common/generated/sluice/v1/EndTransactionResponse.js';
import type { ForwardToDeadLetterQueueRequest } from '../../common/generated/sluice/v1/ForwardToDeadLetterQueueRequest.js';
import type { GetConsumerOffsetsRequest } from '../../common/generated/sluice/v1/GetConsumerOffsetsRequest.js';
import type { GetConsumerOffsetsResponse__Output } from '../../common/generated/sluice/v1/GetConsumerOffsetsResponse.js';
import type { GetOrphanedTransactionsRequest } from '../../common/generated/sluice/v1/GetOrphanedTransactionsRequest.js';
import type { GetOrphanedTransactionsResponse__Output } from '../../common/generated/sluice/v1/GetOrphanedTransactionsResponse.js';
import type { Message } from '../../common/generated/sluice/v1/Message.js';
import type { PopMessagesRequest } from '../../common/generated/sluice/v1/PopMessagesRequest.js';
import type { PullMessagesRequest } from '../../common/generated/sluice/v1/PullMessagesRequest.js';
import type { PullMessagesResponse__Output } from '../../common/generated/sluice/v1/PullMessagesResponse.js';
import type { SendEntry } from '../../common/generated/sluice/v1/SendEntry.js';
import type { SendResult__Output } from '../../common/generated/sluice/v1/SendResult.js';
import type { Status__Output } from '../../common/generated/sluice/v1/Status.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import type { UpdateConsumerOffsetsRequest } from '../../common/generated/sluice/v1/UpdateConsumerOffsetsRequest.js';
import type { UpdateConsumerOffsetsResponse__Output } from '../../common/generated/sluice/v1/UpdateConsumerOffsetsResponse.js';
import type { WakePopsRequest } from '../../common/generated/sluice/v1/WakePopsRequest.js';
import { callUnary } from '../../common/grpc.js';
import type { Logger } from '../../common/logger.js';
import { checkGroupName, checkTopicName } from '../../common/names.js';
import { decodeReceiptHandle, visibleAt } from '../../common/receipt-handle.js';
import { type CallKind, type CallTypes, overCalls } from './broker-calls.js';
import type { BrokerPool } from './broker-pool.js';
import { LatencyFaultTolerance } from './latency-fault-tolerance.js';
import { groupSlot } from './message-group-slot.js';
import type { NamesrvClient } from './namesrv-client.js';
import { ReceiveStash } from './receive-stash.js';
import type { BrokerTarget, RouteResolver } from './route-resolver.js';
import { SendBatcher } from './send-batcher.js';

/** The unary method of each kind of call the broker's Calls stream carries. */
const UNARY_OF = {
  send: 'SendMessages',
  pop: 'PopMessages',
  ack: 'AckMessages',
  change_invisible: 'ChangeInvisibleTime',
} as const satisfies Record<CallKind, keyof BrokerClient>;

/** Extra time a long poll's RPC gets beyond its wait. */
const LONG_POLL_SLACK_MS = 5_000;
/** How long a broker's advice to pull a queue from another node (slave read) is followed. */
export const DEFAULT_PULL_ADVICE_TTL_MS = 30_000;
/** Queues (group, topic, broker, queue) whose pull advice is remembered at most. */
export const DEFAULT_PULL_ADVICE_ENTRIES = 10_000;
/** A held message whose handle has about the invisible time a receive asks for keeps it. */
const REHANDLE_SLACK_MS = 1_000;

interface PollResult {
  messages: StoredMessage__Output[];
  error?: SluiceError;
}

/** A pop waiting on a broker. */
interface LongPoll {
  /** attempt_id: WakePops names it. */
  id: string;
  addr: string;
  done: Promise<PollResult>;
}

export interface SendOutcome {
  /** `retryAfterMs`: when the gateway or broker pushed back, a hint of when to try again. */
  status: { code: number; message: string; reason?: string; retryAfterMs?: number };
  messageId?: string;
  broker?: string;
  queueId?: number;
  offset?: number;
  transactionId?: string;
}

export interface ReceiveOptions {
  max: number;
  waitMs: number;
  invisibleMs: number;
  filter: string;
  signal?: AbortSignal;
}

export interface PullOptions {
  /** Broker holding the queue; may be omitted when one broker serves the topic. */
  broker?: string;
  queueId: number;
  offset: number;
  max: number;
  waitMs: number;
  filter: string;
  signal?: AbortSignal;
}

export interface PullOutcome {
  broker: string;
  /** The node that answered: 0 = the master, > 0 a slave (read/write separation). */
  brokerId: number;
  messages: StoredMessage__Output[];
  nextOffset: number;
  minOffset: number;
  maxOffset: number;
}

export interface QueueOffsetEntry {
  broker?: string;
  queueId: number;
  offset: number;
}

export interface EndTransactionInput {
  topic: string;
  messageId: string;
  transactionId: string;
  commit: boolean;
  /** The broker the send went to (the send result names it); all masters are asked otherwise. */
  broker?: string;
  fromCheck?: boolean;
}

/** A half message a broker wants its producer to decide (transaction check-back). */
export interface OrphanOutcome {
  broker: string;
  transactionId: string;
  checkTimes: number;
  message: StoredMessage__Output;
}

export interface GatewayServiceDeps {
  routes: RouteResolver;
  brokers: BrokerPool;
  namesrv: NamesrvClient;
  logger: Logger;
  secret: string;
  maxMessageSize: number;
  sendRetries: number;
  rpcTimeoutMs: number;
  /** Coalesces concurrent sends per broker; a default one is made when omitted. */
  batcher?: SendBatcher;
  /** Broker avoidance; a default (enabled) one is made when omitted. */
  faults?: LatencyFaultTolerance;
  /** How long popped messages no receive took wait here before going back; see ReceiveStash. */
  stashHoldMs?: number;
  clock?: () => number;
}

export class GatewayService {
  private rr = 0;
  private readonly batcher: SendBatcher;
  readonly faults: LatencyFaultTolerance;
  private readonly clock: () => number;
  /** Receives and pulls currently waiting on brokers (for /metrics). */
  longPollsWaiting = 0;
  /** Popped messages waiting for a receive of their group (see ReceiveStash). */
  readonly stash: ReceiveStash;
  /** Long polls on brokers, by attempt id (woken on shutdown). */
  private readonly polls = new Map<string, LongPoll>();
  /**
   * Read/write separation (RocketMQ's pullFromWhichNodeTable): the broker id
   * the last pull's answer suggested, per group/topic/broker/queue, for
   * DEFAULT_PULL_ADVICE_TTL_MS. Insertion order = age (bounded).
   */
  private readonly pullAdvice = new Map<string, { brokerId: number; until: number }>();
  /** Prefix of this process's pop attempt ids. */
  private readonly instanceId = randomBytes(6).toString('hex');
  private pollSeq = 0;

  constructor(private readonly deps: GatewayServiceDeps) {
    this.clock = deps.clock ?? Date.now;
    this.faults = deps.faults ?? new LatencyFaultTolerance(true, this.clock);
    this.batcher = deps.batcher ?? new SendBatcher((addr, entries) => this.sendRpc(addr, entries));
    this.stash = new ReceiveStash(
      (topic, group, msgs) => this.release(topic, group, msgs),
      deps.stashHoldMs,
      undefined,
      this.clock,
    );
    deps.routes.connected ??= (addr) => deps.brokers.connected(addr);
  }

  /**
   * A read on broker `brokerName` at `addr` failed. When `addr` could not be
   * reached: mark it so that reads of the broker go to a slave, drop the
   * topic's route, and answer that slave's address (undefined when there is
   * none, or for any other failure).
   */
  private async readFailed(
    topic: string,
    brokerName: string,
    addr: string,
    e: SluiceError,
  ): Promise<string | undefined> {
    if (!e.retriable || e.reason !== 'UNAVAILABLE') return undefined;
    this.deps.routes.masterUnreachable(brokerName, addr);
    await this.deps.routes.invalidate(topic);
    const alt = await this.deps.routes.brokerAddr(topic, brokerName).catch(() => undefined);
    return alt && alt !== addr ? alt : undefined;
  }

  /** Runs a read on a broker; once more on its slave when the broker cannot be reached. */
  private async readWithFailover<T>(
    topic: string,
    brokerName: string,
    addr: string,
    run: (addr: string) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    try {
      return await run(addr);
    } catch (err) {
      // Cancelled by the caller: not the broker's failure.
      if (signal?.aborted) throw err;
      const e = fromGrpcError(err, addr);
      const alt = await this.readFailed(topic, brokerName, addr, e);
      if (!alt) throw e;
      this.deps.logger.warn({ broker: brokerName, addr, alt, err: e.message }, 'read failed over');
      return run(alt);
    }
  }

  /**
   * The RPC the batcher issues: one SendMessages call with every coalesced
   * entry, as compact entries asking for compact results (far cheaper to
   * encode and decode; see sendEntries for older brokers).
   */
  sendRpc(addr: string, entries: SendEntry[]): Promise<SendResult__Output[]> {
    return sendEntries((req) => this.dataCall(addr, 'send', req), entries);
  }

  /**
   * A data call (send, pop, ack, change-invisible) on the broker's Calls
   * stream when it has one, else unary (broker-calls.ts).
   */
  private dataCall<K extends CallKind>(
    addr: string,
    kind: K,
    req: CallTypes[K]['req'],
    timeoutMs = this.deps.rpcTimeoutMs,
  ): Promise<CallTypes[K]['res']> {
    return overCalls(
      this.deps.brokers.calls(addr),
      kind,
      (r) =>
        this.call<CallTypes[K]['req'], CallTypes[K]['res']>(
          addr,
          (c) => c[UNARY_OF[kind]],
          r,
          timeoutMs,
        ),
      req,
      timeoutMs,
    );
  }

  private call<Req, Res>(
    addr: string,
    pick: (c: BrokerClient) => BrokerClient[keyof BrokerClient],
    req: Req,
    timeoutMs = this.deps.rpcTimeoutMs,
  ): Promise<Res> {
    const client = this.deps.brokers.get(addr);
    return callUnary<Req, Res>(client, pick(client) as never, req, timeoutMs);
  }

  /** Masters of any cluster, for topics the name servers don't know yet (auto-create). */
  private async anyMasters(): Promise<BrokerTarget[]> {
    const info = await this.deps.namesrv.clusterInfo();
    return Object.values(info.broker_addr_table).flatMap((b) => {
      const addr = masterAddrOf(b.broker_addrs);
      return addr ? [{ brokerName: b.broker_name, addr, readQueueNums: 0, writeQueueNums: 0 }] : [];
    });
  }

  /** Checks what the gateway can check before a broker sees a message. */
  validate(messages: readonly Message[]): void {
    if (messages.length === 0) throw errors.badRequest('no message to send', { field: 'messages' });
    for (const m of messages) {
      const body = m.body;
      const size = typeof body === 'string' ? Buffer.byteLength(body) : (body?.length ?? 0);
      if (size === 0) throw errors.bodyEmpty();
      if (size > this.deps.maxMessageSize)
        throw errors.bodyTooLarge(size, this.deps.maxMessageSize);
    }
  }

  /** Round robin over the targets, brokers being avoided last. */
  private orderTargets(targets: readonly BrokerTarget[]): BrokerTarget[] {
    if (targets.length <= 1) return [...targets];
    const start = this.rr++ % targets.length;
    const rotated = targets.map((_, i) => targets[(start + i) % targets.length]!);
    return this.faults.order(rotated);
  }

  /**
   * Sends a batch; answers per entry, in order. Messages without a message
   * group are balanced over the writable brokers and, on a retriable
   * failure, retried on another broker up to sendRetries more times; an
   * entry the broker stored (it has a message id) is never retried, whatever
   * its status (see attempt).
   * Messages of a message group (FIFO) always go to the broker the group
   * hashes to (the same pick as the gRPC side's MessageGroupSender) and are
   * not moved to another broker, which would break their order.
   */
  async send(topic: string, messages: Message[]): Promise<SendOutcome[]> {
    checkTopicName(topic);
    this.validate(messages);
    let targets = await this.deps.routes.writable(topic);
    let autoCreate = false;
    if (targets.length === 0) {
      const route = await this.deps.routes.route(topic);
      if (route.status?.code !== Code.TOPIC_NOT_FOUND) throw errors.noWritableBroker(topic);
      targets = await this.anyMasters();
      if (targets.length === 0) throw errors.noWritableBroker(topic);
      autoCreate = true;
    }
    const results: SendOutcome[] = new Array(messages.length);
    const balanced: number[] = [];
    const byGroup = new Map<string, number[]>();
    messages.forEach((m, i) => {
      const g = m.message_group;
      if (!g) balanced.push(i);
      else {
        const list = byGroup.get(g);
        if (list) list.push(i);
        else byGroup.set(g, [i]);
      }
    });
    const sends: Promise<unknown>[] = [];
    if (balanced.length > 0)
      sends.push(this.sendBalanced(topic, messages, balanced, targets, results, autoCreate));
    if (byGroup.size > 0) {
      const sorted = [...targets].sort((a, b) => a.brokerName.localeCompare(b.brokerName));
      for (const [group, idx] of byGroup) {
        const target = sorted[groupSlot(group, sorted.length)]!;
        sends.push(this.attempt(topic, messages, idx, target, results, autoCreate));
      }
    }
    await Promise.all(sends);
    return results;
  }

  private async sendBalanced(
    topic: string,
    messages: Message[],
    indexes: number[],
    targets: BrokerTarget[],
    results: SendOutcome[],
    autoCreate: boolean,
  ): Promise<void> {
    let pending = indexes;
    const tried = new Set<string>();
    for (let attempt = 0; attempt <= this.deps.sendRetries && pending.length > 0; attempt++) {
      const ordered = this.orderTargets(targets);
      const target = ordered.find((t) => !tried.has(t.brokerName)) ?? ordered[0]!;
      tried.add(target.brokerName);
      const out = await this.attempt(topic, messages, pending, target, results, autoCreate);
      if (out.fatal) return;
      pending = out.retry;
    }
  }

  /**
   * One send of some entries to one broker (through the batcher). Fills
   * their results; answers which entries may be retried elsewhere, and
   * whether the failure rules out any retry.
   */
  private async attempt(
    topic: string,
    messages: Message[],
    pending: number[],
    target: BrokerTarget,
    results: SendOutcome[],
    autoCreate: boolean,
  ): Promise<{ retry: number[]; fatal: boolean }> {
    const started = this.clock();
    let res: SendResult__Output[];
    try {
      res = await this.batcher.send(
        target.addr,
        pending.map((i) => {
          const m = messages[i]!;
          // Copy only when the caller left the topic out (REST sets it already).
          return { message: m.topic === topic ? m : { ...m, topic }, queue_id: -1 };
        }),
      );
      this.faults.update(target.brokerName, this.clock() - started, false);
    } catch (err) {
      const e = isSluiceError(err) ? err : errors.internal(String(err));
      this.faults.update(target.brokerName, this.clock() - started, true);
      this.deps.logger.warn({ broker: target.brokerName, err: e.message }, 'send failed');
      await this.deps.routes.invalidate(topic);
      const hint = e.details?.retryAfterMs;
      const status =
        typeof hint === 'number' ? { ...statusOf(e), retryAfterMs: hint } : statusOf(e);
      for (const i of pending) results[i] = { status };
      // A slave or a broker without write permission may be stale routing: try another.
      const retriable = e.retriable || e.reason === 'NOT_MASTER' || e.code === Code.FORBIDDEN;
      return { retry: retriable ? pending : [], fatal: !retriable };
    }
    const retry: number[] = [];
    let stored = false;
    pending.forEach((i, j) => {
      const r = res[j];
      const code = r?.status?.code ?? Code.INTERNAL_ERROR;
      // A message id means the broker stored the message, even when its status is not OK
      // (SYNC_MASTER: FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE; FLUSH_DISK_TIMEOUT): never
      // send it again elsewhere, which would store a silent duplicate. The entry reports
      // the status with the message id, as RocketMQ's SendResult does.
      if (r && (code === Code.OK || r.message_id)) {
        stored = true;
        results[i] = {
          status: {
            code,
            message: r.status?.message ?? 'OK',
            ...(r.status?.reason ? { reason: r.status.reason } : {}),
          },
          messageId: r.message_id,
          broker: target.brokerName,
          queueId: r.queue_id,
          offset: r.queue_offset,
          ...(r.transaction_id ? { transactionId: r.transaction_id } : {}),
        };
        return;
      }
      results[i] = {
        status: {
          code,
          message: r?.status?.message ?? 'the broker gave no answer for this entry',
          ...(r?.status?.reason ? { reason: r.status.reason } : {}),
        },
      };
      if (RETRIABLE_CODES.has(code)) retry.push(i);
    });
    if (retry.length > 0) this.faults.update(target.brokerName, this.clock() - started, true);
    // The topic was created on first use: fetch its route next time.
    if (autoCreate && stored) await this.deps.routes.invalidate(topic);
    return { retry, fatal: false };
  }

  /** The brokers a receive would ask; throws TOPIC_NOT_FOUND or UNAVAILABLE when there are none. */
  async readableBrokers(topic: string, group: string): Promise<BrokerTarget[]> {
    checkTopicName(topic);
    checkGroupName(group);
    const targets = await this.deps.routes.readable(topic);
    if (targets.length === 0) throw errors.unavailable(`no readable broker for topic '${topic}'`);
    return targets;
  }

  /**
   * Pops up to `max` messages from the topic's brokers; long-polls up to
   * waitMs. Messages this gateway holds for the group come first (see
   * ReceiveStash), then a quick sweep of every broker, then a long poll on
   * all of them at once that answers as soon as one has messages.
   *
   * A pop is never cancelled once sent: a broker may have taken messages for
   * it an instant before. Polls still waiting when the receive answers are
   * woken (WakePops) and whatever they bring goes to the stash. The abort
   * signal (client gone, shutdown) ends the wait the same way: the receive
   * answers with what it has.
   */
  async receive(
    topic: string,
    group: string,
    options: ReceiveOptions,
  ): Promise<StoredMessage__Output[]> {
    let opts = options;
    const ordered = this.orderTargets(await this.readableBrokers(topic, group));
    const key = ReceiveStash.keyOf(topic, group, opts.filter);
    const out = await this.takeStashed(key, opts.max, opts.invisibleMs);
    if (out.length >= opts.max) return out;
    if (out.length === 0 && ordered.length === 1 && opts.waitMs > 0 && !opts.signal?.aborted) {
      // One broker: its long poll answers at once when it has messages, so a
      // sweep first would only double the calls of every empty receive (an
      // idle consumer's loop). A retriable failure goes the sweep's way below,
      // which reads from the broker's slave when its master is gone.
      const started = this.clock();
      try {
        return await this.longPoll(key, topic, group, ordered, opts);
      } catch (err) {
        if (!isSluiceError(err) || !err.retriable) throw err;
      }
      opts = { ...opts, waitMs: Math.max(0, opts.waitMs - (this.clock() - started)) };
    }
    // A quick sweep first: most receives find messages without waiting.
    const live: BrokerTarget[] = [];
    let firstError: SluiceError | undefined;
    for (const t of ordered) {
      if (out.length >= opts.max) {
        live.push(t);
        continue;
      }
      try {
        out.push(...(await this.popFrom(t, topic, group, opts, opts.max - out.length, 0)));
        live.push(t);
      } catch (err) {
        const e = this.brokerFailed(topic, t, err);
        // A broker's own verdict (bad filter, unknown group …) is the answer.
        if (!e.retriable) {
          this.stash.put(key, topic, group, out.splice(0));
          throw e;
        }
        // Master unreachable: its slave serves the broker's reads meanwhile.
        const alt = await this.readFailed(topic, t.brokerName, t.addr, e);
        if (alt) {
          const slave = { ...t, addr: alt };
          try {
            out.push(...(await this.popFrom(slave, topic, group, opts, opts.max - out.length, 0)));
            live.push(slave);
            continue;
          } catch (err2) {
            const e2 = this.brokerFailed(topic, slave, err2);
            if (!e2.retriable) {
              this.stash.put(key, topic, group, out.splice(0));
              throw e2;
            }
          }
        }
        firstError ??= e;
      }
    }
    if (out.length > 0 || opts.signal?.aborted) return out;
    if (live.length === 0)
      throw firstError ?? errors.unavailable(`no readable broker for topic '${topic}'`);
    if (opts.waitMs <= 0) return out;
    return this.longPoll(key, topic, group, live, opts);
  }

  /** The waiting part of a receive (see receive). */
  private async longPoll(
    key: string,
    topic: string,
    group: string,
    live: readonly BrokerTarget[],
    opts: ReceiveOptions,
  ): Promise<StoredMessage__Output[]> {
    const polls = live.map((t) => this.startPoll(t, topic, group, opts));
    const answered = new Map<LongPoll, PollResult>();
    let unsubscribe = () => {};
    let onAbort = () => {};
    this.longPollsWaiting++;
    try {
      await new Promise<void>((resolve) => {
        let open = polls.length;
        for (const p of polls) {
          void p.done.then((r) => {
            answered.set(p, r);
            open--;
            if (r.messages.length > 0 || open === 0) resolve();
          });
        }
        // Messages another receive of this group could not hand out.
        unsubscribe = this.stash.onPut(key, resolve);
        onAbort = resolve;
        if (opts.signal?.aborted) resolve();
        else opts.signal?.addEventListener('abort', onAbort, { once: true });
      });
    } finally {
      this.longPollsWaiting--;
      unsubscribe();
      opts.signal?.removeEventListener('abort', onAbort);
    }
    const out: StoredMessage__Output[] = [];
    const failures: SluiceError[] = [];
    const waiting: LongPoll[] = [];
    for (const p of polls) {
      const r = answered.get(p);
      if (r) {
        out.push(...r.messages);
        if (r.error) failures.push(r.error);
        continue;
      }
      // Still waiting: wake it; what it took goes to the next receive (or back).
      waiting.push(p);
      void p.done.then((late) => this.stash.put(key, topic, group, late.messages));
    }
    this.wake(waiting);
    if (out.length < opts.max) {
      out.push(...(await this.takeStashed(key, opts.max - out.length, opts.invisibleMs)));
    }
    if (out.length > opts.max) this.stash.put(key, topic, group, out.splice(opts.max));
    // Every broker failed: say so, rather than an empty answer the client would spin on.
    if (out.length === 0 && failures.length === polls.length && !opts.signal?.aborted) {
      throw failures[0]!;
    }
    return out;
  }

  /** Starts one long-polling pop; its result never rejects. */
  private startPoll(t: BrokerTarget, topic: string, group: string, opts: ReceiveOptions): LongPoll {
    this.pollSeq = (this.pollSeq + 1) % Number.MAX_SAFE_INTEGER;
    const id = `${this.instanceId}-${this.pollSeq}`;
    const done = this.popFrom(t, topic, group, opts, opts.max, opts.waitMs, id).then(
      (messages): PollResult => ({ messages }),
      (err: unknown): PollResult => ({ messages: [], error: this.brokerFailed(topic, t, err) }),
    );
    const poll: LongPoll = { id, addr: t.addr, done };
    this.polls.set(id, poll);
    void done.finally(() => this.polls.delete(id));
    return poll;
  }

  /** Ends the wait of long polls early (their answers still arrive). */
  private wake(polls: readonly LongPoll[]): void {
    const byAddr = new Map<string, string[]>();
    for (const p of polls) {
      const ids = byAddr.get(p.addr);
      if (ids) ids.push(p.id);
      else byAddr.set(p.addr, [p.id]);
    }
    for (const [addr, ids] of byAddr) {
      // A broker that cannot be woken answers at the end of its wait instead.
      this.call<WakePopsRequest, Empty__Output>(addr, (c) => c.WakePops, {
        attempt_ids: ids,
      }).catch(() => undefined);
    }
  }

  /**
   * Messages of an earlier answer that never reached a consumer (the client
   * went away): the next receive of the group here gets them, else their
   * broker shows them again without counting the delivery.
   */
  unclaimed(topic: string, group: string, filter: string, msgs: StoredMessage__Output[]): void {
    this.stash.put(ReceiveStash.keyOf(topic, group, filter), topic, group, msgs);
  }

  /** Held messages for a receive, with handles good for `invisibleMs` from now. */
  private async takeStashed(
    key: string,
    max: number,
    invisibleMs: number,
  ): Promise<StoredMessage__Output[]> {
    const taken = this.stash.take(key, max);
    if (taken.length === 0) return [];
    const now = this.clock();
    const out = await Promise.all(
      taken.map(async (s) => {
        const h = decodeReceiptHandle(s.message.receipt_handle);
        if (Math.abs(visibleAt(h) - now - invisibleMs) <= REHANDLE_SLACK_MS) return s.message;
        try {
          const handle = await this.changeInvisible(
            s.topic,
            s.group,
            s.message.receipt_handle,
            invisibleMs,
          );
          return { ...s.message, receipt_handle: handle };
        } catch (err) {
          // Stale already: its broker delivers it again.
          this.deps.logger.warn({ err: (err as Error).message }, 'held message lost its handle');
          return undefined;
        }
      }),
    );
    return out.filter((m): m is StoredMessage__Output => m !== undefined);
  }

  /**
   * Shutdown: wakes every long poll, waits (up to `timeoutMs`) for their
   * answers, and hands every held message back to its broker.
   */
  async close(timeoutMs: number): Promise<void> {
    const pending = [...this.polls.values()];
    this.wake(pending);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pending.map((p) => p.done)),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    await this.stash.drain();
  }

  private brokerFailed(topic: string, t: BrokerTarget, err: unknown): SluiceError {
    const e = fromGrpcError(err, t.addr);
    if (e.retriable) {
      this.faults.update(t.brokerName, 0, true);
      if (e.reason === 'UNAVAILABLE') this.deps.routes.masterUnreachable(t.brokerName, t.addr);
      void this.deps.routes.invalidate(topic);
      this.deps.logger.warn({ broker: t.brokerName, err: e.message }, 'receive from broker failed');
    }
    return e;
  }

  /** One pop; never cancelled (see receive). `attemptId` lets wake() end its wait. */
  private popFrom(
    t: BrokerTarget,
    topic: string,
    group: string,
    opts: ReceiveOptions,
    max: number,
    waitMs: number,
    attemptId = '',
  ): Promise<StoredMessage__Output[]> {
    const req: PopMessagesRequest = {
      consumer_group: group,
      topic,
      queue_id: -1,
      max_messages: max,
      invisible_ms: opts.invisibleMs,
      max_wait_ms: waitMs,
      filter: { type: 'TAG', expression: opts.filter },
      attempt_id: attemptId,
      compact_messages: true,
    };
    const timeoutMs = waitMs > 0 ? waitMs + this.deps.rpcTimeoutMs + LONG_POLL_SLACK_MS : undefined;
    return this.dataCall(t.addr, 'pop', req, timeoutMs).then(messagesOf);
  }

  /** Hands messages no consumer saw back to their brokers: visible now, attempt not counted. */
  private async release(
    topic: string,
    group: string,
    msgs: StoredMessage__Output[],
  ): Promise<void> {
    const byBroker = new Map<string, string[]>();
    for (const m of msgs) {
      const { brokerName } = decodeReceiptHandle(m.receipt_handle);
      const list = byBroker.get(brokerName);
      if (list) list.push(m.receipt_handle);
      else byBroker.set(brokerName, [m.receipt_handle]);
    }
    await Promise.all(
      [...byBroker].map(async ([brokerName, handles]) => {
        try {
          const addr = await this.addrOf(topic, brokerName);
          await this.dataCall(addr, 'change_invisible', {
            consumer_group: group,
            topic,
            entries: handles.map((h) => ({ receipt_handle: h, invisible_ms: 0, release: true })),
          });
        } catch (err) {
          // They come back when their invisible time runs out (at least once).
          this.deps.logger.warn(
            { broker: brokerName, n: handles.length, err: (err as Error).message },
            'could not hand back unseen messages',
          );
        }
      }),
    );
  }

  /** Address of a broker by name: from the topic's route, else from the cluster. */
  private async addrOf(topic: string, brokerName: string): Promise<string> {
    let addr = await this.deps.routes.brokerAddr(topic, brokerName);
    if (!addr) {
      const info = await this.deps.namesrv.clusterInfo();
      const data = info.broker_addr_table[brokerName];
      addr = anyAddrOf(data?.broker_addrs);
    }
    if (!addr)
      throw errors.unavailable(`broker ${brokerName} is not reachable for topic '${topic}'`);
    return addr;
  }

  /** Decodes (and verifies) a handle and finds its broker's address. */
  private async brokerFor(
    topic: string,
    handle: string,
  ): Promise<{ addr: string; brokerName: string }> {
    const h = decodeReceiptHandle(handle, this.deps.secret);
    return { addr: await this.addrOf(topic, h.brokerName), brokerName: h.brokerName };
  }

  /** Acks handles, grouped per broker; answers per handle in order. */
  async ack(topic: string, group: string, handles: readonly string[]): Promise<Status__Output[]> {
    checkTopicName(topic);
    checkGroupName(group);
    const results: Status__Output[] = new Array(handles.length);
    // Group by broker, then look each broker up once (a batch names one or two).
    // Routing needs only the handle's broker name: that broker checks the MAC
    // (and knows the very handles it issued without computing it), so the
    // gateway computes it only when the broker cannot answer (below).
    const byBroker = new Map<string, number[]>();
    handles.forEach((h, i) => {
      try {
        const { brokerName } = decodeReceiptHandle(h);
        const list = byBroker.get(brokerName);
        if (list) list.push(i);
        else byBroker.set(brokerName, [i]);
      } catch (err) {
        results[i] = statusOf(err);
      }
    });
    await Promise.all(
      [...byBroker].map(async ([brokerName, idx]) => {
        try {
          const addr = await this.addrOf(topic, brokerName);
          const res = await this.readWithFailover(topic, brokerName, addr, (to) =>
            this.dataCall(to, 'ack', {
              consumer_group: group,
              topic,
              receipt_handles: idx.map((i) => handles[i]!),
            }),
          );
          idx.forEach((i, j) => {
            results[i] = res.results[j] ?? statusOf(errors.internal('no answer'));
          });
        } catch (err) {
          // No broker answered: a forged handle still says so, not "unavailable".
          const status = statusOf(err);
          for (const i of idx) results[i] = this.forgery(handles[i]!) ?? status;
        }
      }),
    );
    return results;
  }

  /** INVALID_RECEIPT_HANDLE's status when the handle's MAC does not hold, else undefined. */
  private forgery(handle: string): Status__Output | undefined {
    try {
      decodeReceiptHandle(handle, this.deps.secret);
      return undefined;
    } catch (err) {
      return statusOf(err);
    }
  }

  /** Changes a message's invisible time; returns the new receipt handle. */
  async changeInvisible(
    topic: string,
    group: string,
    handle: string,
    invisibleMs: number,
  ): Promise<string> {
    checkTopicName(topic);
    checkGroupName(group);
    const { addr, brokerName } = await this.brokerFor(topic, handle);
    const res = await this.readWithFailover(topic, brokerName, addr, (to) =>
      this.dataCall(to, 'change_invisible', {
        consumer_group: group,
        topic,
        entries: [{ receipt_handle: handle, invisible_ms: invisibleMs }],
      }),
    );
    const r = res.results[0];
    const code = r?.status?.code ?? Code.INTERNAL_ERROR;
    if (code !== Code.OK) throw statusError(r?.status ?? null);
    return r!.receipt_handle;
  }

  /** Moves a received message to the group's dead-letter queue now. */
  async deadLetter(topic: string, group: string, handle: string): Promise<void> {
    checkTopicName(topic);
    checkGroupName(group);
    const { addr } = await this.brokerFor(topic, handle);
    const status = await this.call<ForwardToDeadLetterQueueRequest, Status__Output>(
      addr,
      (c) => c.ForwardToDeadLetterQueue,
      { consumer_group: group, topic, receipt_handle: handle },
    );
    if (status.code !== Code.OK) throw statusError(status);
  }

  /** The broker a pull or offset entry addresses: named, or the only one serving the topic. */
  private async readTarget(topic: string, broker: string | undefined): Promise<BrokerTarget> {
    const targets = await this.deps.routes.readable(topic);
    if (broker) {
      const t = targets.find((x) => x.brokerName === broker);
      if (!t) throw errors.notFound(`broker '${broker}' does not serve topic '${topic}'`);
      return t;
    }
    if (targets.length === 1) return targets[0]!;
    if (targets.length === 0) throw errors.unavailable(`no readable broker for topic '${topic}'`);
    throw errors.badRequest(
      `topic '${topic}' is on several brokers (${targets.map((t) => t.brokerName).join(', ')}); name one in "broker"`,
      { field: 'broker' },
    );
  }

  /** Offset-based read of one queue (replay, broadcast readers); long-polls up to waitMs. */
  async pull(topic: string, group: string, opts: PullOptions): Promise<PullOutcome> {
    checkTopicName(topic);
    checkGroupName(group);
    const t = await this.readTarget(topic, opts.broker);
    if (opts.queueId < 0 || opts.queueId >= t.readQueueNums) {
      throw errors.badRequest(
        `queue ${opts.queueId} does not exist on broker ${t.brokerName} for topic '${topic}' (0..${t.readQueueNums - 1})`,
        { field: 'queueId' },
      );
    }
    const req: PullMessagesRequest = {
      consumer_group: group,
      topic,
      queue_id: opts.queueId,
      offset: opts.offset,
      max_messages: opts.max,
      max_wait_ms: opts.waitMs,
      filter: { type: 'TAG', expression: opts.filter },
      commit_offset: -1,
      compact_messages: true,
    };
    let servedBy = t.addr;
    const pullFrom = (addr: string) =>
      new Promise<PullMessagesResponse__Output>((resolve, reject) => {
        servedBy = addr;
        const signal = opts.signal;
        const cancel = () => call.cancel();
        const call = this.deps.brokers
          .get(addr)
          .PullMessages(
            req,
            { deadline: this.clock() + opts.waitMs + this.deps.rpcTimeoutMs + LONG_POLL_SLACK_MS },
            (err, value) => {
              signal?.removeEventListener('abort', cancel);
              if (err) reject(fromGrpcError(err, addr));
              else resolve(value!);
            },
          );
        if (signal?.aborted) call.cancel();
        else signal?.addEventListener('abort', cancel, { once: true });
      });
    // Read/write separation: the node the last answer for this queue suggested.
    const adviceKey = `${group}\u0000${topic}\u0000${t.brokerName}\u0000${opts.queueId}`;
    const advisedId = this.adviceFor(adviceKey);
    const advised =
      advisedId > 0 ? await this.deps.routes.nodeAddr(topic, t.brokerName, advisedId) : undefined;
    if (opts.waitMs > 0) this.longPollsWaiting++;
    let res: PullMessagesResponse__Output;
    try {
      if (advised && advised !== t.addr) {
        try {
          res = await pullFrom(advised);
        } catch (err) {
          if (opts.signal?.aborted) throw err;
          // The suggested node is gone: back to where reads of the broker go.
          this.pullAdvice.delete(adviceKey);
          res = await this.readWithFailover(topic, t.brokerName, t.addr, pullFrom, opts.signal);
        }
      } else {
        res = await this.readWithFailover(topic, t.brokerName, t.addr, pullFrom, opts.signal);
      }
    } catch (err) {
      if (!opts.signal?.aborted) throw err;
      res = {
        status: null,
        messages: [],
        next_offset: opts.offset,
        min_offset: 0,
        max_offset: 0,
        suggest_which_broker_id: 0,
        compact: null,
      };
    } finally {
      if (opts.waitMs > 0) this.longPollsWaiting--;
    }
    const code = res.status?.code ?? Code.OK;
    if (code !== Code.OK && code !== Code.MESSAGE_NOT_FOUND) throw statusError(res.status);
    if (res.status) this.advise(adviceKey, res.suggest_which_broker_id);
    return {
      broker: t.brokerName,
      brokerId: (await this.deps.routes.nodeIdOf(topic, t.brokerName, servedBy)) ?? 0,
      messages: messagesOf(res),
      nextOffset: res.next_offset,
      minOffset: res.min_offset,
      maxOffset: res.max_offset,
    };
  }

  /** The node a queue's pull advice names now (0 = none, or the master). */
  private adviceFor(key: string): number {
    const a = this.pullAdvice.get(key);
    if (!a) return 0;
    if (a.until > this.clock()) return a.brokerId;
    this.pullAdvice.delete(key);
    return 0;
  }

  /** Follows a pull answer's suggest_which_broker_id for the queue's next pulls. */
  private advise(key: string, brokerId: number): void {
    this.pullAdvice.delete(key);
    if (brokerId <= 0) return;
    this.pullAdvice.set(key, { brokerId, until: this.clock() + DEFAULT_PULL_ADVICE_TTL_MS });
    while (this.pullAdvice.size > DEFAULT_PULL_ADVICE_ENTRIES) {
      this.pullAdvice.delete(this.pullAdvice.keys().next().value!);
    }
  }

  /** A group's committed offsets for a topic, on every broker serving it. */
  async offsets(topic: string, group: string): Promise<Required<QueueOffsetEntry>[]> {
    checkTopicName(topic);
    checkGroupName(group);
    const targets = await this.deps.routes.readable(topic);
    const lists = await Promise.all(
      targets.map(async (t) => {
        const res = await this.readWithFailover(topic, t.brokerName, t.addr, (addr) =>
          this.call<GetConsumerOffsetsRequest, GetConsumerOffsetsResponse__Output>(
            addr,
            (c) => c.GetConsumerOffsets,
            { consumer_group: group, topic },
          ),
        );
        return res.offsets.map((o) => ({
          broker: t.brokerName,
          queueId: o.queue_id,
          offset: o.offset,
        }));
      }),
    );
    return lists.flat().sort((a, b) => a.broker.localeCompare(b.broker) || a.queueId - b.queueId);
  }

  /** Commits a group's offsets (per queue); answers per entry in order. */
  async commitOffsets(
    topic: string,
    group: string,
    entries: readonly QueueOffsetEntry[],
  ): Promise<Status__Output[]> {
    checkTopicName(topic);
    checkGroupName(group);
    const results: Status__Output[] = new Array(entries.length);
    const byBroker = new Map<string, { target: BrokerTarget; idx: number[] }>();
    await Promise.all(
      entries.map(async (e, i) => {
        try {
          const target = await this.readTarget(topic, e.broker);
          if (e.queueId < 0 || e.queueId >= target.readQueueNums) {
            throw errors.badRequest(
              `queue ${e.queueId} does not exist on broker ${target.brokerName}`,
              {
                field: 'queueId',
              },
            );
          }
          if (e.offset < 0) throw errors.illegalOffset(`offset ${e.offset} is negative`);
          const slot = byBroker.get(target.brokerName) ?? { target, idx: [] };
          slot.idx.push(i);
          byBroker.set(target.brokerName, slot);
        } catch (err) {
          results[i] = statusOf(err);
        }
      }),
    );
    await Promise.all(
      [...byBroker.values()].map(async ({ target, idx }) => {
        try {
          const res = await this.call<
            UpdateConsumerOffsetsRequest,
            UpdateConsumerOffsetsResponse__Output
          >(target.addr, (c) => c.UpdateConsumerOffsets, {
            consumer_group: group,
            offsets: idx.map((i) => ({
              topic,
              queue_id: entries[i]!.queueId,
              offset: entries[i]!.offset,
            })),
          });
          idx.forEach((i, j) => {
            results[i] = res.results[j] ?? statusOf(errors.internal('no answer'));
          });
        } catch (err) {
          const status = statusOf(err);
          for (const i of idx) results[i] = status;
        }
      }),
    );
    return results;
  }

  /**
   * Transaction check-back for producers that poll (REST, DESIGN.md §5): half
   * messages of `topic` left undecided past the broker's transactionTimeOut,
   * up to `max` from each master serving it. Each one listed counts as one check-back
   * and is listed again every transactionCheckInterval until decided
   * (endTransaction) or, after transactionCheckMax checks, discarded.
   */
  async orphans(topic: string, max: number): Promise<OrphanOutcome[]> {
    checkTopicName(topic);
    const targets = await this.deps.routes.writable(topic);
    if (targets.length === 0) {
      const route = await this.deps.routes.route(topic);
      if (route.status?.code === Code.TOPIC_NOT_FOUND) throw errors.topicNotFound(topic);
      throw errors.noWritableBroker(topic);
    }
    const lists = await Promise.all(
      targets.map(async (t) => {
        const res = await this.call<
          GetOrphanedTransactionsRequest,
          GetOrphanedTransactionsResponse__Output
        >(t.addr, (c) => c.GetOrphanedTransactions, { max, topic });
        return res.transactions.flatMap((o) =>
          o.message
            ? [
                {
                  broker: o.message.broker_name || t.brokerName,
                  transactionId: o.transaction_id,
                  checkTimes: o.check_times,
                  message: o.message,
                },
              ]
            : [],
        );
      }),
    );
    // Not cut to `max` overall: each listed one already counted as a check-back.
    return lists.flat();
  }

  /**
   * Commits or rolls back a half message. With `broker` the decision goes to
   * that broker; otherwise to every master serving the topic and the one that
   * holds the transaction answers.
   */
  async endTransaction(input: EndTransactionInput): Promise<{ broker: string }> {
    checkTopicName(input.topic);
    if (!input.transactionId) throw errors.invalidTransactionId(input.transactionId);
    let targets = await this.deps.routes.writable(input.topic);
    if (input.broker) {
      targets = targets.filter((t) => t.brokerName === input.broker);
      if (targets.length === 0) {
        targets = [
          {
            brokerName: input.broker,
            addr: await this.addrOf(input.topic, input.broker),
            readQueueNums: 0,
            writeQueueNums: 0,
          },
        ];
      }
    }
    if (targets.length === 0) throw errors.noWritableBroker(input.topic);
    const outcomes = await Promise.all(
      targets.map(async (t) => {
        try {
          const res = await this.call<EndTransactionRequest, EndTransactionResponse__Output>(
            t.addr,
            (c) => c.EndTransaction,
            {
              entries: [
                {
                  topic: input.topic,
                  message_id: input.messageId,
                  transaction_id: input.transactionId,
                  commit: input.commit,
                  from_check: input.fromCheck ?? false,
                },
              ],
            },
          );
          const status = res.results[0];
          if (!status || status.code !== Code.OK) return { t, err: statusError(status ?? null) };
          return { t, err: undefined };
        } catch (err) {
          return { t, err: isSluiceError(err) ? err : errors.internal(String(err)) };
        }
      }),
    );
    const ok = outcomes.find((o) => !o.err);
    if (ok) return { broker: ok.t.brokerName };
    // The most telling failure: anything but "this broker does not know it".
    const errs = outcomes.map((o) => o.err!);
    throw errs.find((e) => e.code !== Code.INVALID_TRANSACTION_ID) ?? errs[0]!;
  }
}

/** Rebuilds the error a per-entry status reports. */
export function statusError(status: Status__Output | null): SluiceError {
  if (!status) return errors.internal('no answer');
  return errors.fromStatus(status.code, status.message, status.reason);
}
