/**
 * What the messaging services share: the store, metadata managers, options,
 * seams (clock, logger). Built once in main.ts.
 */
import type { Logger } from '../../common/logger.js';
import type { ReplicationHook } from '../ha/index.js';
import type { ConsumerOffsetManager } from '../metadata/consumer-offset-manager.js';
import type { SubscriptionGroupManager } from '../metadata/subscription-group-manager.js';
import type { TopicConfigManager } from '../metadata/topic-config-manager.js';
import type { BrokerOptions } from '../options.js';
import type { MessageStore } from '../store/index.js';
import type { ArrivalNotifier } from './arrival-notifier.js';

export interface BrokerContext {
  options: BrokerOptions;
  /** "host:port" this broker registered under. */
  brokerAddr: string;
  store: MessageStore;
  topics: TopicConfigManager;
  groups: SubscriptionGroupManager;
  offsets: ConsumerOffsetManager;
  notifier: ArrivalNotifier;
  logger: Logger;
  /** Epoch ms. */
  clock: () => number;
  /** Current broker-wide permission (4 read, 2 write). */
  perm(): number;
  /** Master/slave replication (broker/ha): SYNC_MASTER send waits, slave-read advice. */
  replication?: ReplicationHook;
}
