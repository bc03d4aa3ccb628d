/** What the REST app needs from the rest of the gateway (wired in gateway/main.ts). */

import type { Logger } from '../../common/logger.js';
import type { AdminService } from '../core/admin-service.js';
import type { GatewayService } from '../core/gateway-service.js';
import type { IdempotencyGuard } from '../core/idempotency-guard.js';
import type { GatewayMetrics } from './metrics.js';

export interface Readiness {
  ready: boolean;
  namesrv: boolean;
  broker: boolean;
}

export interface AppDeps {
  service: GatewayService;
  /** Admin and query endpoints; omitted = those routes answer 501. */
  admin?: AdminService;
  /** Idempotency-Key support; omitted = the header is ignored. */
  idempotency?: IdempotencyGuard;
  metrics?: GatewayMetrics;
  /** Access log (debug per request, warn per 5xx); omitted = none. */
  logger?: Logger;
  maxRequestBytes: number;
  maxMessageSize: number;
  corsOrigins: string;
  /** Interval of SSE heartbeat comments, ms. */
  sseHeartbeatMs?: number;
  /** Whether a name server and a broker are reachable. */
  ready: () => Promise<Readiness | boolean>;
  /** Aborted when the gateway shuts down, so long polls and streams return early. */
  shutdown: AbortSignal;
  /**
   * Aborted when shutdown begins, `shutdownDrainMs` before `shutdown`: /readyz
   * answers 503 from then on while requests are still served.
   */
  draining?: AbortSignal;
}
