/**
 * The broker's messaging services in this process, over a real message store
 * and consume-state journal in a temp directory: for tests that must force an
 * interleaving (a read in progress while something else happens) or move the
 * clock. Integration tests use real broker processes (test/harness) instead.
 *
 * `gate` pauses calls on purpose: while a gate is closed, every call of that
 * store method (read, readAt, appendBatch) or consume-state journal write
 * (settle, put) has done its real work and waits before answering, so a test
 * can act "during the read" (or crash right after a write) deterministically.
 */
import { join } from 'node:path';
import { ArrivalNotifier } from '../../broker/messaging/arrival-notifier.js';
import type { BrokerContext } from '../../broker/messaging/broker-context.js';
import { ConsumeStateStore } from '../../broker/messaging/consume-state-store.js';
import { type PopLimits, PopService } from '../../broker/messaging/pop-service.js';
import { PullService } from '../../broker/messaging/pull-service.js';
import { ReviveService } from '../../broker/messaging/revive-service.js';
import { SendService } from '../../broker/messaging/send-service.js';
import { TimerService } from '../../broker/messaging/timer-service.js';
import { TransactionService } from '../../broker/messaging/transaction-service.js';
import { ConsumerOffsetManager } from '../../broker/metadata/consumer-offset-manager.js';
import { SubscriptionGroupManager } from '../../broker/metadata/subscription-group-manager.js';
import { TopicConfigManager } from '../../broker/metadata/topic-config-manager.js';
import { BROKER_SCHEMA, type BrokerOptions } from '../../broker/options.js';
import type { MessageStore } from '../../broker/store/index.js';
import { createMessageStore } from '../../broker/store/message-store.js';
import { defaultsOf } from '../../common/config/options.js';
import type { Message__Output } from '../../common/generated/sluice/v1/Message.js';
import type { SendResult } from '../../common/generated/sluice/v1/SendResult.js';
import { type Logger, silentLogger } from '../../common/logger.js';
import { makeTempDir } from '../harness/tmp.js';

type Gated = 'read' | 'readAt' | 'appendBatch' | 'settle' | 'put';

export interface LocalBroker {
  dir: string;
  store: MessageStore;
  ctx: BrokerContext;
  states: ConsumeStateStore;
  pop: PopService;
  pull: PullService;
  revive: ReviveService;
  timer: TimerService;
  transactions: TransactionService;
  send: SendService;
  /** Epoch ms the services see; move it with `clock.now += …` when `fakeClock` was set. */
  clock: { now: number };
  /** Closes a gate: later calls of that store method wait (after their real work) until it opens. */
  gate(method: Gated): { opened: () => void; entered: Promise<void> };
  sendOk(topic: string, messages: Array<Partial<Message__Output>>): Promise<SendResult[]>;
  /** Closes like a SIGKILL would leave it: journals not compacted, store not flushed cleanly. */
  crash(): Promise<void>;
  close(): Promise<void>;
}

export interface LocalBrokerOptions {
  dir?: string;
  options?: Partial<BrokerOptions>;
  /** Start the clock here and move it only by hand. */
  fakeClock?: number;
  limits?: Partial<PopLimits>;
  /** Start the timer and transaction services (as main.ts does). */
  start?: boolean;
  /** Default: silent. */
  logger?: Logger;
}

/** Brokers opened and neither closed nor crashed yet (closeLocalBrokers closes them). */
const openBrokers = new Set<LocalBroker>();
/**
 * Store directories made here. A crashed broker keeps its directory for the
 * test to reopen, so they go only once the test's brokers are all closed.
 */
const tempDirs = new Set<{ remove(): void }>();

/**
 * Closes every local broker still open and removes their store directories:
 * a test file's afterEach, so a failed (or crash-testing) test leaks none.
 */
export async function closeLocalBrokers(): Promise<void> {
  const brokers = [...openBrokers];
  openBrokers.clear();
  for (const b of brokers) await b.close().catch(() => undefined);
  for (const t of tempDirs) t.remove();
  tempDirs.clear();
}

export async function openLocalBroker(o: LocalBrokerOptions = {}): Promise<LocalBroker> {
  const tmp = o.dir ? undefined : makeTempDir('sluice-msg-');
  if (tmp) tempDirs.add(tmp);
  const dir = o.dir ?? tmp!.path;
  const options: BrokerOptions = {
    ...defaultsOf(BROKER_SCHEMA),
    storePathRootDir: dir,
    ...o.options,
  };
  const real = createMessageStore({
    storePathRootDir: dir,
    mapedFileSizeCommitLog: 4 * 1024 * 1024,
    mapedFileSizeConsumeQueue: 60_000,
    flushDiskType: options.flushDiskType,
  });
  await real.start();
  const gates = new Map<Gated, { wait: Promise<void>; enter: () => void }>();
  const gated = <T extends object>(target: T, methods: Record<string, Gated>): T =>
    new Proxy(target, {
      get(t, prop) {
        const value: unknown = Reflect.get(t, prop, t);
        if (typeof value !== 'function') return value;
        const fn = (value as (...a: unknown[]) => unknown).bind(t);
        const name = typeof prop === 'string' ? methods[prop] : undefined;
        if (!name) return fn;
        return async (...args: unknown[]) => {
          const result = await fn(...args);
          const g = gates.get(name);
          if (g) {
            g.enter();
            await g.wait;
          }
          return result;
        };
      },
    });
  const store = gated(real, { read: 'read', readAt: 'readAt', appendBatch: 'appendBatch' });
  const clock = { now: o.fakeClock ?? 0 };
  const notifier = new ArrivalNotifier();
  real.onDispatch((e) => notifier.notify(e.topic));
  const offsets = new ConsumerOffsetManager(dir);
  const ctx: BrokerContext = {
    options,
    brokerAddr: '127.0.0.1:0',
    store,
    topics: new TopicConfigManager(dir, options),
    groups: new SubscriptionGroupManager(
      dir,
      options.autoCreateSubscriptionGroup,
      options.maxReconsumeTimes,
    ),
    offsets,
    notifier,
    logger: o.logger ?? silentLogger,
    clock: o.fakeClock === undefined ? Date.now : () => clock.now,
    perm: () => 6,
  };
  const realStates = new ConsumeStateStore({
    dir: join(dir, 'popstate'),
    flushDiskType: 'ASYNC_FLUSH',
    flushIntervalMs: 500,
    logger: silentLogger,
  });
  await realStates.open();
  const states = gated(realStates, { settle: 'settle', settleOffsets: 'settle', put: 'put' });
  const timer = new TimerService(ctx, states);
  const transactions = new TransactionService(ctx, states);
  const pop = new PopService(ctx, states, o.limits);
  const revive = new ReviveService(ctx, pop);
  if (o.start) {
    await timer.start();
    await transactions.start();
  }
  const send = new SendService(ctx, timer, transactions);
  const stop = async () => {
    await timer.close();
    transactions.close();
    await revive.close();
  };
  const broker: LocalBroker = {
    dir,
    store: real,
    ctx,
    states,
    pop,
    pull: new PullService(ctx),
    revive,
    timer,
    transactions,
    send,
    clock,
    gate(method) {
      let opened!: () => void;
      let enter!: () => void;
      const wait = new Promise<void>((r) => {
        opened = r;
      });
      const entered = new Promise<void>((r) => {
        enter = r;
      });
      gates.set(method, { wait, enter });
      return {
        entered,
        opened: () => {
          gates.delete(method);
          opened();
        },
      };
    },
    async sendOk(topic, messages) {
      const results = await send.send(
        messages.map((m) => ({
          message: {
            topic,
            body: Buffer.from(''),
            tag: '',
            keys: [],
            properties: {},
            message_id: '',
            message_group: '',
            delivery_timestamp_ms: 0,
            delay_level: 0,
            transactional: false,
            producer_group: '',
            born_timestamp_ms: 0,
            born_host: '',
            traceparent: '',
            tracestate: '',
            ...m,
          },
          queue_id: -1,
        })),
      );
      const bad = results.find((r) => r.status?.code !== 20000);
      if (bad) throw new Error(`send failed: ${JSON.stringify(bad.status)}`);
      return results;
    },
    async crash() {
      openBrokers.delete(broker);
      await stop();
      await realStates.release();
      await offsets.close();
      await real.close();
    },
    async close() {
      openBrokers.delete(broker);
      await stop();
      await realStates.close();
      await offsets.close();
      await real.close();
      if (tmp) {
        tmp.remove();
        tempDirs.delete(tmp);
      }
    },
  };
  openBrokers.add(broker);
  return broker;
}
