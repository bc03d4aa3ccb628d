/**
 * Prometheus metrics of the gateway (prom-client, a registry per gateway so
 * tests can run several in one process). Kept small: request counts and
 * latency per route, messages sent, batch sizes, and gauges read from the
 * core services at scrape time.
 */
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

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
}
