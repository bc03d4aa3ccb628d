/**
 * Gateway entry: REST (hono) and gRPC servers over one set of core services.
 * Stateless: routes live in the route cache, receipt handles carry their own
 * state, so replicas scale out behind any load balancer.
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { ComponentSpec, Running } from '../common/cli.js';
import { parseAddressList } from '../common/cli.js';
import { startGrpcServer } from '../common/grpc.js';
import type { Logger } from '../common/logger.js';
import { BrokerPool } from './core/broker-pool.js';
import { GatewayService } from './core/gateway-service.js';
import { NamesrvClient } from './core/namesrv-client.js';
import { RouteResolver } from './core/route-resolver.js';
import { createApp } from './http/app.js';
import { GATEWAY_SCHEMA, type GatewayOptions } from './options.js';
import { MemoryRouteCache } from './route-cache/memory.js';

/** Time in-flight requests and long polls get to finish on shutdown. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

export async function startGateway(options: GatewayOptions, logger: Logger): Promise<Running> {
  const namesrv = new NamesrvClient(parseAddressList(options.namesrvAddr), options.rpcTimeoutMs);
  const cache = new MemoryRouteCache();
  const routes = new RouteResolver(namesrv, cache, options.routeTtlMs, logger);
  const brokers = new BrokerPool();
  const service = new GatewayService({
    routes,
    brokers,
    namesrv,
    logger,
    secret: options.receiptHandleSecret,
    maxMessageSize: options.maxMessageSize,
    sendRetries: options.sendRetries,
    rpcTimeoutMs: options.rpcTimeoutMs,
  });
  const shutdown = new AbortController();
  const app = createApp({
    service,
    maxRequestBytes: options.maxRequestBytes,
    corsOrigins: options.corsOrigins,
    shutdown: shutdown.signal,
    ready: async () => {
      try {
        const info = await namesrv.clusterInfo();
        return Object.values(info.broker_addr_table).some((b) => b.broker_addrs[0]);
      } catch {
        return false;
      }
    },
  });

  const http = await new Promise<{ server: ReturnType<typeof serve>; port: number }>((resolve, reject) => {
    const server = serve(
      { fetch: app.fetch, port: options.httpPort, hostname: options.bindAddress },
      (info: AddressInfo) => resolve({ server, port: info.port }),
    );
    server.once('error', reject);
  });
  const grpc = await startGrpcServer(options.bindAddress, options.grpcPort, [], () => undefined);

  process.stdout.write(
    `The gateway boot success. http=${options.bindAddress}:${http.port} grpc=${options.bindAddress}:${grpc.port}\n`,
  );

  return {
    close: async () => {
      // Long polls return what they have; new connections are refused.
      shutdown.abort();
      await Promise.all([
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            (http.server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
            resolve();
          }, DEFAULT_SHUTDOWN_GRACE_MS);
          http.server.close(() => {
            clearTimeout(timer);
            resolve();
          });
          (http.server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        }),
        grpc.close(),
      ]);
      brokers.close();
      namesrv.close();
      await cache.close();
      logger.info('gateway stopped');
    },
  };
}

export const gatewayComponent: ComponentSpec<typeof GATEWAY_SCHEMA> = {
  name: 'mqgateway',
  description: 'Sluice gateway: REST (HTTP/JSON) and apache.rocketmq.v2 gRPC in front of the brokers',
  schema: GATEWAY_SCHEMA,
  namesrvKey: 'namesrvAddr',
  examples: `
Examples:
  mqgateway -n localhost:9876
  mqgateway -n "ns1:9876;ns2:9876" httpPort=8080 grpcPort=8081
`,
  start: startGateway,
};
