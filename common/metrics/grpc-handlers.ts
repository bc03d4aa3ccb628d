/**
 * Times and counts every call of a gRPC service's unary handlers by method
 * and result code, without touching the handlers themselves: the wrapper
 * sits between grpc-js and the handler object a main.ts registers.
 */
import type { ServerUnaryCall, ServiceError, sendUnaryData } from '@grpc/grpc-js';
import { Counter, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS_S } from './registry.js';

type Unary = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;

export interface RpcMetrics {
  calls: Counter<'method' | 'code'>;
  duration: Histogram<'method'>;
}

/** `<prefix>rpc_requests_total{method,code}` and `<prefix>rpc_duration_seconds{method}`. */
export function rpcMetrics(registry: Registry, prefix: string): RpcMetrics {
  return {
    calls: new Counter({
      name: `${prefix}rpc_requests_total`,
      help: 'gRPC calls served, by method and gRPC status code',
      labelNames: ['method', 'code'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: `${prefix}rpc_duration_seconds`,
      help: 'gRPC call latency by method (long polls included)',
      labelNames: ['method'] as const,
      buckets: LATENCY_BUCKETS_S,
      registers: [registry],
    }),
  };
}

/**
 * Wraps one handler. `onDone` (optional) sees the request and the answer
 * of a successful call, for per-topic counters.
 */
export function instrumentUnary(
  method: string,
  handler: Unary,
  metrics: RpcMetrics,
  onDone?: (request: unknown, response: unknown) => void,
): Unary {
  return (call, callback) => {
    const start = performance.now();
    handler(call, (err, value, ...rest) => {
      const code = err ? ((err as Partial<ServiceError>).code ?? 2) : 0;
      metrics.calls.inc({ method, code: String(code) });
      metrics.duration.observe({ method }, (performance.now() - start) / 1000);
      if (!err && onDone) {
        try {
          onDone(call.request, value);
        } catch {
          // Metrics must never fail a call.
        }
      }
      (callback as (...a: unknown[]) => void)(err, value, ...rest);
    });
  };
}
