/**
 * The Broker gRPC service: thin handlers over the messaging services and the
 * metadata managers. Errors are thrown as SluiceErrors and mapped to gRPC
 * status by unaryHandler (common/grpc.ts); batch RPCs answer per entry.
 */
import type { ServerUnaryCall } from '@grpc/grpc-js';
import { compactAnswerOf, sendEntriesOf } from '../../common/compact-messages.js';
import { compactSendResults } from '../../common/compact-send-results.js';
import { Code, errors } from '../../common/errors.js';
import type { BrokerHandlers } from '../../common/generated/sluice/v1/Broker.js';
import type { QueueProgress } from '../../common/generated/sluice/v1/QueueProgress.js';
import type { QueueStatus } from '../../common/generated/sluice/v1/QueueStatus.js';
import type { StoredMessage } from '../../common/generated/sluice/v1/StoredMessage.js';
import { unaryHandler } from '../../common/grpc.js';
import { checkGroupName, checkTopicName, Perm } from '../../common/names.js';
import { SLUICE_VERSION } from '../../common/paths.js';
import type { BrokerContext } from '../messaging/broker-context.js';
import { toStoredMessage } from '../messaging/message-codec.js';
import { MAX_POLL_WAIT_MS, type PopService } from '../messaging/pop-service.js';
import type { PullService } from '../messaging/pull-service.js';
import type { ReviveService } from '../messaging/revive-service.js';
import type { SendService } from '../messaging/send-service.js';
import type { TimerService } from '../messaging/timer-service.js';
import type { TransactionService } from '../messaging/transaction-service.js';
import { BROKER_SCHEMA } from '../options.js';
import { sendPhasesOf } from '../store-tracing.js';
import { CallStreams } from './call-stream.js';
import { PopWaits } from './pop-waits.js';

/**
 * Runs `work` with an AbortSignal that fires when the client cancels the call
 * (long polls stop waiting). grpc-js emits `cancelled` after every call, also
 * one it answered, so the listener goes once `work` settles: aborting then
 * would only build an AbortError per pop.
 */
async function untilCancelled<T>(
  call: ServerUnaryCall<unknown, unknown>,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  const onCancel = () => ac.abort();
  call.once('cancelled', onCancel);
  try {
    return await work(ac.signal);
  } finally {
    call.removeListener('cancelled', onCancel);
  }
}

export interface BrokerServices {
  ctx: BrokerContext;
  send: SendService;
  pop: PopService;
  pull: PullService;
  revive: ReviveService;
  timer: TimerService;
  transactions: TransactionService;
  /** Extra stats for GetBrokerStatus (replication, runtime). */
  status?: () => Record<string, string>;
  /** Persists a new broker-wide permission and re-registers. */
  setPermission(perm: number): Promise<void>;
  /**
   * Calls, over the unary handlers as finally served (tracing and metrics
   * wrappers included, so streamed calls are traced and counted like unary
   * ones). Default: over the handlers brokerHandlers returns.
   */
  callStreams?: CallStreams;
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

export function brokerHandlers(svc: BrokerServices): BrokerHandlers {
  const { ctx } = svc;
  const name = ctx.options.brokerName;
  const popWaits = new PopWaits(MAX_POLL_WAIT_MS, ctx.clock);
  const toMessages = (
    records: Awaited<ReturnType<typeof ctx.store.lookupByKey>>,
  ): StoredMessage[] => records.map((r) => toStoredMessage(r, name));

  const handlers: BrokerHandlers = {
    SendMessages: unaryHandler(async (req, call) => {
      const results = await svc.send.send(sendEntriesOf(req), sendPhasesOf(call));
      const compact = req.compact_results ? compactSendResults(results) : undefined;
      return compact ? { compact } : { results };
    }),

    Calls: (svc.callStreams ?? new CallStreams(() => handlers)).handler,

    PullMessages: unaryHandler(async (req, call) => {
      const res = await untilCancelled(call, (signal) => svc.pull.pull(req, signal));
      const compact = compactAnswerOf(req.compact_messages, res.messages ?? []);
      return compact ? { ...res, messages: [], compact } : res;
    }),

    PopMessages: unaryHandler(async (req, call) => {
      const pop = (signal?: AbortSignal) =>
        svc.pop.pop({
          group: req.consumer_group,
          topic: req.topic,
          queueId: req.queue_id,
          max: req.max_messages,
          invisibleMs: req.invisible_ms,
          waitMs: req.max_wait_ms,
          filter: req.filter?.expression ?? '',
          signal,
        });
      // A pop that does not wait has nothing to cancel or wake (most pops:
      // the gateway's sweeps and its receives that do not wait).
      const messages =
        req.max_wait_ms <= 0
          ? await pop()
          : await untilCancelled(call, async (cancelled) => {
              const wait = popWaits.begin(req.attempt_id, cancelled);
              try {
                return await pop(wait.signal);
              } finally {
                wait.end();
              }
            });
      const status =
        messages.length > 0
          ? { code: Code.OK, message: 'OK' }
          : { code: Code.MESSAGE_NOT_FOUND, message: 'no message available' };
      const compact = compactAnswerOf(req.compact_messages, messages);
      return compact ? { status, compact } : { status, messages };
    }),

    WakePops: unaryHandler(async (req) => {
      popWaits.wake(req.attempt_ids);
      return {};
    }),

    AckMessages: unaryHandler(async (req) => ({
      results: await svc.pop.ack(req.consumer_group, req.topic, req.receipt_handles),
    })),

    ChangeInvisibleTime: unaryHandler(async (req) => ({
      results: (await svc.pop.changeInvisible(req.consumer_group, req.topic, req.entries)).map(
        (r) => ({
          status: { code: r.code, message: r.message, reason: r.reason },
          receipt_handle: r.receiptHandle ?? '',
        }),
      ),
    })),

    ForwardToDeadLetterQueue: unaryHandler(async (req) => {
      await svc.pop.forwardToDeadLetter(req.consumer_group, req.topic, req.receipt_handle);
      return { code: Code.OK, message: 'OK' };
    }),

    EndTransaction: unaryHandler(async (req) => ({
      results: await svc.transactions.end(req.entries),
    })),
    GetOrphanedTransactions: unaryHandler(async (req) => ({
      transactions: await svc.transactions.orphans(req.max, req.topic),
    })),

    GetConsumerOffsets: unaryHandler((req) => {
      const group = checkGroupName(req.consumer_group);
      const byTopic = req.client_id
        ? ctx.offsets.byClient(group, req.client_id)
        : ctx.offsets.byGroup(group);
      const offsets = [...byTopic]
        .filter(([topic]) => !req.topic || topic === req.topic)
        .flatMap(([topic, queues]) =>
          [...queues].map(([queue_id, offset]) => ({ topic, queue_id, offset })),
        );
      return { offsets };
    }),

    UpdateConsumerOffsets: unaryHandler(async (req) => {
      const group = checkGroupName(req.consumer_group);
      const results: Array<{ code: number; message: string }> = [];
      for (const o of req.offsets) {
        if (o.offset < 0) {
          results.push({ code: Code.ILLEGAL_OFFSET, message: 'negative offset' });
          continue;
        }
        if (req.client_id) {
          ctx.offsets.commitForClient(group, req.client_id, o.topic, o.queue_id, o.offset);
        } else {
          // Backwards is an explicit reset: slaves apply it too (broker/ha/offset-sync.ts).
          const before = ctx.offsets.get(group, o.topic, o.queue_id);
          if (before !== undefined && o.offset < before) {
            await ctx.replication?.noteOffsetReset?.(group, o.topic, o.queue_id, o.offset);
          }
          ctx.offsets.commit(group, o.topic, o.queue_id, o.offset);
          // A pop group follows the new position too (its in-flight messages there are dropped).
          await svc.pop.resetOffset(group, o.topic, o.queue_id, o.offset);
        }
        results.push({ code: Code.OK, message: 'OK' });
      }
      await ctx.offsets.flush();
      return { results };
    }),

    SearchOffsetByTime: unaryHandler(async (req) => ({
      offset: await ctx.store.offsetByTime(req.topic, req.queue_id, req.timestamp_ms),
    })),

    ResetOffsetByTime: unaryHandler(async (req) => {
      const group = checkGroupName(req.consumer_group);
      const topic = checkTopicName(req.topic);
      const config = ctx.topics.get(topic);
      if (!config) throw errors.topicNotFound(topic);
      const offsets = [];
      for (let q = 0; q < config.read_queue_nums; q++) {
        const offset = await ctx.store.offsetByTime(topic, q, req.timestamp_ms);
        await ctx.replication?.noteOffsetReset?.(group, topic, q, offset);
        // Commit first: a pop that creates the queue's state meanwhile starts from the new offset.
        const committed = ctx.offsets.commitDurable(group, topic, q, offset);
        await svc.pop.resetOffset(group, topic, q, offset);
        await committed;
        offsets.push({ topic, queue_id: q, offset });
      }
      return { offsets };
    }),

    QueryMessageById: unaryHandler(async (req) => {
      const r = await ctx.store.lookupById(req.topic || undefined, req.message_id);
      return { messages: r ? toMessages([r]) : [] };
    }),

    QueryMessageByQueueOffset: unaryHandler(async (req) => {
      const topic = checkTopicName(req.topic);
      if (req.offset < 0) throw errors.illegalOffset(`offset ${req.offset} is negative`);
      const read = await ctx.store.read(
        topic,
        req.queue_id,
        req.offset,
        Math.min(Math.max(1, req.max), 1024),
      );
      // The store moves a read below the min offset forward; a query names exact offsets.
      return { messages: toMessages(read.records.filter((r) => r.queueOffset >= req.offset)) };
    }),

    QueryMessageByKey: unaryHandler(async (req) => ({
      messages: toMessages(
        await ctx.store.lookupByKey(
          checkTopicName(req.topic),
          req.key,
          req.max || 32,
          req.begin_timestamp_ms || undefined,
          req.end_timestamp_ms || undefined,
        ),
      ),
    })),

    UpdateTopic: unaryHandler(async (req) => {
      checkTopicName(req.topic_name);
      await ctx.topics.upsert({
        ...req,
        perm: req.perm || Perm.READ_WRITE,
      });
      return {};
    }),

    DeleteTopic: unaryHandler(async (req) => {
      await ctx.topics.delete(req.topic);
      await ctx.store.deleteTopic(req.topic);
      await svc.pop.forget(undefined, req.topic);
      ctx.offsets.deleteTopic(req.topic);
      return {};
    }),

    GetAllTopicConfig: unaryHandler(() => ({ topics: ctx.topics.all() })),

    GetTopicStatus: unaryHandler(async (req) => {
      const topic = checkTopicName(req.topic);
      const config = ctx.topics.get(topic);
      if (!config) throw errors.topicNotFound(topic);
      const queues: QueueStatus[] = [];
      for (let q = 0; q < Math.max(config.read_queue_nums, config.write_queue_nums); q++) {
        const max = ctx.store.maxOffset(topic, q);
        queues.push({
          queue_id: q,
          min_offset: ctx.store.minOffset(topic, q),
          max_offset: max,
          last_update_timestamp_ms:
            max > 0 ? ((await ctx.store.storeTimestampAt(topic, q, max - 1)) ?? 0) : 0,
        });
      }
      return { broker_name: name, queues };
    }),

    UpdateSubscriptionGroup: unaryHandler(async (req) => {
      checkGroupName(req.group_name);
      await ctx.groups.upsert(req);
      return {};
    }),

    DeleteSubscriptionGroup: unaryHandler(async (req) => {
      await ctx.groups.delete(req.group_name);
      ctx.offsets.deleteGroup(req.group_name);
      await svc.pop.forget(req.group_name);
      return {};
    }),

    GetAllSubscriptionGroups: unaryHandler(() => ({ groups: ctx.groups.all() })),

    GetConsumerProgress: unaryHandler(async (req) => {
      const group = checkGroupName(req.consumer_group);
      // Committed offsets (pull groups, and pop groups mirrored) overlaid with the pop state (exact).
      const rows = new Map<
        string,
        { topic: string; queue_id: number; offset: number; inFlight: number }
      >();
      for (const [topic, offsets] of ctx.offsets.byGroup(group)) {
        for (const [queue_id, offset] of offsets) {
          rows.set(`${topic}\u0000${queue_id}`, { topic, queue_id, offset, inFlight: 0 });
        }
      }
      for (const st of svc.pop.statesOf(group)) {
        rows.set(`${st.topic}\u0000${st.queueId}`, {
          topic: st.topic,
          queue_id: st.queueId,
          offset: st.base,
          inFlight: st.inflight.size,
        });
      }
      const queues: QueueProgress[] = [];
      for (const r of rows.values()) {
        if (req.topic && r.topic !== req.topic) continue;
        const brokerOffset = ctx.store.maxOffset(r.topic, r.queue_id);
        queues.push({
          topic: r.topic,
          queue_id: r.queue_id,
          broker_offset: brokerOffset,
          consumer_offset: r.offset,
          in_flight: r.inFlight,
          lag: Math.max(0, brokerOffset - r.offset),
          last_timestamp_ms:
            r.offset > 0
              ? ((await ctx.store.storeTimestampAt(r.topic, r.queue_id, r.offset - 1)) ?? 0)
              : 0,
        });
      }
      queues.sort(
        (a, b) =>
          (a.topic ?? '').localeCompare(b.topic ?? '') || (a.queue_id ?? 0) - (b.queue_id ?? 0),
      );
      return { broker_name: name, queues };
    }),

    SetBrokerPermission: unaryHandler(async (req) => {
      if (req.perm < 0 || req.perm > 7)
        throw errors.badRequest(`permission ${req.perm} is not 0..7`);
      await svc.setPermission(req.perm);
      return {};
    }),

    GetBrokerStatus: unaryHandler(() => {
      const s = ctx.store.stats();
      return {
        stats: {
          brokerName: name,
          brokerId: String(ctx.options.brokerId),
          brokerRole: ctx.options.brokerRole,
          brokerAddr: ctx.brokerAddr,
          perm: String(ctx.perm()),
          minPhysicalOffset: String(s.minPhysicalOffset),
          maxPhysicalOffset: String(s.maxPhysicalOffset),
          flushedPhysicalOffset: String(s.flushedPhysicalOffset),
          commitlogSegments: String(s.commitlogSegments),
          diskUsedRatio: s.diskUsedRatio.toFixed(4),
          topics: String(ctx.topics.all().length),
          inFlightMessages: String(svc.pop.inFlightCount()),
          revivedMessages: String(svc.revive.revived),
          deadLetteredMessages: String(svc.pop.deadLettered),
          timerPending: String(svc.timer.stats().pending),
          timerInMemory: String(svc.timer.stats().inMemory),
          timerDelivered: String(svc.timer.stats().delivered),
          timerMaxLatenessMs: String(svc.timer.stats().maxLatenessMs),
          transactionsOpen: String(svc.transactions.stats().open),
          transactionsCommitted: String(svc.transactions.stats().committed),
          transactionsRolledBack: String(svc.transactions.stats().rolledBack),
          transactionsDiscarded: String(svc.transactions.stats().discarded),
          longPollsWaiting: String(ctx.notifier.waiting),
          rssBytes: String(process.memoryUsage().rss),
          // User + system CPU time of the broker process since start, µs.
          cpuMicros: String(cpuMicros()),
          uptimeSeconds: process.uptime().toFixed(0),
          brokerVersionDesc: `Sluice ${SLUICE_VERSION}`,
          ...(svc.status?.() ?? {}),
        },
      };
    }),

    GetBrokerConfig: unaryHandler(() => ({
      config: Object.fromEntries(
        Object.keys(BROKER_SCHEMA)
          .filter((k) => k !== 'receiptHandleSecret')
          .map((k) => [k, String(ctx.options[k as keyof typeof ctx.options])]),
      ),
    })),
  };
  return handlers;
}
