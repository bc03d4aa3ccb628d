/**
 * The one mapping between SluiceError and gRPC status, both directions. The
 * numeric code and reason ride in trailing metadata so an internal client gets
 * back exactly the error the server raised.
 */
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { Code, type Reason, SluiceError, toSluiceError } from './errors.js';

const CODE_KEY = 'x-sluice-code';
const REASON_KEY = 'x-sluice-reason';
const RETRIABLE_KEY = 'x-sluice-retriable';

/** gRPC status for a Sluice code (by its HTTP-like hundreds, then specifics). */
export function grpcStatusOf(code: number, reason?: Reason): status {
  if (reason === 'RECEIPT_HANDLE_EXPIRED') return status.FAILED_PRECONDITION;
  if (reason === 'UNAVAILABLE' || reason === 'NO_WRITABLE_BROKER') return status.UNAVAILABLE;
  if (reason === 'BROKER_BUSY' || reason === 'DISK_FULL') return status.RESOURCE_EXHAUSTED;
  switch (code) {
    case Code.OK:
      return status.OK;
    case Code.UNAUTHORIZED:
      return status.UNAUTHENTICATED;
    case Code.FORBIDDEN:
      return status.PERMISSION_DENIED;
    case Code.REQUEST_TIMEOUT:
    case Code.PROXY_TIMEOUT:
    case Code.MASTER_PERSISTENCE_TIMEOUT:
    case Code.SLAVE_PERSISTENCE_TIMEOUT:
      return status.DEADLINE_EXCEEDED;
    case Code.TOO_MANY_REQUESTS:
      return status.RESOURCE_EXHAUSTED;
    case Code.NOT_IMPLEMENTED:
    case Code.UNSUPPORTED:
    case Code.VERSION_UNSUPPORTED:
      return status.UNIMPLEMENTED;
    case Code.HA_NOT_AVAILABLE:
      return status.UNAVAILABLE;
    case Code.PRECONDITION_FAILED:
      return status.FAILED_PRECONDITION;
    default:
      break;
  }
  if (code >= 40400 && code < 40500) return status.NOT_FOUND;
  if (code >= 40000 && code < 50000) return status.INVALID_ARGUMENT;
  return status.INTERNAL;
}

/** Turns any thrown value into the ServiceError a grpc-js handler passes to its callback. */
export function toGrpcError(err: unknown): Partial<ServiceError> {
  const e = toSluiceError(err);
  const metadata = new Metadata();
  metadata.set(CODE_KEY, String(e.code));
  if (e.reason) metadata.set(REASON_KEY, e.reason);
  if (e.retriable) metadata.set(RETRIABLE_KEY, '1');
  return { code: grpcStatusOf(e.code, e.reason), details: e.message, metadata };
}

/** Rebuilds a SluiceError from a grpc-js client error (ours or a plain transport failure). */
export function fromGrpcError(err: unknown, target = 'peer'): SluiceError {
  if (err instanceof SluiceError) return err;
  const se = err as Partial<ServiceError>;
  const codeValue = se.metadata?.get(CODE_KEY)[0];
  if (codeValue !== undefined) {
    const reason = se.metadata?.get(REASON_KEY)[0] as Reason | undefined;
    return new SluiceError(Number(codeValue), se.details ?? 'error', {
      reason,
      retriable: se.metadata?.get(RETRIABLE_KEY)[0] === '1',
    });
  }
  switch (se.code) {
    case status.UNAVAILABLE:
    case status.CANCELLED:
      return new SluiceError(Code.HA_NOT_AVAILABLE, `${target} unavailable: ${se.details ?? ''}`, {
        retriable: true,
        reason: 'UNAVAILABLE',
        cause: err,
      });
    case status.DEADLINE_EXCEEDED:
      return new SluiceError(Code.PROXY_TIMEOUT, `${target} did not answer in time`, {
        retriable: true,
        cause: err,
      });
    case status.UNIMPLEMENTED:
      return new SluiceError(Code.NOT_IMPLEMENTED, se.details ?? 'not implemented', { cause: err });
    default:
      return new SluiceError(Code.INTERNAL_ERROR, se.details ?? String(err), { cause: err });
  }
}
