/**
 * Read/write separation for pulling consumers (RocketMQ's
 * suggestWhichBrokerId): a consumer far behind the commitlog end reads
 * through the page cache's cold end and slows the master down, so with
 * slaveReadEnable the master tells it to read from a slave; once caught up
 * (or on the slave) it is sent back to the master.
 *
 * "Far behind": the last record a pull answered lies more than
 * accessMessageInMemoryMaxRatio % of the machine's memory before the
 * commitlog end (RocketMQ's rule). PullService puts the answer in
 * PullMessagesResponse.suggest_which_broker_id (through ReplicationHook).
 */
import { totalmem } from 'node:os';
import type { SubscriptionGroupManager } from '../metadata/subscription-group-manager.js';
import type { BrokerOptions } from '../options.js';
import type { MessageStore } from '../store/index.js';

export const MASTER_ID = 0;

export interface AdviceDeps {
  options: BrokerOptions;
  store: MessageStore;
  groups: SubscriptionGroupManager;
  /** Bytes of memory; default os.totalmem(). */
  totalMemoryBytes?: number;
}

/** The broker id a consumer should pull from next; see ReplicationHook.suggestBrokerId. */
export function suggestBrokerId(
  deps: AdviceDeps,
  group: string,
  lastPulledPhysicalOffset: number,
): number {
  const o = deps.options;
  if (!o.slaveReadEnable || lastPulledPhysicalOffset < 0) return MASTER_ID;
  const memory = (deps.totalMemoryBytes ?? totalmem()) * (o.accessMessageInMemoryMaxRatio / 100);
  const behind = deps.store.maxPhysicalOffset() - lastPulledPhysicalOffset;
  if (behind <= memory) return MASTER_ID;
  const configured = group ? deps.groups.get(group)?.which_broker_when_consume_slowly : undefined;
  return configured ?? o.whichBrokerWhenConsumeSlowly;
}
