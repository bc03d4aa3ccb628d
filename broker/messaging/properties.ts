/**
 * System property names stored with a message, RocketMQ's where one exists.
 * User properties may not use them.
 */
export const SystemProperty = {
  MESSAGE_GROUP: '__SHARDINGKEY',
  DELIVERY_TIME_MS: 'TIMER_DELIVER_MS',
  DELAY_LEVEL: 'DELAY',
  TRANSACTION_PREPARED: 'TRAN_MSG',
  PRODUCER_GROUP: 'PGROUP',
  /** Topic and queue a retried or delayed message originally belonged to. */
  REAL_TOPIC: 'REAL_TOPIC',
  REAL_QUEUE_ID: 'REAL_QID',
  ORIGIN_MESSAGE_ID: 'ORIGIN_MESSAGE_ID',
  TRACEPARENT: 'traceparent',
  TRACESTATE: 'tracestate',
} as const;

const RESERVED = new Set<string>([
  ...Object.values(SystemProperty),
  'KEYS',
  'TAGS',
  'UNIQ_KEY',
  'WAIT',
  'RETRY_TOPIC',
  'MAX_OFFSET',
  'MIN_OFFSET',
  'CLUSTER',
  'CHECK_IMMUNITY_TIME_IN_SECONDS',
  'TRANSACTION_CHECK_TIMES',
]);

export function isReservedProperty(name: string): boolean {
  return RESERVED.has(name) || name.startsWith('__');
}

/** Splits stored properties into user ones (returned) and drops system ones. */
export function userProperties(all: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(all)) if (!isReservedProperty(k)) out[k] = v;
  return out;
}
