/** What every MessagingService handler works with; built once in messaging-service.ts. */
import type { Logger } from '../../common/logger.js';
import type { AckCoalescer } from '../core/ack-coalescer.js';
import type { ClusterView } from '../core/cluster-view.js';
import type { GatewayService } from '../core/gateway-service.js';
import type { OffsetQuery } from '../core/offset-query.js';
import type { RouteResolver } from '../core/route-resolver.js';
import type { TransactionService } from '../core/transaction-service.js';
import type { GatewayMetrics } from '../http/metrics.js';
import type { ClientRegistry } from './client-registry.js';
import type { MessagingServiceOptions } from './messaging-options.js';

export interface MessagingContext {
  service: GatewayService;
  /** Acks through here: concurrent acks of one group share broker RPCs. */
  acks: AckCoalescer;
  routes: RouteResolver;
  cluster: ClusterView;
  transactions: TransactionService;
  offsetQuery: OffsetQuery;
  registry: ClientRegistry;
  logger: Logger;
  options: Readonly<MessagingServiceOptions>;
  /** Port clients dial when an :authority names none. */
  defaultPort: number;
  /** Aborted when the gateway shuts down: long polls answer at once. */
  shutdown: AbortSignal;
  /** The gateway's metrics (one registry for both transports); omitted in some tests. */
  metrics?: GatewayMetrics;
}
