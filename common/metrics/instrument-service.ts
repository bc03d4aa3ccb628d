/**
 * Wraps every unary handler of a gRPC service implementation with
 * instrumentUnary (calls and latency by method); streaming handlers pass
 * through untouched.
 */
import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { instrumentUnary, type RpcMetrics } from './grpc-handlers.js';

type Unary = Parameters<typeof instrumentUnary>[1];

/**
 * @example server.addService(def, instrumentService(def, handlers, rpcMetrics(registry, 'sluice_namesrv_')));
 */
export function instrumentService<T extends object>(
  definition: ServiceDefinition,
  handlers: T,
  metrics: RpcMetrics,
  onDone?: (method: string, request: unknown, response: unknown) => void,
): T {
  const out: UntypedServiceImplementation = { ...(handlers as UntypedServiceImplementation) };
  for (const [method, def] of Object.entries(definition)) {
    const h = out[method];
    if (typeof h !== 'function' || def.requestStream || def.responseStream) continue;
    out[method] = instrumentUnary(
      method,
      h as Unary,
      metrics,
      onDone ? (req, res) => onDone(method, req, res) : undefined,
    );
  }
  return out as T;
}
