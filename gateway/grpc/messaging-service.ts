/**
 * apache.rocketmq.v2.MessagingService on the gateway's gRPC port: the public
 * RocketMQ 5 protocol over the same transport-free core as REST
 * (gateway/core), so a message sent one way is received the other and a
 * receipt handle from one works on the other.
 *
 * Method → core:
 *   QueryRoute, QueryAssignment → RouteResolver (brokers' endpoints = this gateway)
 *   SendMessage                 → GatewayService.send (FIFO groups pinned to one broker)
 *   ReceiveMessage              → GatewayService.receive (pop, long polling)
 *   AckMessage                  → AckCoalescer → GatewayService.ack (concurrent acks share RPCs)
 *   ChangeInvisibleDuration / ForwardMessageToDeadLetterQueue
 *                               → GatewayService.changeInvisible / deadLetter
 *   EndTransaction              → TransactionService.end → GatewayService.endTransaction
 *   Telemetry                   → client settings; OrphanDispatcher sends check-backs
 *   PullMessage, UpdateOffset, GetOffset → GatewayService.pull / commitOffsets / offsets
 *   QueryOffset                 → OffsetQuery
 *
 * @example
 *   startGrpcServer(host, port, [messagingProto().definition], (server) =>
 *     registerMessagingService(server, { service, routes, brokers, namesrv, logger, options, shutdown }));
 */
import type { Server } from '@grpc/grpc-js';
import type { MessagingServiceHandlers } from '../../common/generated/apache/rocketmq/v2/MessagingService.js';
import type { Logger } from '../../common/logger.js';
import { AckCoalescer } from '../core/ack-coalescer.js';
import type { BrokerPool } from '../core/broker-pool.js';
import { ClusterView } from '../core/cluster-view.js';
import type { GatewayService } from '../core/gateway-service.js';
import type { NamesrvClient } from '../core/namesrv-client.js';
import { OffsetQuery } from '../core/offset-query.js';
import type { RouteResolver } from '../core/route-resolver.js';
import { TransactionService } from '../core/transaction-service.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { GatewayOptions } from '../options.js';
import { ClientRegistry } from './client-registry.js';
import { consumeHandlers } from './consume-handlers.js';
import { instrumentMessagingHandlers } from './handler-metrics.js';
import type { MessagingContext } from './messaging-context.js';
import { type MessagingServiceOptions, parseMessagingServiceOptions } from './messaging-options.js';
import { messagingProto } from './messaging-proto.js';
import { OrphanDispatcher } from './orphan-dispatcher.js';
import { publishHandlers } from './publish-handlers.js';
import { pullHandlers } from './pull-handlers.js';
import { sessionHandlers } from './session-handlers.js';
import { telemetryHandler } from './telemetry.js';

/** The port clients dial when neither the access point nor the :authority names one. */
const FALLBACK_GRPC_PORT = 8081;

export interface MessagingServiceDeps {
  service: GatewayService;
  routes: RouteResolver;
  brokers: BrokerPool;
  namesrv: NamesrvClient;
  logger: Logger;
  options: Pick<GatewayOptions, 'maxMessageSize' | 'maxRequestBytes' | 'rpcTimeoutMs' | 'grpcPort'>;
  /** Aborted when the gateway shuts down: streams end, long polls answer, the poller stops. */
  shutdown: AbortSignal;
  /** Counts gRPC traffic in the gateway's metrics (shared with REST). */
  metrics?: GatewayMetrics;
  overrides?: Partial<MessagingServiceOptions>;
}

export interface MessagingServiceHandle {
  handlers: MessagingServiceHandlers;
  registry: ClientRegistry;
  dispatcher: OrphanDispatcher;
}

export function createMessagingService(deps: MessagingServiceDeps): MessagingServiceHandle {
  const options = parseMessagingServiceOptions(deps.options, deps.overrides);
  const logger = deps.logger.child({ component: 'grpc' });
  const cluster = new ClusterView({
    namesrv: deps.namesrv,
    brokers: deps.brokers,
    logger,
    rpcTimeoutMs: options.rpcTimeoutMs,
  });
  const transactions = new TransactionService({ service: deps.service });
  const registry = new ClientRegistry();
  const ctx: MessagingContext = {
    service: deps.service,
    acks: new AckCoalescer((topic, group, handles) => deps.service.ack(topic, group, handles)),
    routes: deps.routes,
    cluster,
    transactions,
    offsetQuery: new OffsetQuery({
      routes: deps.routes,
      brokers: deps.brokers,
      rpcTimeoutMs: options.rpcTimeoutMs,
    }),
    registry,
    logger,
    options,
    defaultPort: deps.options.grpcPort || FALLBACK_GRPC_PORT,
    shutdown: deps.shutdown,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
  };
  const dispatcher = new OrphanDispatcher({
    registry,
    transactions,
    logger,
    intervalMs: options.orphanPollIntervalMs,
    batch: options.orphanBatch,
  });
  const served: MessagingServiceHandlers = {
    ...sessionHandlers(ctx),
    ...publishHandlers(ctx),
    ...consumeHandlers(ctx),
    ...pullHandlers(ctx),
    Telemetry: telemetryHandler({ registry, cluster, options, logger }),
  };
  const handlers = deps.metrics
    ? instrumentMessagingHandlers(
        messagingProto().grpc.apache.rocketmq.v2.MessagingService.service,
        served,
        deps.metrics,
      )
    : served;
  dispatcher.start();
  const stop = () => {
    void dispatcher.stop();
    registry.closeAll();
  };
  if (deps.shutdown.aborted) stop();
  else deps.shutdown.addEventListener('abort', stop, { once: true });
  return { handlers, registry, dispatcher };
}

/** Adds MessagingService to a server (reflection comes from passing messagingProto().definition to startGrpcServer). */
export function registerMessagingService(
  server: Server,
  deps: MessagingServiceDeps,
): MessagingServiceHandle {
  const handle = createMessagingService(deps);
  server.addService(
    messagingProto().grpc.apache.rocketmq.v2.MessagingService.service,
    handle.handlers,
  );
  return handle;
}
