/**
 * Adapters between grpc-js calls and async handlers of the public protocol.
 * Errors never become gRPC errors here: they become the response's Status
 * (public-status.ts), which is what RocketMQ clients read.
 */
import type { Metadata, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import type { Logger } from '../../common/logger.js';
import { traceHeadersOfMetadata } from '../../common/telemetry/grpc-metadata.js';
import { traceIdsOf } from '../../common/telemetry/tracing.js';
import { type ClientContext, clientContext } from './client-context.js';
import { isServerFault, type PublicStatus, toPublicStatus } from './public-status.js';

function logFault(
  logger: Logger,
  method: string,
  ctx: ClientContext | undefined,
  status: PublicStatus,
  metadata: Metadata | undefined,
): void {
  if (isServerFault(status)) {
    logger.warn(
      {
        method,
        clientId: ctx?.clientId,
        requestId: ctx?.requestId,
        code: status.code,
        err: status.message,
        // The caller's trace, when its metadata named one.
        ...(metadata ? traceIdsOf(traceHeadersOfMetadata(metadata).traceparent) : {}),
      },
      'request failed',
    );
  }
}

/** A unary handler whose thrown errors answer `{ status }`. */
export function unary<Req, Res extends { status?: { code?: unknown; message?: string } | null }>(
  logger: Logger,
  method: string,
  fn: (
    request: Req,
    ctx: ClientContext,
    call: ServerUnaryCall<Req, Res>,
  ) => Promise<NoInfer<Res>> | NoInfer<Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    let ctx: ClientContext | undefined;
    Promise.resolve()
      .then(() => {
        ctx = clientContext(call);
        return fn(call.request, ctx, call);
      })
      .then(
        (res) => callback(null, res),
        (err: unknown) => {
          const status = toPublicStatus(err);
          logFault(logger, method, ctx, status, call.metadata);
          callback(null, { status } as Res);
        },
      );
  };
}

/** True for a stream answer whose oneof `content` is the call's Status. */
function carriesStatus(res: unknown): boolean {
  return typeof res === 'object' && res !== null && (res as { status?: unknown }).status != null;
}

/**
 * A server-streaming handler: `fn` writes its answers; a thrown error is
 * written as a final `{ status }` unless `fn` already wrote a Status (the
 * protocol's streams carry exactly one, first: after OK and some messages a
 * failure can only end the stream). The stream always ends.
 */
export function serverStream<Req, Res>(
  logger: Logger,
  method: string,
  fn: (request: Req, ctx: ClientContext, call: ServerWritableStream<Req, Res>) => Promise<void>,
): (call: ServerWritableStream<Req, Res>) => void {
  return (call) => {
    let ctx: ClientContext | undefined;
    let statusSent = false;
    // Every write goes through here, so a Status written by `fn` is seen
    // whichever code path wrote it.
    const write = call.write.bind(call) as (...args: unknown[]) => boolean;
    call.write = ((...args: unknown[]) => {
      if (carriesStatus(args[0])) statusSent = true;
      return write(...args);
    }) as typeof call.write;
    Promise.resolve()
      .then(() => {
        ctx = clientContext(call);
        return fn(call.request, ctx, call);
      })
      .catch((err: unknown) => {
        const status = toPublicStatus(err);
        if (statusSent) {
          // The client cannot be told any more: the log is the only trace.
          logger.warn(
            { method, clientId: ctx?.clientId, code: status.code, err: status.message },
            'stream failed after its status was sent',
          );
          return;
        }
        logFault(logger, method, ctx, status, call.metadata);
        if (!call.cancelled) call.write({ status } as Res);
      })
      .finally(() => {
        if (!call.cancelled) call.end();
      });
  };
}

/**
 * Runs `fn` with a signal that fires when the client goes away or the gateway
 * shuts down; the shutdown listener is removed when `fn` settles.
 */
export async function withCallSignal<T>(
  call: { on(event: 'cancelled', fn: () => void): unknown; cancelled: boolean },
  shutdown: AbortSignal,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  const abort = () => ac.abort();
  if (call.cancelled || shutdown.aborted) ac.abort();
  call.on('cancelled', abort);
  shutdown.addEventListener('abort', abort, { once: true });
  try {
    return await fn(ac.signal);
  } finally {
    shutdown.removeEventListener('abort', abort);
  }
}
