/**
 * The one mapping from SluiceError to HTTP: status code and an RFC 9457
 * `application/problem+json` body carrying our numeric code.
 */
import { Code, codeName, type SluiceError } from './errors.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: number;
  [extra: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function httpStatusOf(err: SluiceError): number {
  if (err.reason === 'RECEIPT_HANDLE_EXPIRED') return 409;
  if (err.reason === 'NO_WRITABLE_BROKER' || err.reason === 'UNAVAILABLE') return 503;
  if (err.reason === 'BROKER_BUSY' || err.reason === 'DISK_FULL') return 429;
  switch (err.code) {
    case Code.OK:
      return 200;
    case Code.UNAUTHORIZED:
      return 401;
    case Code.FORBIDDEN:
      return 403;
    case Code.REQUEST_TIMEOUT:
      return 408;
    case Code.PAYLOAD_TOO_LARGE:
    case Code.MESSAGE_BODY_TOO_LARGE:
      return 413;
    case Code.PRECONDITION_FAILED:
      return 412;
    case Code.TOO_MANY_REQUESTS:
      return 429;
    case Code.REQUEST_HEADER_FIELDS_TOO_LARGE:
    case Code.MESSAGE_PROPERTIES_TOO_LARGE:
      return 431;
    case Code.NOT_IMPLEMENTED:
    case Code.UNSUPPORTED:
      return 501;
    case Code.HA_NOT_AVAILABLE:
      return 503;
    case Code.PROXY_TIMEOUT:
    case Code.MASTER_PERSISTENCE_TIMEOUT:
    case Code.SLAVE_PERSISTENCE_TIMEOUT:
      return 504;
    default:
      break;
  }
  if (err.code >= 40400 && err.code < 40500) return 404;
  if (err.code >= 40000 && err.code < 50000) return 400;
  return 500;
}

/** Seconds a client should wait before retrying, for 429 and 503 answers without a hint. */
export const DEFAULT_RETRY_AFTER_S = 1;

/**
 * The Retry-After value (whole seconds, at least 1) for an error: its
 * `retryAfterMs` detail when the error carries one, else the default.
 */
export function retryAfterSecondsOf(err: SluiceError): number {
  const hint = err.details?.retryAfterMs;
  if (typeof hint !== 'number' || !Number.isFinite(hint) || hint <= 0) return DEFAULT_RETRY_AFTER_S;
  return Math.max(1, Math.ceil(hint / 1000));
}

export function toProblem(err: SluiceError, instance?: string): Problem {
  const status = httpStatusOf(err);
  const name = codeName(err.code);
  return {
    type: `https://sluice.dev/errors/${name.toLowerCase().replaceAll('_', '-')}`,
    title: name,
    status,
    detail: err.message,
    code: err.code,
    ...(err.reason ? { reason: err.reason } : {}),
    ...(instance ? { instance } : {}),
    ...(err.details ?? {}),
  };
}
