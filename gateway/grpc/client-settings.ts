/**
 * The Settings a client receives over Telemetry in answer to its own. The
 * official SDKs block their startup until this answer arrives, and a
 * producer needs backoff_policy (an exponential backoff) and
 * publishing.max_body_size in it.
 */
import { errors } from '../../common/errors.js';
import type { RetryPolicy } from '../../common/generated/apache/rocketmq/v2/RetryPolicy.js';
import type {
  Settings,
  Settings__Output,
} from '../../common/generated/apache/rocketmq/v2/Settings.js';
import type { GroupSettings } from '../core/cluster-view.js';
import {
  BACKOFF_MULTIPLIER,
  CONSUMER_BACKOFF_INITIAL_MS,
  CONSUMER_BACKOFF_MAX_MS,
  type MessagingServiceOptions,
  PRODUCER_BACKOFF_INITIAL_MS,
  PRODUCER_BACKOFF_MAX_MS,
} from './messaging-options.js';
import { toDuration } from './proto-time.js';

/** SDK default when a producer names no attempt count. */
const DEFAULT_PRODUCER_MAX_ATTEMPTS = 3;

export type ServedClientType = 'PRODUCER' | 'PUSH_CONSUMER' | 'SIMPLE_CONSUMER' | 'PULL_CONSUMER';

/** The client's type, from client_type or, when absent, from which half of pub_sub it filled. */
export function clientTypeOf(s: Settings__Output): ServedClientType {
  const t =
    s.client_type ??
    (s.publishing ? 'PRODUCER' : s.subscription ? 'SIMPLE_CONSUMER' : 'CLIENT_TYPE_UNSPECIFIED');
  switch (t) {
    case 'PRODUCER':
    case 'PUSH_CONSUMER':
    case 'SIMPLE_CONSUMER':
    case 'PULL_CONSUMER':
      return t;
    default:
      throw errors.unrecognizedClientType(String(t));
  }
}

function exponential(maxAttempts: number, initialMs: number, maxMs: number): RetryPolicy {
  return {
    max_attempts: maxAttempts,
    exponential_backoff: {
      initial: toDuration(initialMs),
      max: toDuration(maxMs),
      multiplier: BACKOFF_MULTIPLIER,
    },
  };
}

/**
 * Answers a client's Settings. A consumer's backoff_policy.max_attempts is
 * its group's delivery limit, or opts.maxDeliveryAttempts when no broker
 * said. Throws UNRECOGNIZED_CLIENT_TYPE for types Sluice does not serve.
 */
export function answerSettings(
  client: Settings__Output,
  group: GroupSettings,
  opts: Pick<
    MessagingServiceOptions,
    'maxMessageSize' | 'receiveBatchSize' | 'defaultLongPollingMs' | 'maxDeliveryAttempts'
  >,
): Settings {
  const type = clientTypeOf(client);
  const common: Settings = {
    client_type: type,
    access_point: client.access_point,
    request_timeout: client.request_timeout,
    user_agent: client.user_agent,
  };
  if (type === 'PRODUCER') {
    return {
      ...common,
      backoff_policy: exponential(
        client.backoff_policy?.max_attempts || DEFAULT_PRODUCER_MAX_ATTEMPTS,
        PRODUCER_BACKOFF_INITIAL_MS,
        PRODUCER_BACKOFF_MAX_MS,
      ),
      publishing: {
        topics: client.publishing?.topics ?? [],
        max_body_size: opts.maxMessageSize,
        validate_message_type: true,
      },
    };
  }
  const sub = client.subscription;
  return {
    ...common,
    backoff_policy: exponential(
      group.maxDeliveryAttempts ?? opts.maxDeliveryAttempts,
      CONSUMER_BACKOFF_INITIAL_MS,
      CONSUMER_BACKOFF_MAX_MS,
    ),
    subscription: {
      group: sub?.group ?? null,
      subscriptions: sub?.subscriptions ?? [],
      // Push consumers of an orderly group process one message of a message group at a time.
      fifo: group.orderly,
      receive_batch_size: opts.receiveBatchSize,
      long_polling_timeout: sub?.long_polling_timeout ?? toDuration(opts.defaultLongPollingMs),
    },
  };
}
