/**
 * Gateway entry: REST (hono) and gRPC servers over one set of core services.
 * Stateless: routes live in the route cache, receipt handles carry their own
 * state, so replicas scale out behind any load balancer. With Redis
 * (`redisUrl`, or REDIS_URL) replicas share routes and Idempotency-Keys.
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Redis } from 'ioredis';
import type { ComponentSpec, Running } from '../common/cli.js';
import { parseAddressList } from '../common/cli.js';
import { startGrpcServer } from '../common/grpc.js';
import type { Logger } from '../common/logger.js';
import { withTelemetry } from '../common/telemetry/sdk.js';
import { AdminService } from './core/admin-service.js';
import { BrokerPool } from './core/broker-pool.js';
import { GatewayService } from './core/gateway-service.js';
import { IdempotencyGuard } from './core/idempotency-guard.js';
import { LatencyFaultTolerance } from './core/latency-fault-tolerance.js';
import { NamesrvClient } from './core/namesrv-client.js';
import { ReadinessProbe } from './core/readiness.js';
import { RouteResolver } from './core/route-resolver.js';
import { SendBatcher } from './core/send-batcher.js';
import { messagingProto } from './grpc/messaging-proto.js';
import { registerMessagingService } from './grpc/messaging-service.js';
import { createApp } from './http/app.js';
import { GatewayMetrics } from './http/metrics.js';
import type { IdempotencyStore } from './idempotency/index.js';
import { MemoryIdempotencyStore } from './idempotency/memory.js';
import { RedisIdempotencyStore } from './idempotency/redis.js';
import { GATEWAY_SCHEMA, type GatewayOptions } from './options.js';
import type { RouteCache } from './route-cache/index.js';
import { MemoryRouteCache } from './route-cache/memory.js';
import { createRedisClient, RedisRouteCache } from './route-cache/redis.js';

/** The Redis URL in force: the option (also `--redis`), else REDIS_URL; empty = none. */
export function redisUrlOf(options: GatewayOptions, env: NodeJS.ProcessEnv = process.env): string {
  return options.redisUrl || env.REDIS_URL || '';
}

export async function startGateway(options: GatewayOptions, logger: Logger): Promise<Running> {
  const namesrv = new NamesrvClient(parseAddressList(options.namesrvAddr), options.rpcTimeoutMs);
  const redisUrl = redisUrlOf(options);
  let redis: Redis | undefined;
  let cache: RouteCache;
  let idempotencyStore: IdempotencyStore;
  const localKeys = new MemoryIdempotencyStore(
    options.idempotencyMaxKeys,
    Date.now,
    options.idempotencyMaxBytes,
  );
  if (redisUrl) {
    redis = createRedisClient(redisUrl, {
      logger,
      commandTimeoutMs: options.redisCommandTimeoutMs,
    });
    cache = new RedisRouteCache(redis);
    idempotencyStore = new RedisIdempotencyStore(redis, localKeys);
  } else {
    cache = new MemoryRouteCache();
    idempotencyStore = localKeys;
  }
  const routes = new RouteResolver(namesrv, cache, options.routeTtlMs, logger, Date.now, {
    refreshAheadMs: options.routeRefreshAheadMs,
    localTtlMs: redis ? options.routeLocalTtlMs : 0,
  });
  const brokers = new BrokerPool();
  const faults = new LatencyFaultTolerance(options.faultToleranceEnable);
  const idempotency = new IdempotencyGuard(idempotencyStore, options.idempotencyTtlMs);
  // The batcher's RPC is the service's; the service is built right below.
  let service: GatewayService | undefined;
  let metrics: GatewayMetrics | undefined;
  const batcher = new SendBatcher((addr, entries) => service!.sendRpc(addr, entries), {
    lingerMs: options.sendLingerMs,
    maxBatch: options.sendMaxBatch,
    maxInFlight: options.sendMaxInFlight,
    maxQueued: options.sendMaxQueued,
    onBatch: (_addr, n) => metrics?.batchSize.observe(n),
  });
  service = new GatewayService({
    routes,
    brokers,
    namesrv,
    logger,
    secret: options.receiptHandleSecret,
    maxMessageSize: options.maxMessageSize,
    sendRetries: options.sendRetries,
    rpcTimeoutMs: options.rpcTimeoutMs,
    batcher,
    faults,
  });
  const svc = service;
  metrics = new GatewayMetrics({
    longPollsWaiting: () => svc.longPollsWaiting,
    sendQueued: () => batcher.queued,
    routeCache: () => routes.stats,
    idempotentReplays: () => idempotency.stats.replays,
    avoidedBrokers: () => faults.avoided().length,
  });
  const gatewayMetrics = metrics;
  redis?.on('error', () => gatewayMetrics.redisErrors.inc());
  const admin = new AdminService({ namesrv, routes, brokers, rpcTimeoutMs: options.rpcTimeoutMs });
  const readiness = new ReadinessProbe(namesrv, brokers);
  const draining = new AbortController();
  const shutdown = new AbortController();
  const app = createApp({
    service,
    admin,
    idempotency,
    metrics,
    logger: logger.child({ component: 'http' }),
    maxRequestBytes: options.maxRequestBytes,
    maxMessageSize: options.maxMessageSize,
    corsOrigins: options.corsOrigins,
    sseHeartbeatMs: options.sseHeartbeatMs,
    shutdown: shutdown.signal,
    draining: draining.signal,
    ready: () => readiness.check(),
  });

  const http = await new Promise<{ server: ReturnType<typeof serve>; port: number }>(
    (resolve, reject) => {
      const server = serve(
        { fetch: app.fetch, port: options.httpPort, hostname: options.bindAddress },
        (info: AddressInfo) => resolve({ server, port: info.port }),
      );
      server.once('error', reject);
    },
  );
  const grpc = await startGrpcServer(
    options.bindAddress,
    options.grpcPort,
    [messagingProto().definition],
    (server) =>
      registerMessagingService(server, {
        service,
        routes,
        brokers,
        namesrv,
        logger,
        options,
        shutdown: shutdown.signal,
        metrics: gatewayMetrics,
      }),
    // grpc.health.v1 follows the same readiness as REST /readyz.
    { ready: async () => (await readiness.check()).ready },
  );

  process.stdout.write(
    `The gateway boot success. http=${options.bindAddress}:${http.port} grpc=${options.bindAddress}:${grpc.port}\n`,
  );
  logger.info({ routeCache: redis ? 'redis' : 'memory' }, 'gateway started');

  return {
    close: async () => {
      // 1. Drain: /readyz answers 503 while everything is still served, so load
      //    balancers stop sending here before connections are refused.
      draining.abort();
      if (options.shutdownDrainMs > 0) {
        logger.info({ ms: options.shutdownDrainMs }, 'draining: readiness off');
        await new Promise((r) => setTimeout(r, options.shutdownDrainMs));
      }
      // 2. Long polls and streams answer with what they have (their broker pops
      //    are woken, not cancelled); new connections are refused; requests in
      //    flight finish within the grace period.
      shutdown.abort();
      const server = http.server as unknown as {
        close(cb: () => void): void;
        closeIdleConnections?: () => void;
        closeAllConnections?: () => void;
      };
      await Promise.all([
        new Promise<void>((resolve) => {
          // Keep-alive connections that finish their last request close as soon as they idle.
          const sweep = setInterval(() => server.closeIdleConnections?.(), 50);
          const timer = setTimeout(() => {
            clearInterval(sweep);
            server.closeAllConnections?.();
            resolve();
          }, options.shutdownGraceMs);
          server.close(() => {
            clearTimeout(timer);
            clearInterval(sweep);
            resolve();
          });
          server.closeIdleConnections?.();
        }),
        grpc.close(),
      ]);
      // 3. Pops still out come back; messages no receive took go back to their brokers.
      await svc.close(options.shutdownGraceMs);
      brokers.close();
      namesrv.close();
      await cache.close();
      await idempotencyStore.close();
      redis?.disconnect();
      logger.info('gateway stopped');
    },
  };
}

export const gatewayComponent: ComponentSpec<typeof GATEWAY_SCHEMA> = {
  name: 'mqgateway',
  description:
    'Sluice gateway: REST (HTTP/JSON) and apache.rocketmq.v2 gRPC in front of the brokers',
  schema: GATEWAY_SCHEMA,
  namesrvKey: 'namesrvAddr',
  flags: [
    {
      flags: '--redis <url>',
      description: 'share routes and Idempotency-Keys through Redis (env REDIS_URL)',
      key: 'redisUrl',
    },
  ],
  examples: `
Examples:
  mqgateway -n localhost:9876
  mqgateway -n "ns1:9876;ns2:9876" httpPort=8080 grpcPort=8081
  mqgateway -n localhost:9876 redisUrl=redis://127.0.0.1:6379     (or REDIS_URL=redis://…)
`,
  start: (options, logger) =>
    withTelemetry('sluice-gateway', logger, () => startGateway(options, logger)),
};
