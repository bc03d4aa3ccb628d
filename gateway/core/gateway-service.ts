/**
 * Transport-free gateway operations (REST and gRPC both call these): send
 * with retry on another broker, receive (pop) across a topic's brokers with
 * long polling, and settle (ack / change invisibility / dead-letter) by the
 * broker a receipt handle names.
 */
import { Code, errors, isSluiceError, RETRIABLE_CODES, type SluiceError, statusOf } from '../../common/errors.js';
import type { AckMessagesRequest } from '../../common/generated/sluice/v1/AckMessagesRequest.js';
import type { AckMessagesResponse__Output } from '../../common/generated/sluice/v1/AckMessagesResponse.js';
import type { BrokerClient } from '../../common/generated/sluice/v1/Broker.js';
import type { ChangeInvisibleTimeRequest } from '../../common/generated/sluice/v1/ChangeInvisibleTimeRequest.js';
import type { ChangeInvisibleTimeResponse__Output } from '../../common/generated/sluice/v1/ChangeInvisibleTimeResponse.js';
import type { ForwardToDeadLetterQueueRequest } from '../../common/generated/sluice/v1/ForwardToDeadLetterQueueRequest.js';
import type { Message } from '../../common/generated/sluice/v1/Message.js';
import type { PopMessagesRequest } from '../../common/generated/sluice/v1/PopMessagesRequest.js';
import type { PopMessagesResponse__Output } from '../../common/generated/sluice/v1/PopMessagesResponse.js';
import type { SendMessagesRequest } from '../../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse__Output } from '../../common/generated/sluice/v1/SendMessagesResponse.js';
import type { Status__Output } from '../../common/generated/sluice/v1/Status.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { callUnary } from '../../common/grpc.js';
import type { Logger } from '../../common/logger.js';
import { checkGroupName, checkTopicName } from '../../common/names.js';
import { decodeReceiptHandle } from '../../common/receipt-handle.js';
import type { BrokerPool } from './broker-pool.js';
import type { NamesrvClient } from './namesrv-client.js';
import type { BrokerTarget, RouteResolver } from './route-resolver.js';

/** Extra time a long poll's RPC gets beyond its wait. */
const LONG_POLL_SLACK_MS = 5_000;

export interface SendOutcome {
  status: { code: number; message: string };
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

export interface GatewayServiceDeps {
  routes: RouteResolver;
  brokers: BrokerPool;
  namesrv: NamesrvClient;
  logger: Logger;
  secret: string;
  maxMessageSize: number;
  sendRetries: number;
  rpcTimeoutMs: number;
}

export class GatewayService {
  private rr = 0;

  constructor(private readonly deps: GatewayServiceDeps) {}

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
      const addr = b.broker_addrs[0];
      return addr ? [{ brokerName: b.broker_name, addr, readQueueNums: 0, writeQueueNums: 0 }] : [];
    });
  }

  /**
   * Sends a batch to one broker; on a retriable failure the failed entries go
   * to another broker, up to sendRetries more times. Answers per entry.
   */
  async send(topic: string, messages: Message[]): Promise<SendOutcome[]> {
    checkTopicName(topic);
    for (const m of messages) {
      const size = m.body ? Buffer.byteLength(m.body as Buffer) : 0;
      if (size > this.deps.maxMessageSize) throw errors.bodyTooLarge(size, this.deps.maxMessageSize);
    }
    let targets = await this.deps.routes.writable(topic);
    if (targets.length === 0) {
      const route = await this.deps.routes.route(topic);
      if (route.status?.code !== Code.TOPIC_NOT_FOUND) throw errors.noWritableBroker(topic);
      targets = await this.anyMasters();
      if (targets.length === 0) throw errors.noWritableBroker(topic);
    }
    const results: SendOutcome[] = new Array(messages.length);
    let pending = messages.map((_, i) => i);
    const tried = new Set<string>();
    for (let attempt = 0; attempt <= this.deps.sendRetries && pending.length > 0; attempt++) {
      const fresh = targets.filter((t) => !tried.has(t.brokerName));
      const pool = fresh.length > 0 ? fresh : targets;
      const target = pool[this.rr++ % pool.length]!;
      tried.add(target.brokerName);
      let res: SendMessagesResponse__Output;
      try {
        res = await this.call<SendMessagesRequest, SendMessagesResponse__Output>(
          target.addr,
          (c) => c.SendMessages,
          { entries: pending.map((i) => ({ message: { ...messages[i], topic }, queue_id: -1 })) },
        );
      } catch (err) {
        const e = isSluiceError(err) ? err : errors.internal(String(err));
        this.deps.logger.warn({ broker: target.brokerName, err: e.message }, 'send failed');
        await this.deps.routes.invalidate(topic);
        for (const i of pending) results[i] = { status: { code: e.code, message: e.message } };
        // A slave or a broker without write permission may be stale routing: try another.
        if (!e.retriable && e.reason !== 'NOT_MASTER' && e.code !== Code.FORBIDDEN) return results;
        continue;
      }
      const retry: number[] = [];
      res.results.forEach((r, j) => {
        const i = pending[j]!;
        const code = r.status?.code ?? Code.INTERNAL_ERROR;
        results[i] = {
          status: { code, message: r.status?.message ?? '' },
          ...(code === Code.OK
            ? {
                messageId: r.message_id,
                broker: target.brokerName,
                queueId: r.queue_id,
                offset: r.queue_offset,
                ...(r.transaction_id ? { transactionId: r.transaction_id } : {}),
              }
            : {}),
        };
        if (code !== Code.OK && RETRIABLE_CODES.has(code)) retry.push(i);
      });
      pending = retry;
    }
    return results;
  }

  /** Pops up to `max` messages from the topic's brokers; long-polls up to waitMs. */
  async receive(topic: string, group: string, opts: ReceiveOptions): Promise<StoredMessage__Output[]> {
    checkTopicName(topic);
    checkGroupName(group);
    const targets = await this.deps.routes.readable(topic);
    if (targets.length === 0) throw errors.unavailable(`no readable broker for topic '${topic}'`);
    const start = this.rr++;
    const ordered = targets.map((_, i) => targets[(start + i) % targets.length]!);
    // A quick sweep first: most receives find messages without waiting.
    const out: StoredMessage__Output[] = [];
    for (const t of ordered) {
      if (out.length >= opts.max) break;
      out.push(...(await this.popFrom(t, topic, group, { ...opts, max: opts.max - out.length, waitMs: 0 })));
    }
    if (out.length > 0 || opts.waitMs <= 0) return out;
    // Then wait on every broker at once; the first answer cancels the others.
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const polls = ordered.map((t) =>
        this.popFrom(t, topic, group, { ...opts, signal: ac.signal }).then((msgs) => {
          if (msgs.length > 0) ac.abort();
          return msgs;
        }),
      );
      const all = (await Promise.allSettled(polls)).flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
      if (all.length > opts.max) {
        // More came back than asked for: make the extras visible again at once.
        await this.release(topic, group, all.slice(opts.max));
        return all.slice(0, opts.max);
      }
      return all;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async popFrom(
    t: BrokerTarget,
    topic: string,
    group: string,
    opts: ReceiveOptions,
  ): Promise<StoredMessage__Output[]> {
    const client = this.deps.brokers.get(t.addr);
    const req: PopMessagesRequest = {
      consumer_group: group,
      topic,
      queue_id: -1,
      max_messages: opts.max,
      invisible_ms: opts.invisibleMs,
      max_wait_ms: opts.waitMs,
      filter: { type: 'TAG', expression: opts.filter },
    };
    const res = await new Promise<PopMessagesResponse__Output>((resolve, reject) => {
      const call = client.PopMessages(
        req,
        { deadline: Date.now() + opts.waitMs + this.deps.rpcTimeoutMs + LONG_POLL_SLACK_MS },
        (err, value) => (err ? reject(err) : resolve(value!)),
      );
      opts.signal?.addEventListener('abort', () => call.cancel(), { once: true });
    }).catch((err: unknown) => {
      if (opts.signal?.aborted) return { status: null, messages: [] };
      throw err;
    });
    return res.messages;
  }

  private async release(topic: string, group: string, msgs: StoredMessage__Output[]): Promise<void> {
    await Promise.allSettled(
      msgs.map((m) => this.changeInvisible(topic, group, m.receipt_handle, 0)),
    );
  }

  /** Decodes (and verifies) a handle and finds its broker's address. */
  private async brokerFor(topic: string, handle: string): Promise<{ addr: string; brokerName: string }> {
    const h = decodeReceiptHandle(handle, this.deps.secret);
    const addr = await this.deps.routes.brokerAddr(topic, h.brokerName);
    if (!addr) throw errors.unavailable(`broker ${h.brokerName} is not reachable for topic '${topic}'`);
    return { addr, brokerName: h.brokerName };
  }

  /** Acks handles, grouped per broker; answers per handle in order. */
  async ack(topic: string, group: string, handles: readonly string[]): Promise<Status__Output[]> {
    checkTopicName(topic);
    checkGroupName(group);
    const results: Status__Output[] = new Array(handles.length);
    const byAddr = new Map<string, number[]>();
    await Promise.all(
      handles.map(async (h, i) => {
        try {
          const { addr } = await this.brokerFor(topic, h);
          byAddr.set(addr, [...(byAddr.get(addr) ?? []), i]);
        } catch (err) {
          results[i] = statusOf(err);
        }
      }),
    );
    await Promise.all(
      [...byAddr].map(async ([addr, idx]) => {
        try {
          const res = await this.call<AckMessagesRequest, AckMessagesResponse__Output>(
            addr,
            (c) => c.AckMessages,
            { consumer_group: group, topic, receipt_handles: idx.map((i) => handles[i]!) },
          );
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

  /** Changes a message's invisible time; returns the new receipt handle. */
  async changeInvisible(topic: string, group: string, handle: string, invisibleMs: number): Promise<string> {
    checkTopicName(topic);
    checkGroupName(group);
    const { addr } = await this.brokerFor(topic, handle);
    const res = await this.call<ChangeInvisibleTimeRequest, ChangeInvisibleTimeResponse__Output>(
      addr,
      (c) => c.ChangeInvisibleTime,
      { consumer_group: group, topic, entries: [{ receipt_handle: handle, invisible_ms: invisibleMs }] },
    );
    const r = res.results[0];
    const code = r?.status?.code ?? Code.INTERNAL_ERROR;
    if (code !== Code.OK) throw statusError(r?.status ?? null);
    return r!.receipt_handle;
  }

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
}

/** Rebuilds the error a per-entry status reports. */
export function statusError(status: Status__Output | null): SluiceError {
  if (!status) return errors.internal('no answer');
  return errors.fromStatus(status.code, status.message, status.reason);
}
