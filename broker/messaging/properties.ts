/**
 * System property names stored with a message, RocketMQ's where one exists.
 * User properties may not use them.
 */
export const SystemProperty = {
  MESSAGE_GROUP: '__SHARDINGKEY',
  /** Epoch ms the message was due (timer messages). */
  DELIVERY_TIME_MS: 'TIMER_DELIVER_MS',
  DELAY_LEVEL: 'DELAY',
  TRANSACTION_PREPARED: 'TRAN_MSG',
  PRODUCER_GROUP: 'PGROUP',
  /** Topic and queue a retried, delayed or half message really belongs to. */
  REAL_TOPIC: 'REAL_TOPIC',
  REAL_QUEUE_ID: 'REAL_QID',
  ORIGIN_MESSAGE_ID: 'ORIGIN_MESSAGE_ID',
  /** Times a half message was offered for check-back. */
  TRANSACTION_CHECK_TIMES: 'TRANSACTION_CHECK_TIMES',
  /** Group whose retry or dead-letter queue a message was moved to. */
  CONSUMER_GROUP: 'CONSUMER_GROUP',
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
]);

export function isReservedProperty(name: string): boolean {
  return RESERVED.has(name) || name.startsWith('__');
}

/** The user properties of a stored message (system ones dropped). */
export function userProperties(all: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in all) if (!isReservedProperty(k)) out[k] = all[k]!;
  return out;
}
