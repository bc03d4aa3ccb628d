/**
 * Prometheus metrics of the gateway (prom-client, a registry per gateway so
 * tests can run several in one process), for both transports: requests
 * and latency per REST route and per gRPC method, messages and bytes in
 * (sent) and out (delivered) per topic, acks, send and receive latency,
 * batch sizes, Redis errors, and values read from the core services at
 * scrape time (long polls open, route-cache hits …). Counts kept "since
 * start" elsewhere are exposed as counters (`…_total`), levels as gauges.
 *
 * The REST middleware also writes the access log: one debug line per
 * request (LOG_LEVEL=debug; at 20k requests/s an info line each would be
 * megabytes a second of log for little news) and a warn line for every 5xx
 * answer, both with the request's trace and span ids when it carried a
 * traceparent (or, with tracing on, the active span's).
 */
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { Code } from '../../common/errors.js';
import type { Message } from '../../common/generated/sluice/v1/Message.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import type { Logger } from '../../common/logger.js';
import { counterOf, LATENCY_BUCKETS_S } from '../../common/metrics/registry.js';
import { TRACEPARENT, traceIdsOf } from '../../common/telemetry/tracing.js';
import type { SendOutcome } from '../core/gateway-service.js';
import { headersOf } from './headers.js';

export interface GatewayGaugeSources {
  longPollsWaiting: () => number;
  sendQueued: () => number;
  routeCache: () => { hits: number; misses: number; refreshes: number; cacheErrors: number };
  idempotentReplays: () => number;
  avoidedBrokers: () => number;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'sluice_gateway_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'sluice_gateway_http_request_duration_seconds',
    help: 'HTTP request latency by route (long polls included)',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly messagesSent = new Counter({
    name: 'sluice_gateway_messages_sent_total',
    help: 'messages stored through the REST API',
    registers: [this.registry],
  });
  readonly messagesIn = new Counter({
    name: 'sluice_gateway_messages_in_total',
    help: 'messages stored through the gateway, by topic',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: 'sluice_gateway_message_bytes_in_total',
    help: 'body bytes of messages stored through the gateway, by topic',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  readonly messagesOut = new Counter({
    name: 'sluice_gateway_messages_out_total',
    help: 'messages delivered to consumers (receive, stream, pull), by topic',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  readonly bytesOut = new Counter({
    name: 'sluice_gateway_message_bytes_out_total',
    help: 'body bytes of messages delivered to consumers, by topic',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  readonly sendDuration = new Histogram({
    name: 'sluice_gateway_send_duration_seconds',
    help: 'time to store a send request (all its messages), by topic',
    labelNames: ['topic'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  readonly receiveDuration = new Histogram({
    name: 'sluice_gateway_receive_duration_seconds',
    help: 'time a receive took, long-poll wait included, by topic',
    labelNames: ['topic'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  readonly redisErrors = new Counter({
    name: 'sluice_gateway_redis_errors_total',
    help: 'errors reported by the Redis client (connection, timeouts)',
    registers: [this.registry],
  });
  readonly acks = new Counter({
    name: 'sluice_gateway_acks_total',
    help: 'receipt handles acknowledged (REST and gRPC), by topic',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });
  readonly grpcRequests = new Counter({
    name: 'sluice_gateway_grpc_requests_total',
    help: 'apache.rocketmq.v2 calls by method and the answer Status code (20000 = OK)',
    labelNames: ['method', 'code'] as const,
    registers: [this.registry],
  });
  readonly grpcDuration = new Histogram({
    name: 'sluice_gateway_grpc_request_duration_seconds',
    help: 'apache.rocketmq.v2 call latency by method (long polls included)',
    labelNames: ['method'] as const,
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'sluice_gateway_send_batch_messages',
    help: 'messages per coalesced SendMessages RPC',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  });

  constructor(sources?: GatewayGaugeSources, defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'sluice_gateway_' });
    if (!sources) return;
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    gauge(
      'sluice_gateway_long_polls_waiting',
      'receives and pulls waiting on brokers',
      sources.longPollsWaiting,
    );
    gauge(
      'sluice_gateway_send_queued_messages',
      'messages waiting for a batch RPC slot',
      sources.sendQueued,
    );
    counterOf(
      this.registry,
      'sluice_gateway_route_cache_hits_total',
      'route lookups answered by the cache',
      () => sources.routeCache().hits,
    );
    counterOf(
      this.registry,
      'sluice_gateway_route_cache_misses_total',
      'route lookups that asked the name servers',
      () => sources.routeCache().misses,
    );
    gauge('sluice_gateway_route_cache_hit_ratio', 'route cache hits / lookups since start', () => {
      const { hits, misses } = sources.routeCache();
      return hits + misses === 0 ? 0 : hits / (hits + misses);
    });
    counterOf(
      this.registry,
      'sluice_gateway_route_cache_errors_total',
      'route cache (Redis) failures',
      () => sources.routeCache().cacheErrors,
    );
    counterOf(
      this.registry,
      'sluice_gateway_idempotent_replays_total',
      'sends answered from an Idempotency-Key',
      sources.idempotentReplays,
    );
    gauge(
      'sluice_gateway_avoided_brokers',
      'brokers avoided after being slow or failing',
      sources.avoidedBrokers,
    );
  }

  /**
   * Counts and times every request by its route pattern, and writes the
   * access log (see the file comment) when a logger is given.
   */
  middleware(logger?: Logger): MiddlewareHandler {
    return async (c, next) => {
      const start = performance.now();
      await next();
      const route = routePath(c, -1);
      const status = c.res.status;
      const seconds = (performance.now() - start) / 1000;
      this.requests.inc({ method: c.req.method, route, status: String(status) });
      this.duration.observe({ route }, seconds);
      if (!logger || (status < 500 && !logger.isLevelEnabled('debug'))) return;
      const line: Record<string, unknown> = {
        method: c.req.method,
        route,
        path: c.req.path,
        status,
        ms: Math.round(seconds * 1e6) / 1e3,
        // The trace the request belongs to: the caller's traceparent, else the
        // one handed back (a single-message receive); the logger's mixin adds
        // the active span's ids instead when tracing is on and one is active.
        ...traceIdsOf(headersOf(c).get(TRACEPARENT) ?? c.res.headers.get(TRACEPARENT)),
      };
      if (status >= 500) {
        if (c.error) line.err = c.error.message;
        logger.warn(line, 'request failed');
      } else {
        logger.debug(line, 'request');
      }
    };
  }

  /** Counts a send's stored messages (in) and times it, whichever transport it came by. */
  countSent(
    topic: string,
    messages: readonly Message[],
    outcomes: readonly SendOutcome[],
    seconds: number,
  ): void {
    this.sendDuration.observe({ topic }, seconds);
    let ok = 0;
    let bytes = 0;
    outcomes.forEach((o, i) => {
      if (o.status.code !== Code.OK) return;
      ok++;
      const b = messages[i]?.body;
      bytes += typeof b === 'string' ? Buffer.byteLength(b) : (b?.length ?? 0);
    });
    this.countMessages('in', topic, ok, bytes);
  }

  /** Counts the handles of an ack that succeeded. */
  countAcked(topic: string, statuses: readonly { code: number }[]): void {
    let ok = 0;
    for (const s of statuses) if (s.code === Code.OK) ok++;
    if (ok > 0) this.acks.inc({ topic }, ok);
  }

  /** Counts messages delivered to a consumer (out) and their body bytes. */
  countDelivered(topic: string, messages: readonly StoredMessage__Output[]): void {
    if (messages.length === 0) return;
    let bytes = 0;
    for (const m of messages) bytes += m.message?.body.length ?? 0;
    this.countMessages('out', topic, messages.length, bytes);
  }

  /** Counts messages and body bytes stored (in) or delivered (out) for a topic. */
  countMessages(direction: 'in' | 'out', topic: string, count: number, bytes: number): void {
    if (count === 0) return;
    const labels = { topic };
    if (direction === 'in') {
      this.messagesIn.inc(labels, count);
      this.bytesIn.inc(labels, bytes);
    } else {
      this.messagesOut.inc(labels, count);
      this.bytesOut.inc(labels, bytes);
    }
  }
}
