/**
 * Counts and times the apache.rocketmq.v2 calls by method and by the code
 * of the Status they answer (the public protocol travels with gRPC status
 * OK, so the transport code would say nothing): unary calls when they
 * answer, server streams (ReceiveMessage, the only one) when they end with
 * the code of the Status they wrote. The bidirectional Telemetry session is
 * not a request and is not counted. Wraps the handler object; the handlers
 * stay unaware of it.
 */
import type {
  ServerUnaryCall,
  ServerWritableStream,
  ServiceDefinition,
  sendUnaryData,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { GatewayMetrics } from '../http/metrics.js';

type Unary = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;
type ServerStream = (call: ServerWritableStream<unknown, unknown>) => void;

/** `res.status.code` of an answer, or '' when it has none. */
function statusCodeOf(res: unknown): string {
  const code = (res as { status?: { code?: unknown } | null } | null | undefined)?.status?.code;
  return code === undefined || code === null ? '' : String(code);
}

export function instrumentMessagingHandlers<T extends object>(
  definition: ServiceDefinition,
  handlers: T,
  metrics: GatewayMetrics,
): T {
  const out: UntypedServiceImplementation = { ...(handlers as UntypedServiceImplementation) };
  const observe = (method: string, code: string, start: number) => {
    metrics.grpcRequests.inc({ method, code });
    metrics.grpcDuration.observe({ method }, (performance.now() - start) / 1000);
  };
  for (const [method, def] of Object.entries(definition)) {
    const h = out[method];
    if (typeof h !== 'function' || def.requestStream) continue;
    if (!def.responseStream) {
      const unary = h as Unary;
      out[method] = ((call, callback) => {
        const start = performance.now();
        unary(call, (err, value, ...rest) => {
          observe(method, err ? 'grpc-error' : statusCodeOf(value), start);
          (callback as (...a: unknown[]) => void)(err, value, ...rest);
        });
      }) as Unary;
      continue;
    }
    const stream = h as ServerStream;
    out[method] = ((call) => {
      const start = performance.now();
      let code = '';
      const write = call.write.bind(call) as (...args: unknown[]) => boolean;
      call.write = ((...args: unknown[]) => {
        if (code === '') code = statusCodeOf(args[0]);
        return write(...args);
      }) as typeof call.write;
      let counted = false;
      const done = () => {
        if (counted) return;
        counted = true;
        observe(method, code || 'cancelled', start);
      };
      call.once('finish', done);
      call.once('cancelled', done);
      stream(call);
    }) as ServerStream;
  }
  return out as T;
}
