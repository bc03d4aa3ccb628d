/**
 * Prometheus metrics of the gateway (prom-client, a registry per gateway so
 * tests can run several in one process): request counts and latency per
 * route, messages and bytes in (sent) and out (delivered) per topic, send
 * and receive latency, batch sizes, Redis errors, and gauges read from the
 * core services at scrape time (long polls open, route-cache hit ratio …).
 */
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { LATENCY_BUCKETS_S } from '../../common/metrics/registry.js';

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
    gauge(
      'sluice_gateway_route_cache_hits',
      'route lookups answered by the cache',
      () => sources.routeCache().hits,
    );
    gauge(
      'sluice_gateway_route_cache_misses',
      'route lookups that asked the name servers',
      () => sources.routeCache().misses,
    );
    gauge('sluice_gateway_route_cache_hit_ratio', 'route cache hits / lookups since start', () => {
      const { hits, misses } = sources.routeCache();
      return hits + misses === 0 ? 0 : hits / (hits + misses);
    });
    gauge(
      'sluice_gateway_route_cache_errors',
      'route cache (Redis) failures',
      () => sources.routeCache().cacheErrors,
    );
    gauge(
      'sluice_gateway_idempotent_replays',
      'sends answered from an Idempotency-Key',
      sources.idempotentReplays,
    );
    gauge(
      'sluice_gateway_avoided_brokers',
      'brokers avoided after being slow or failing',
      sources.avoidedBrokers,
    );
  }

  /** Counts and times every request by its route pattern. */
  middleware(): MiddlewareHandler {
    return async (c, next) => {
      const start = performance.now();
      await next();
      const route = routePath(c, -1);
      this.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
      this.duration.observe({ route }, (performance.now() - start) / 1000);
    };
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
