/**
 * An in-process Broker (sluice.v1) for gateway tests that must not depend on
 * the real broker's progress: in-memory queues with pop/ack/invisibility,
 * long polling, pull and offsets, receipt handles signed like the real ones,
 * and registration with real name servers. Knobs make it fail or push back.
 */
import type { ServerUnaryCall } from '@grpc/grpc-js';
import { Code, errors } from '../../common/errors.js';
import type { BrokerHandlers } from '../../common/generated/sluice/v1/Broker.js';
import type { RegisterBrokerRequest } from '../../common/generated/sluice/v1/RegisterBrokerRequest.js';
import type { RegisterBrokerResponse__Output } from '../../common/generated/sluice/v1/RegisterBrokerResponse.js';
import type { StoredMessage } from '../../common/generated/sluice/v1/StoredMessage.js';
import type { TopicConfig } from '../../common/generated/sluice/v1/TopicConfig.js';
import {
  callUnary,
  type GrpcServerHandle,
  startGrpcServer,
  unaryHandler,
} from '../../common/grpc.js';
import { sluiceProto } from '../../common/proto.js';
import { decodeReceiptHandle, encodeReceiptHandle } from '../../common/receipt-handle.js';
import { namesrvClient } from '../harness/clients.js';

export const TEST_SECRET = 'sluice-dev-secret';
const QUEUES = 4;

interface Rec {
  stored: StoredMessage;
  tag: string;
}

interface Inflight {
  popTime: number;
  visibleAt: number;
  attempt: number;
}

export interface FakeBrokerOptions {
  name: string;
  namesrvAddrs: string[];
  autoCreate?: boolean;
  cluster?: string;
}

export class FakeBroker {
  readonly topics = new Map<string, Rec[][]>();
  /** group|topic|queue → next offset to pop. */
  private readonly next = new Map<string, number>();
  /** group|topic|queue|offset → in-flight state. */
  private readonly inflight = new Map<string, Inflight>();
  private readonly offsets = new Map<string, number>();
  private waiters = new Set<() => void>();
  private server: GrpcServerHandle | undefined;
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  addr = '';
  /** Number of SendMessages RPCs and entries seen (coalescing checks). */
  sendCalls = 0;
  sendEntries = 0;
  /** When set, every send entry answers this code (push-back tests). */
  sendStatus: { code: number; message: string; reason?: string } | undefined;
  popsWaiting = 0;

  constructor(private readonly opts: FakeBrokerOptions) {}

  async start(): Promise<void> {
    const Broker = sluiceProto().grpc.sluice.v1.Broker;
    this.server = await startGrpcServer('127.0.0.1', 0, [], (s) =>
      s.addService(Broker.service, this.handlers()),
    );
    this.addr = `127.0.0.1:${this.server.port}`;
    await this.register();
    this.timer = setInterval(() => void this.register().catch(() => undefined), 1_000);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const w of this.waiters) w();
    await this.server?.close(100);
  }

  createTopic(topic: string): void {
    if (!this.topics.has(topic)) {
      this.topics.set(
        topic,
        Array.from({ length: QUEUES }, () => []),
      );
      void this.register().catch(() => undefined);
    }
  }

  private async register(): Promise<void> {
    const topics: TopicConfig[] = [...this.topics.keys()].map((t) => ({
      topic_name: t,
      read_queue_nums: QUEUES,
      write_queue_nums: QUEUES,
      perm: 6,
      message_type: 'NORMAL',
    }));
    await Promise.all(
      this.opts.namesrvAddrs.map(async (ns) => {
        const c = namesrvClient(ns);
        try {
          await callUnary<RegisterBrokerRequest, RegisterBrokerResponse__Output>(
            c,
            c.RegisterBroker,
            {
              cluster_name: this.opts.cluster ?? 'DefaultCluster',
              broker_name: this.opts.name,
              broker_id: 0,
              broker_addr: this.addr,
              broker_role: 'ASYNC_MASTER',
              topics,
              data_version: ++this.seq,
              heartbeat_timeout_ms: 10_000,
              perm: 6,
            },
          );
        } finally {
          c.close();
        }
      }),
    );
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = new Set();
    for (const w of ws) w();
  }

  private wait(ms: number, call: ServerUnaryCall<unknown, unknown>): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
      call.once('cancelled', done);
    });
  }

  private match(filter: string, tag: string): boolean {
    const f = filter.trim();
    if (!f || f === '*') return true;
    return f
      .split('||')
      .map((s) => s.trim())
      .includes(tag);
  }

  private popOnce(
    group: string,
    topic: string,
    max: number,
    invisibleMs: number,
    filter: string,
  ): StoredMessage[] {
    const queues = this.topics.get(topic);
    if (!queues) throw errors.topicNotFound(topic);
    const now = Date.now();
    const out: StoredMessage[] = [];
    for (let q = 0; q < queues.length && out.length < max; q++) {
      const key = `${group}|${topic}|${q}`;
      // Redeliveries first.
      for (const [k, f] of this.inflight) {
        if (out.length >= max) break;
        if (!k.startsWith(`${key}|`) || f.visibleAt > now) continue;
        const offset = Number(k.slice(key.length + 1));
        f.attempt++;
        f.popTime = now;
        f.visibleAt = now + invisibleMs;
        out.push(this.deliver(queues[q]![offset]!, group, topic, q, offset, f));
      }
      let n = this.next.get(key) ?? 0;
      while (n < queues[q]!.length && out.length < max) {
        const rec = queues[q]![n]!;
        if (this.match(filter, rec.tag)) {
          const f = { popTime: now, visibleAt: now + invisibleMs, attempt: 1 };
          this.inflight.set(`${key}|${n}`, f);
          out.push(this.deliver(rec, group, topic, q, n, f));
        }
        n++;
      }
      this.next.set(key, n);
    }
    return out;
  }

  private deliver(
    rec: Rec,
    group: string,
    topic: string,
    q: number,
    offset: number,
    f: Inflight,
  ): StoredMessage {
    return {
      ...rec.stored,
      delivery_attempt: f.attempt,
      receipt_handle: encodeReceiptHandle(
        {
          brokerName: this.opts.name,
          topic,
          queueId: q,
          offset,
          popTime: f.popTime,
          invisibleMs: f.visibleAt - f.popTime,
          attempt: f.attempt,
          group,
        },
        TEST_SECRET,
      ),
    };
  }

  /** Finds the in-flight entry a handle names; throws stale/forged like the real broker. */
  private settle(handle: string): { key: string; f: Inflight } {
    const h = decodeReceiptHandle(handle, TEST_SECRET);
    const key = `${h.group}|${h.topic}|${h.queueId}|${h.offset}`;
    const f = this.inflight.get(key);
    if (!f || f.popTime !== h.popTime) throw errors.receiptHandleExpired();
    return { key, f };
  }

  private handlers(): BrokerHandlers {
    const notYet = (what: string) =>
      unaryHandler(() => {
        throw errors.notImplemented(what);
      });
    const all = new Proxy({} as Record<string, unknown>, {
      get: (_t, prop: string) => notYet(prop),
    });
    const h: Partial<BrokerHandlers> = {
      SendMessages: unaryHandler((req) => {
        this.sendCalls++;
        this.sendEntries += req.entries.length;
        const results = req.entries.map((e) => {
          if (this.sendStatus) return { status: this.sendStatus };
          const m = e.message!;
          if (!this.topics.has(m.topic)) {
            if (!this.opts.autoCreate)
              return {
                status: {
                  code: Code.TOPIC_NOT_FOUND,
                  message: `topic '${m.topic}' does not exist`,
                },
              };
            this.createTopic(m.topic);
          }
          const queues = this.topics.get(m.topic)!;
          const q = this.sendEntries % QUEUES;
          const offset = queues[q]!.length;
          const id = `${this.opts.name}-${Date.now().toString(16)}-${offset}-${q}-${Math.random().toString(16).slice(2, 8)}`;
          queues[q]!.push({
            tag: m.tag,
            stored: {
              message: {
                ...m,
                message_id: id,
                born_timestamp_ms: m.born_timestamp_ms || Date.now(),
              },
              queue_id: q,
              queue_offset: offset,
              store_timestamp_ms: Date.now(),
              broker_name: this.opts.name,
              delivery_attempt: 1,
            },
          });
          return {
            status: { code: Code.OK, message: 'OK' },
            message_id: id,
            queue_id: q,
            queue_offset: offset,
            ...(m.transactional ? { transaction_id: `tx-${id}` } : {}),
          };
        });
        this.wake();
        return { results };
      }),
      PopMessages: unaryHandler(async (req, call) => {
        const deadline = Date.now() + Number(req.max_wait_ms);
        for (;;) {
          const got = this.popOnce(
            req.consumer_group,
            req.topic,
            req.max_messages,
            Number(req.invisible_ms),
            req.filter?.expression ?? '*',
          );
          const left = deadline - Date.now();
          if (got.length > 0 || left <= 0 || call.cancelled) {
            return {
              status:
                got.length > 0
                  ? { code: Code.OK, message: 'OK' }
                  : { code: Code.MESSAGE_NOT_FOUND, message: 'none' },
              messages: got,
            };
          }
          this.popsWaiting++;
          await this.wait(left, call as never).finally(() => this.popsWaiting--);
        }
      }),
      AckMessages: unaryHandler((req) => ({
        results: req.receipt_handles.map((handle) => {
          try {
            const { key } = this.settle(handle);
            this.inflight.delete(key);
            return { code: Code.OK, message: 'OK' };
          } catch (err) {
            const e = err as ReturnType<typeof errors.receiptHandleExpired>;
            return { code: e.code, message: e.message, reason: e.reason ?? '' };
          }
        }),
      })),
      ChangeInvisibleTime: unaryHandler((req) => ({
        results: req.entries.map((e) => {
          try {
            const { f } = this.settle(e.receipt_handle);
            const h = decodeReceiptHandle(e.receipt_handle, TEST_SECRET);
            const now = Date.now();
            f.popTime = now;
            f.visibleAt = now + Number(e.invisible_ms);
            if (Number(e.invisible_ms) === 0) this.wake();
            return {
              status: { code: Code.OK, message: 'OK' },
              receipt_handle: encodeReceiptHandle(
                { ...h, popTime: now, invisibleMs: Number(e.invisible_ms) },
                TEST_SECRET,
              ),
            };
          } catch (err) {
            const x = err as ReturnType<typeof errors.receiptHandleExpired>;
            return {
              status: { code: x.code, message: x.message, reason: x.reason ?? '' },
              receipt_handle: '',
            };
          }
        }),
      })),
      ForwardToDeadLetterQueue: unaryHandler((req) => {
        const { key } = this.settle(req.receipt_handle);
        this.inflight.delete(key);
        return { code: Code.OK, message: 'OK' };
      }),
      PullMessages: unaryHandler(async (req, call) => {
        const queues = this.topics.get(req.topic);
        if (!queues) throw errors.topicNotFound(req.topic);
        const deadline = Date.now() + Number(req.max_wait_ms);
        for (;;) {
          const q = queues[req.queue_id]!;
          const from = Number(req.offset);
          const slice = q
            .slice(from, from + req.max_messages)
            .filter((r) => this.match(req.filter?.expression ?? '*', r.tag));
          const next = Math.min(q.length, from + req.max_messages);
          if (slice.length > 0 || Date.now() >= deadline || call.cancelled) {
            return {
              status:
                slice.length > 0
                  ? { code: Code.OK, message: 'OK' }
                  : { code: Code.MESSAGE_NOT_FOUND, message: 'none' },
              messages: slice.map((r) => r.stored),
              next_offset: slice.length > 0 ? next : from,
              min_offset: 0,
              max_offset: q.length,
            };
          }
          await this.wait(deadline - Date.now(), call as never);
        }
      }),
      GetConsumerOffsets: unaryHandler((req) => ({
        offsets: [...this.offsets]
          .filter(([k]) => k.startsWith(`${req.consumer_group}|${req.topic}|`))
          .map(([k, offset]) => ({ topic: req.topic, queue_id: Number(k.split('|')[2]), offset })),
      })),
      UpdateConsumerOffsets: unaryHandler((req) => ({
        results: req.offsets.map((o) => {
          this.offsets.set(`${req.consumer_group}|${o.topic}|${o.queue_id}`, Number(o.offset));
          return { code: Code.OK, message: 'OK' };
        }),
      })),
      GetConsumerProgress: unaryHandler((req) => ({
        broker_name: this.opts.name,
        queues: [...this.offsets]
          .filter(([k]) => k.startsWith(`${req.consumer_group}|`))
          .map(([k, offset]) => {
            const [, topic, q] = k.split('|');
            return {
              topic: topic!,
              queue_id: Number(q),
              broker_offset: this.topics.get(topic!)?.[Number(q)]?.length ?? 0,
              consumer_offset: offset,
              in_flight: 0,
              last_timestamp_ms: 0,
            };
          }),
      })),
      QueryMessageById: unaryHandler((req) => ({
        messages: [...this.topics.values()]
          .flat(2)
          .filter((r) => r.stored.message?.message_id === req.message_id)
          .map((r) => r.stored),
      })),
      QueryMessageByKey: unaryHandler((req) => ({
        messages: (this.topics.get(req.topic) ?? [])
          .flat()
          .filter((r) => r.stored.message?.keys?.includes(req.key))
          .map((r) => r.stored),
      })),
      EndTransaction: notYet('EndTransaction'),
      GetBrokerStatus: unaryHandler(() => ({
        stats: { brokerName: this.opts.name, longPollsWaiting: String(this.popsWaiting) },
      })),
    };
    return new Proxy(h as BrokerHandlers, {
      get: (target, prop: string) => (target as Record<string, unknown>)[prop] ?? all[prop],
    });
  }
}
