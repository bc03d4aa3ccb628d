/**
 * Consumer groups, persisted in `<storePathRootDir>/config/subscriptionGroup.json`.
 */
import { join } from 'node:path';
import { errors } from '../../common/errors.js';
import type { SubscriptionGroupConfig__Output } from '../../common/generated/sluice/v1/SubscriptionGroupConfig.js';
import { JsonFileWriter, readJsonFile } from '../../common/json-file.js';

export type SubscriptionGroupConfig = SubscriptionGroupConfig__Output;

export class SubscriptionGroupManager {
  private readonly groups = new Map<string, SubscriptionGroupConfig>();
  private readonly writer: JsonFileWriter;

  constructor(
    rootDir: string,
    private readonly autoCreate: boolean,
    private readonly defaultRetryMaxTimes: number,
  ) {
    const path = join(rootDir, 'config', 'subscriptionGroup.json');
    const file = readJsonFile<Record<string, SubscriptionGroupConfig>>(path, {});
    for (const [name, config] of Object.entries(file)) this.groups.set(name, config);
    this.writer = new JsonFileWriter(path, () => Object.fromEntries(this.groups));
  }

  get(group: string): SubscriptionGroupConfig | undefined {
    return this.groups.get(group);
  }

  all(): SubscriptionGroupConfig[] {
    return [...this.groups.values()];
  }

  async upsert(
    config: Partial<SubscriptionGroupConfig> & { group_name: string },
  ): Promise<SubscriptionGroupConfig> {
    const existing = this.groups.get(config.group_name);
    const next: SubscriptionGroupConfig = {
      group_name: config.group_name,
      consume_enable: config.consume_enable ?? existing?.consume_enable ?? true,
      consume_broadcast_enable:
        config.consume_broadcast_enable ?? existing?.consume_broadcast_enable ?? true,
      // Presence, not truthiness: 0 is a setting (a single delivery), unset keeps the current value.
      retry_max_times:
        config.retry_max_times ?? existing?.retry_max_times ?? this.defaultRetryMaxTimes,
      consume_message_orderly:
        config.consume_message_orderly ?? existing?.consume_message_orderly ?? false,
      which_broker_when_consume_slowly:
        config.which_broker_when_consume_slowly ?? existing?.which_broker_when_consume_slowly ?? 1,
    };
    this.groups.set(next.group_name, next);
    await this.writer.save();
    return next;
  }

  /** The group's config; creates it when auto-creation is on, else CONSUMER_GROUP_NOT_FOUND. */
  async require(group: string): Promise<SubscriptionGroupConfig> {
    const existing = this.groups.get(group);
    if (existing) return existing;
    if (!this.autoCreate) throw errors.groupNotFound(group);
    return this.upsert({ group_name: group });
  }

  async delete(group: string): Promise<boolean> {
    if (!this.groups.delete(group)) return false;
    await this.writer.save();
    return true;
  }
}
