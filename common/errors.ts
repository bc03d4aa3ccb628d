/**
 * The one error type of Sluice. Codes reuse apache.rocketmq.v2.Code numbers so
 * that the public gRPC protocol, REST problem+json bodies and internal RPCs
 * agree. Callers tell errors apart by `code` (and `reason` where one code
 * covers several situations), never by message text.
 *
 * @example
 *   throw errors.topicNotFound('orders');
 *   if (err instanceof SluiceError && err.code === Code.TOPIC_NOT_FOUND) …
 */
export const Code = {
  OK: 20000,
  MULTIPLE_RESULTS: 30000,
  BAD_REQUEST: 40000,
  ILLEGAL_ACCESS_POINT: 40001,
  ILLEGAL_TOPIC: 40002,
  ILLEGAL_CONSUMER_GROUP: 40003,
  ILLEGAL_MESSAGE_TAG: 40004,
  ILLEGAL_MESSAGE_KEY: 40005,
  ILLEGAL_MESSAGE_GROUP: 40006,
  ILLEGAL_MESSAGE_PROPERTY_KEY: 40007,
  INVALID_TRANSACTION_ID: 40008,
  ILLEGAL_MESSAGE_ID: 40009,
  ILLEGAL_FILTER_EXPRESSION: 40010,
  ILLEGAL_INVISIBLE_TIME: 40011,
  ILLEGAL_DELIVERY_TIME: 40012,
  INVALID_RECEIPT_HANDLE: 40013,
  MESSAGE_PROPERTY_CONFLICT_WITH_TYPE: 40014,
  UNRECOGNIZED_CLIENT_TYPE: 40015,
  MESSAGE_CORRUPTED: 40016,
  CLIENT_ID_REQUIRED: 40017,
  ILLEGAL_POLLING_TIME: 40018,
  ILLEGAL_OFFSET: 40019,
  ILLEGAL_LITE_TOPIC: 40020,
  UNAUTHORIZED: 40100,
  PAYMENT_REQUIRED: 40200,
  FORBIDDEN: 40300,
  NOT_FOUND: 40400,
  MESSAGE_NOT_FOUND: 40401,
  TOPIC_NOT_FOUND: 40402,
  CONSUMER_GROUP_NOT_FOUND: 40403,
  OFFSET_NOT_FOUND: 40404,
  REQUEST_TIMEOUT: 40800,
  PAYLOAD_TOO_LARGE: 41300,
  MESSAGE_BODY_TOO_LARGE: 41301,
  MESSAGE_BODY_EMPTY: 41302,
  PRECONDITION_FAILED: 42800,
  TOO_MANY_REQUESTS: 42900,
  LITE_TOPIC_QUOTA_EXCEEDED: 42901,
  LITE_SUBSCRIPTION_QUOTA_EXCEEDED: 42902,
  REQUEST_HEADER_FIELDS_TOO_LARGE: 43100,
  MESSAGE_PROPERTIES_TOO_LARGE: 43101,
  INTERNAL_ERROR: 50000,
  INTERNAL_SERVER_ERROR: 50001,
  HA_NOT_AVAILABLE: 50002,
  NOT_IMPLEMENTED: 50100,
  PROXY_TIMEOUT: 50400,
  MASTER_PERSISTENCE_TIMEOUT: 50401,
  SLAVE_PERSISTENCE_TIMEOUT: 50402,
  UNSUPPORTED: 50500,
  VERSION_UNSUPPORTED: 50501,
  VERIFY_FIFO_MESSAGE_UNSUPPORTED: 50502,
  FAILED_TO_CONSUME_MESSAGE: 60000,
} as const;

export type CodeName = keyof typeof Code;
export type CodeValue = (typeof Code)[CodeName];

const NAMES = new Map<number, CodeName>(
  Object.entries(Code).map(([name, value]) => [value, name as CodeName]),
);

/** The enum name of a numeric code, or `UNKNOWN_<n>`. */
export function codeName(code: number): string {
  return NAMES.get(code) ?? `UNKNOWN_${code}`;
}

/**
 * Finer distinctions inside one code, for transports that need them (a stale
 * receipt handle is 409 over HTTP, a forged one 400; both are 40013).
 */
export type Reason =
  | 'RECEIPT_HANDLE_EXPIRED'
  | 'NO_WRITABLE_BROKER'
  | 'BROKER_BUSY'
  | 'DISK_FULL'
  | 'NOT_MASTER'
  | 'UNAVAILABLE'
  | 'CONFIG'
  | 'REPLICA_MISMATCH'
  | 'STORE_NOT_WRITABLE';

export interface SluiceErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  reason?: Reason;
  /** Extra machine-readable facts (field name, file, line …) for problem+json. */
  details?: Record<string, unknown>;
}

export class SluiceError extends Error {
  override readonly name = 'SluiceError';
  readonly code: number;
  readonly retriable: boolean;
  readonly reason: Reason | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: number, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.reason = options.reason;
    this.details = options.details;
  }

  get codeName(): string {
    return codeName(this.code);
  }
}

export function isSluiceError(err: unknown, code?: number): err is SluiceError {
  return err instanceof SluiceError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a SluiceError, keeping SluiceErrors as they are. */
export function toSluiceError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SluiceError(Code.INTERNAL_ERROR, message, { cause: err });
}

/** Codes a client may retry (on another broker, or later). */
export const RETRIABLE_CODES: ReadonlySet<number> = new Set([
  Code.HA_NOT_AVAILABLE,
  Code.MASTER_PERSISTENCE_TIMEOUT,
  Code.SLAVE_PERSISTENCE_TIMEOUT,
  Code.TOO_MANY_REQUESTS,
  Code.PROXY_TIMEOUT,
]);

/** Per-entry status of a batch answer. */
export function statusOf(err: unknown): { code: number; message: string; reason: string } {
  const e = toSluiceError(err);
  return { code: e.code, message: e.message, reason: e.reason ?? '' };
}

/** Named factories: the only way errors are created in Sluice code. */
export const errors = {
  badRequest: (message: string, details?: Record<string, unknown>) =>
    new SluiceError(Code.BAD_REQUEST, message, { details }),
  badConfig: (file: string, line: number, key: string, value: string, expected: string) =>
    new SluiceError(
      Code.BAD_REQUEST,
      `${file}:${line}: ${key}=${value} is not valid; expected ${expected}`,
      { reason: 'CONFIG', details: { file, line, key, value, expected } },
    ),
  illegalTopic: (topic: string, why: string) =>
    new SluiceError(Code.ILLEGAL_TOPIC, `illegal topic name '${topic}': ${why}`, {
      details: { topic },
    }),
  illegalGroup: (group: string, why: string) =>
    new SluiceError(Code.ILLEGAL_CONSUMER_GROUP, `illegal consumer group '${group}': ${why}`, {
      details: { group },
    }),
  illegalTag: (tag: string, why: string) =>
    new SluiceError(Code.ILLEGAL_MESSAGE_TAG, `illegal tag '${tag}': ${why}`),
  illegalPropertyKey: (key: string, why = 'is reserved') =>
    new SluiceError(Code.ILLEGAL_MESSAGE_PROPERTY_KEY, `property '${key}' ${why}`),
  illegalMessageKey: (key: string, why: string) =>
    new SluiceError(Code.ILLEGAL_MESSAGE_KEY, `illegal message key '${key}': ${why}`),
  illegalMessageGroup: (why: string) =>
    new SluiceError(Code.ILLEGAL_MESSAGE_GROUP, `illegal message group: ${why}`),
  propertiesTooLarge: (size: number, max: number) =>
    new SluiceError(
      Code.MESSAGE_PROPERTIES_TOO_LARGE,
      `message properties are ${size} bytes; the limit is ${max}`,
    ),
  conflictWithType: (why: string) => new SluiceError(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE, why),
  clientIdRequired: () =>
    new SluiceError(Code.CLIENT_ID_REQUIRED, 'the x-mq-client-id header is required on this call'),
  unrecognizedClientType: (type: string) =>
    new SluiceError(Code.UNRECOGNIZED_CLIENT_TYPE, `client type '${type}' is not served`),
  bodyDigestMismatch: (type: string) =>
    new SluiceError(Code.MESSAGE_CORRUPTED, `the body does not match its ${type} digest`),
  unsupported: (what: string) =>
    new SluiceError(Code.UNSUPPORTED, `${what} is not supported by Sluice`),
  offsetNotFound: (what: string) => new SluiceError(Code.OFFSET_NOT_FOUND, what),
  illegalFilter: (expression: string, why: string) =>
    new SluiceError(Code.ILLEGAL_FILTER_EXPRESSION, `illegal filter '${expression}': ${why}`),
  illegalInvisibleTime: (ms: number, why: string) =>
    new SluiceError(Code.ILLEGAL_INVISIBLE_TIME, `illegal invisible time ${ms} ms: ${why}`),
  illegalDeliveryTime: (why: string) => new SluiceError(Code.ILLEGAL_DELIVERY_TIME, why),
  illegalOffset: (why: string) => new SluiceError(Code.ILLEGAL_OFFSET, why),
  illegalMessageId: (id: string) =>
    new SluiceError(Code.ILLEGAL_MESSAGE_ID, `illegal message id '${id}'`),
  invalidReceiptHandle: (why: string) =>
    new SluiceError(Code.INVALID_RECEIPT_HANDLE, `invalid receipt handle: ${why}`),
  receiptHandleExpired: () =>
    new SluiceError(
      Code.INVALID_RECEIPT_HANDLE,
      'receipt handle is stale: the message was acked, redelivered or its invisible time ran out',
      { reason: 'RECEIPT_HANDLE_EXPIRED' },
    ),
  invalidTransactionId: (id: string) =>
    new SluiceError(Code.INVALID_TRANSACTION_ID, `unknown or finished transaction '${id}'`),
  messageCorrupted: (why: string) => new SluiceError(Code.MESSAGE_CORRUPTED, why),
  topicNotFound: (topic: string) =>
    new SluiceError(Code.TOPIC_NOT_FOUND, `topic '${topic}' does not exist`, {
      details: { topic },
    }),
  groupNotFound: (group: string) =>
    new SluiceError(Code.CONSUMER_GROUP_NOT_FOUND, `consumer group '${group}' does not exist`, {
      details: { group },
    }),
  messageNotFound: (what: string) => new SluiceError(Code.MESSAGE_NOT_FOUND, what),
  notFound: (what: string) => new SluiceError(Code.NOT_FOUND, what),
  bodyTooLarge: (size: number, max: number) =>
    new SluiceError(
      Code.MESSAGE_BODY_TOO_LARGE,
      `message body is ${size} bytes; maxMessageSize is ${max}`,
      { details: { size, max } },
    ),
  bodyEmpty: () => new SluiceError(Code.MESSAGE_BODY_EMPTY, 'message body is empty'),
  payloadTooLarge: (size: number, max: number) =>
    new SluiceError(Code.PAYLOAD_TOO_LARGE, `request is ${size} bytes; the limit is ${max}`),
  forbidden: (why: string) => new SluiceError(Code.FORBIDDEN, why),
  notMaster: (broker: string) =>
    new SluiceError(Code.FORBIDDEN, `broker ${broker} is a slave and is read-only`, {
      reason: 'NOT_MASTER',
    }),
  noPermission: (what: string) => new SluiceError(Code.FORBIDDEN, what),
  /** Push-back; `retryAfterMs` is a hint of when trying again makes sense (HTTP Retry-After). */
  tooManyRequests: (why: string, retryAfterMs?: number) =>
    new SluiceError(Code.TOO_MANY_REQUESTS, why, {
      retriable: true,
      reason: 'BROKER_BUSY',
      ...(retryAfterMs === undefined ? {} : { details: { retryAfterMs } }),
    }),
  diskFull: (ratio: number, limit: number) =>
    new SluiceError(
      Code.TOO_MANY_REQUESTS,
      `disk is ${(ratio * 100).toFixed(1)}% full; writes are refused above ${(limit * 100).toFixed(0)}%`,
      { retriable: true, reason: 'DISK_FULL' },
    ),
  flushDiskTimeout: (ms: number) =>
    new SluiceError(
      Code.MASTER_PERSISTENCE_TIMEOUT,
      `FLUSH_DISK_TIMEOUT: fdatasync did not complete in ${ms} ms`,
      { retriable: true },
    ),
  /**
   * A slave whose commitlog cannot follow this master (segment size differs,
   * it is ahead, or its bytes diverged): retrying does not help, an operator
   * must act (deploy/conf/README.md).
   */
  replicaMismatch: (why: string) =>
    new SluiceError(Code.PRECONDITION_FAILED, why, { reason: 'REPLICA_MISMATCH' }),
  flushSlaveTimeout: (ms: number) =>
    new SluiceError(
      Code.SLAVE_PERSISTENCE_TIMEOUT,
      `FLUSH_SLAVE_TIMEOUT: no slave confirmed within ${ms} ms`,
      { retriable: true },
    ),
  slaveNotAvailable: () =>
    new SluiceError(Code.HA_NOT_AVAILABLE, 'SLAVE_NOT_AVAILABLE: no slave is in sync', {
      retriable: true,
    }),
  noWritableBroker: (topic: string) =>
    new SluiceError(Code.HA_NOT_AVAILABLE, `no writable broker for topic '${topic}'`, {
      retriable: true,
      reason: 'NO_WRITABLE_BROKER',
    }),
  unavailable: (what: string, cause?: unknown) =>
    new SluiceError(Code.HA_NOT_AVAILABLE, what, {
      retriable: true,
      reason: 'UNAVAILABLE',
      cause,
    }),
  timeout: (what: string) => new SluiceError(Code.PROXY_TIMEOUT, what, { retriable: true }),
  notImplemented: (what: string) =>
    new SluiceError(Code.NOT_IMPLEMENTED, `${what} is not implemented`),
  /** An error another component reported as a per-entry status (`details`: e.g. retryAfterMs). */
  fromStatus: (code: number, message: string, reason?: string, details?: Record<string, unknown>) =>
    new SluiceError(code, message, {
      reason: (reason || undefined) as Reason | undefined,
      retriable: RETRIABLE_CODES.has(code),
      ...(details ? { details } : {}),
    }),
  /**
   * One action on several brokers that failed on some of them: the first
   * failure's code (a caller tells errors apart by it), a reason only when
   * every failure has it, retriable only when every failure is.
   */
  partialFailure: (
    first: SluiceError,
    message: string,
    options: { retriable: boolean; reason?: Reason; details?: Record<string, unknown> },
  ) => new SluiceError(first.code, message, { ...options, cause: first }),
  /**
   * The message store refuses writes until the broker restarts: an fdatasync of
   * the commitlog failed (after which nothing says the bytes it covered, or any
   * later ones, ever reach the disk: PostgreSQL's "fsyncgate"), or a failed
   * write could not be rolled back. Reads keep working. Not retriable here: an
   * operator must check the disk and restart the broker.
   */
  storeNotWritable: (why: string, cause?: unknown) =>
    new SluiceError(Code.INTERNAL_ERROR, `message store refuses writes until restart: ${why}`, {
      reason: 'STORE_NOT_WRITABLE',
      cause,
    }),
  internal: (what: string, cause?: unknown) =>
    new SluiceError(Code.INTERNAL_ERROR, what, { cause }),
};
