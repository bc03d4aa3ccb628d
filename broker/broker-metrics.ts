/**
 * Prometheus metrics of a broker (served on `metricsPort`):
 *
 *  - gRPC calls and latency by method (`sluice_broker_rpc_duration_seconds{method="SendMessages"}`
 *    is the send latency as the gateway sees it, flush and replication waits included);
 *  - messages and body bytes stored per topic (producer sends only: retries,
 *    timers and transaction records the broker writes itself are not
 *    counted) and delivered per topic (pops and pulls);
 *  - commitlog fdatasync latency (`sluice_broker_commitlog_flush_duration_seconds`);
 *  - retries and dead-letter moves per consumer group, counted as their
 *    records reach %RETRY%{group} / %DLQ%{group} (a master's own writes);
 *  - consumer lag per group and queue and in-flight messages per group,
 *    computed when scraped from the offsets and pop state (bounded: at
 *    most DEFAULT_MAX_LAG_SERIES queues);
 *  - gauges (levels) and counters (totals since start) read at scrape time
 *    from the same stats GetBrokerStatus answers (store, pop, timer,
 *    transactions, replication), so this file reaches into no service's
 *    internals.
 */
import { Metadata } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { Counter, Histogram } from 'prom-client';
import { bodyLengthsOf, type MessagesAnswer, sendEntriesOf } from '../common/compact-messages.js';
import { sendResultCodes } from '../common/compact-send-results.js';
import { Code } from '../common/errors.js';
import type { BrokerHandlers } from '../common/generated/sluice/v1/Broker.js';
import type { SendMessagesRequest__Output } from '../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse } from '../common/generated/sluice/v1/SendMessagesResponse.js';
import { type RpcMetrics, rpcMetrics } from '../common/metrics/grpc-handlers.js';
import { counterOf, createRegistry, gaugeOf } from '../common/metrics/registry.js';
import { DLQ_TOPIC_PREFIX, RETRY_TOPIC_PREFIX } from '../common/names.js';
import type { QueueState } from './messaging/consume-state.js';
import { isInternalReader } from './messaging/system-topics.js';
import type { ConsumerOffsetManager } from './metadata/consumer-offset-manager.js';

/** How long one read of the broker status serves every gauge of a scrape. */
const STATS_CACHE_MS = 250;

/** GetBrokerStatus stat → gauge. Stats a broker does not report (e.g. replication without slaves) stay absent. */
const STAT_GAUGES: readonly [stat: string, name: string, help: string][] = [
  ['inFlightMessages', 'in_flight_messages', 'popped messages not yet acked (invisible)'],
  ['longPollsWaiting', 'long_polls_waiting', 'pops and pulls waiting for messages'],
  ['diskUsedRatio', 'disk_used_ratio', 'used / total space of the store disk (0..1)'],
  ['maxPhysicalOffset', 'commitlog_max_offset_bytes', 'commitlog end offset'],
  ['minPhysicalOffset', 'commitlog_min_offset_bytes', 'oldest commitlog offset kept'],
  ['flushedPhysicalOffset', 'commitlog_flushed_offset_bytes', 'commitlog offset known durable'],
  ['commitlogSegments', 'commitlog_segments', 'commitlog segment files'],
  ['topics', 'topics', 'topics configured on this broker'],
  ['timerPending', 'timer_pending_messages', 'delayed messages not yet due'],
  ['timerMaxLatenessMs', 'timer_max_lateness_ms', 'worst lateness of a delayed message delivery'],
  ['transactionsOpen', 'transactions_open', 'half messages awaiting commit or rollback'],
  ['haConnectedSlaves', 'ha_connected_slaves', 'slaves with an open replication stream (master)'],
  ['haInSyncSlaves', 'ha_in_sync_slaves', 'slaves within haMaxGapNotInSync (master)'],
  [
    'haReplicationLagBytes',
    'replication_lag_bytes',
    'commitlog bytes the slowest replica is behind',
  ],
  [
    'haReplicationLagMsP99',
    'replication_lag_ms_p99',
    'master store time to slave write, p99 over 10 s (slave)',
  ],
  ['haSyncWaiting', 'ha_sync_waiting', 'SYNC_MASTER sends waiting for a slave ack'],
];

/** GetBrokerStatus stat that only grows → counter (`_total`). */
const STAT_COUNTERS: readonly [stat: string, name: string, help: string][] = [
  [
    'revivedMessages',
    'revived_messages_total',
    'messages redelivered after their invisible time ran out',
  ],
  ['deadLetteredMessages', 'dead_lettered_messages_total', 'messages moved to a dead-letter queue'],
  ['haSyncTimeouts', 'ha_sync_timeouts_total', 'SYNC_MASTER sends answered FLUSH_SLAVE_TIMEOUT'],
];

/** Queues whose lag one scrape reports, at most (label cardinality bound). */
export const DEFAULT_MAX_LAG_SERIES = 2_000;

/** Commitlog fdatasync latency buckets, seconds: 50 µs … 1 s. */
const FLUSH_BUCKETS_S = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

/** One consumer group's position in one queue. */
export interface QueueProgressRow {
  group: string;
  topic: string;
  queueId: number;
  /** Messages stored but not yet consumed (max offset − consumed offset). */
  lag: number;
  /** Popped and not yet acked. */
  inFlight: number;
}

/** Where the scrape-time per-group metrics come from (broker/main.ts wires them). */
export interface BrokerMetricSources {
  /** GetBrokerStatus's stats (string values). */
  status: () => Promise<Record<string, string>>;
  /** Every (group, queue) with a position, at most `limit` rows. */
  progress?: (limit: number) => readonly QueueProgressRow[];
  /** The store's dispatch feed (every record appended), for retries and DLQ moves. */
  onDispatch?: (listener: (e: { topic: string }) => void) => () => void;
}

export interface BrokerMetrics {
  registry: Registry;
  rpc: RpcMetrics;
  /** Observed by the store (StoreSeams.onFlush) for each fdatasync round. */
  flushDuration: Histogram;
  /** For instrumentService's onDone: counts what a SendMessages stored and a pop / pull delivered. */
  onCall(method: string, request: unknown, response: unknown): void;
  /** Stops following the dispatch feed. */
  close(): void;
}

export function createBrokerMetrics(sources: BrokerMetricSources): BrokerMetrics {
  const { status } = sources;
  const registry = createRegistry('sluice_broker_');
  const messagesIn = new Counter({
    name: 'sluice_broker_messages_in_total',
    help: 'messages stored from producers, by topic',
    labelNames: ['topic'] as const,
    registers: [registry],
  });
  const bytesIn = new Counter({
    name: 'sluice_broker_message_bytes_in_total',
    help: 'body bytes of messages stored from producers, by topic',
    labelNames: ['topic'] as const,
    registers: [registry],
  });
  const messagesOut = new Counter({
    name: 'sluice_broker_messages_out_total',
    help: 'messages delivered to consumers (pop and pull), by topic',
    labelNames: ['topic'] as const,
    registers: [registry],
  });
  const bytesOut = new Counter({
    name: 'sluice_broker_message_bytes_out_total',
    help: 'body bytes of messages delivered to consumers, by topic',
    labelNames: ['topic'] as const,
    registers: [registry],
  });
  const retries = new Counter({
    name: 'sluice_broker_retries_total',
    help: 'messages written to a group retry topic for redelivery, by group',
    labelNames: ['group'] as const,
    registers: [registry],
  });
  const deadLetters = new Counter({
    name: 'sluice_broker_dead_letters_total',
    help: 'messages moved to a group dead-letter topic, by group',
    labelNames: ['group'] as const,
    registers: [registry],
  });
  const flushDuration = new Histogram({
    name: 'sluice_broker_commitlog_flush_duration_seconds',
    help: 'commitlog fdatasync rounds (one covers many appends under SYNC_FLUSH)',
    buckets: FLUSH_BUCKETS_S,
    registers: [registry],
  });
  const unsubscribe = sources.onDispatch?.((e) => {
    // Cheap first test: only system topics start with '%'.
    if (e.topic.charCodeAt(0) !== 37) return;
    if (e.topic.startsWith(RETRY_TOPIC_PREFIX)) {
      retries.inc({ group: e.topic.slice(RETRY_TOPIC_PREFIX.length) });
    } else if (e.topic.startsWith(DLQ_TOPIC_PREFIX)) {
      deadLetters.inc({ group: e.topic.slice(DLQ_TOPIC_PREFIX.length) });
    }
  });
  if (sources.progress) {
    const progress = sources.progress;
    gaugeOf(
      registry,
      'sluice_broker_consumer_lag_messages',
      `messages a consumer group has yet to consume, per queue (at most ${DEFAULT_MAX_LAG_SERIES} queues)`,
      () =>
        progress(DEFAULT_MAX_LAG_SERIES).map((r) => ({
          labels: { group: r.group, topic: r.topic, queue: String(r.queueId) },
          value: r.lag,
        })),
      ['group', 'topic', 'queue'] as const,
    );
    gaugeOf(
      registry,
      'sluice_broker_group_in_flight_messages',
      'messages popped and not yet acked (invisible), per consumer group',
      () => {
        const byGroup = new Map<string, number>();
        for (const r of progress(DEFAULT_MAX_LAG_SERIES)) {
          byGroup.set(r.group, (byGroup.get(r.group) ?? 0) + r.inFlight);
        }
        return [...byGroup].map(([group, value]) => ({ labels: { group }, value }));
      },
      ['group'] as const,
    );
  }
  let cached: { at: number; stats: Promise<Record<string, string>> } | undefined;
  const stats = () => {
    const now = Date.now();
    if (!cached || now - cached.at > STATS_CACHE_MS) cached = { at: now, stats: status() };
    return cached.stats;
  };
  const statOf = (stat: string) => async () => {
    const v = (await stats())[stat];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  };
  for (const [stat, name, help] of STAT_GAUGES) {
    gaugeOf(registry, `sluice_broker_${name}`, help, statOf(stat));
  }
  for (const [stat, name, help] of STAT_COUNTERS) {
    counterOf(registry, `sluice_broker_${name}`, help, statOf(stat));
  }
  gaugeOf(
    registry,
    'sluice_broker_commitlog_unflushed_bytes',
    'commitlog bytes written but not yet flushed',
    async () => {
      const s = await stats();
      const n = Number(s.maxPhysicalOffset) - Number(s.flushedPhysicalOffset);
      return Number.isFinite(n) ? Math.max(0, n) : undefined;
    },
  );
  return {
    registry,
    rpc: rpcMetrics(registry, 'sluice_broker_'),
    flushDuration,
    close: () => unsubscribe?.(),
    onCall(method, request, response) {
      if (method === 'PopMessages' || method === 'PullMessages') {
        const topic = (request as { topic: string }).topic;
        const lengths = bodyLengthsOf(response as MessagesAnswer);
        if (lengths.length === 0) return;
        let bytes = 0;
        for (const n of lengths) bytes += n;
        messagesOut.inc({ topic }, lengths.length);
        bytesOut.inc({ topic }, bytes);
        return;
      }
      if (method !== 'SendMessages') return;
      // Expanded by the handler already (a no-op here).
      const entries = sendEntriesOf(request as SendMessagesRequest__Output);
      const codes = sendResultCodes(response as SendMessagesResponse);
      codes.forEach((code, i) => {
        const m = entries[i]?.message;
        if (!m || code !== Code.OK) return;
        messagesIn.inc({ topic: m.topic });
        bytesIn.inc({ topic: m.topic }, m.body.length);
      });
    },
  };
}

/** GetBrokerStatus's stats, asked of the handler in-process (no RPC). */
export function brokerStatusOf(handlers: BrokerHandlers): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const call = { request: {}, metadata: new Metadata() } as unknown as Parameters<
      BrokerHandlers['GetBrokerStatus']
    >[0];
    handlers.GetBrokerStatus(call, (err, value) => {
      if (err) reject(err);
      else resolve((value?.stats ?? {}) as Record<string, string>);
    });
  });
}

/**
 * Every (group, topic, queue) position: committed offsets overlaid with the
 * pop state (exact, with in-flight counts), as GetConsumerProgress reads
 * them; internal readers (#…) are left out. Stops at `limit` rows.
 */
export function consumerProgressRows(
  offsets: Pick<ConsumerOffsetManager, 'entries'>,
  states: () => Iterable<QueueState>,
  maxOffset: (topic: string, queueId: number) => number,
  limit: number,
): QueueProgressRow[] {
  const rows = new Map<
    string,
    { group: string; topic: string; queueId: number; offset: number; inFlight: number }
  >();
  for (const [group, topic, queueId, offset] of offsets.entries()) {
    if (rows.size >= limit) break;
    if (isInternalReader(group)) continue;
    rows.set(`${group}\u0000${topic}\u0000${queueId}`, {
      group,
      topic,
      queueId,
      offset,
      inFlight: 0,
    });
  }
  for (const st of states()) {
    if (isInternalReader(st.group)) continue;
    const key = `${st.group}\u0000${st.topic}\u0000${st.queueId}`;
    if (!rows.has(key) && rows.size >= limit) continue;
    rows.set(key, {
      group: st.group,
      topic: st.topic,
      queueId: st.queueId,
      offset: st.base,
      inFlight: st.inflight.size,
    });
  }
  return [...rows.values()].map((r) => ({
    group: r.group,
    topic: r.topic,
    queueId: r.queueId,
    lag: Math.max(0, maxOffset(r.topic, r.queueId) - r.offset),
    inFlight: r.inFlight,
  }));
}
