/**
 * Prometheus metrics of a broker (served on `metricsPort`):
 *
 *  - gRPC calls and latency by method (`sluice_broker_rpc_duration_seconds{method="SendMessages"}`
 *    is the send latency as the gateway sees it, flush and replication waits included);
 *  - messages and body bytes stored per topic (producer sends only: retries,
 *    timers and transaction records the broker writes itself are not counted);
 *  - gauges read at scrape time from the same stats GetBrokerStatus answers
 *    (store, pop, timer, transactions, replication), so this file reaches
 *    into no service's internals.
 */
import { Metadata } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { Counter } from 'prom-client';
import { Code } from '../common/errors.js';
import type { BrokerHandlers } from '../common/generated/sluice/v1/Broker.js';
import type { SendMessagesRequest__Output } from '../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse } from '../common/generated/sluice/v1/SendMessagesResponse.js';
import { type RpcMetrics, rpcMetrics } from '../common/metrics/grpc-handlers.js';
import { createRegistry, gaugeOf } from '../common/metrics/registry.js';

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
  [
    'revivedMessages',
    'revived_messages',
    'messages redelivered after their invisible time ran out, since start',
  ],
  [
    'deadLetteredMessages',
    'dead_lettered_messages',
    'messages moved to a dead-letter queue, since start',
  ],
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
  [
    'haSyncTimeouts',
    'ha_sync_timeouts',
    'SYNC_MASTER sends answered FLUSH_SLAVE_TIMEOUT, since start',
  ],
];

export interface BrokerMetrics {
  registry: Registry;
  rpc: RpcMetrics;
  /** For instrumentService's onDone: counts what a successful SendMessages stored. */
  onCall(method: string, request: unknown, response: unknown): void;
}

/** `status` answers GetBrokerStatus's stats (string values). */
export function createBrokerMetrics(status: () => Promise<Record<string, string>>): BrokerMetrics {
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
  let cached: { at: number; stats: Promise<Record<string, string>> } | undefined;
  const stats = () => {
    const now = Date.now();
    if (!cached || now - cached.at > STATS_CACHE_MS) cached = { at: now, stats: status() };
    return cached.stats;
  };
  for (const [stat, name, help] of STAT_GAUGES) {
    gaugeOf(registry, `sluice_broker_${name}`, help, async () => {
      const v = (await stats())[stat];
      if (v === undefined || v === '') return undefined;
      const n = Number(v);
      return Number.isFinite(n) ? n : undefined;
    });
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
    onCall(method, request, response) {
      if (method !== 'SendMessages') return;
      const entries = (request as SendMessagesRequest__Output).entries;
      const results = (response as SendMessagesResponse).results ?? [];
      results.forEach((r, i) => {
        const m = entries[i]?.message;
        if (!m || (r.status?.code ?? Code.OK) !== Code.OK) return;
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
