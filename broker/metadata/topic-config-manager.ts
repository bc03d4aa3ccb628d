/**
 * The broker's topics, persisted in `<storePathRootDir>/config/topics.json`.
 * Every change bumps dataVersion so the registry re-registers with the name
 * servers at once.
 */
import { join } from 'node:path';
import type { TopicConfig__Output } from '../../common/generated/sluice/v1/TopicConfig.js';
import { JsonFileWriter, readJsonFile } from '../../common/json-file.js';
import { Perm } from '../../common/names.js';

export type TopicConfig = TopicConfig__Output;

interface TopicsFile {
  dataVersion: number;
  topics: Record<string, TopicConfig>;
}

export interface TopicDefaults {
  autoCreateTopicEnable: boolean;
  defaultTopicQueueNums: number;
}

export class TopicConfigManager {
  private readonly topics = new Map<string, TopicConfig>();
  private version: number;
  private readonly writer: JsonFileWriter;
  private readonly listeners = new Set<() => void>();

  constructor(
    rootDir: string,
    private readonly defaults: TopicDefaults,
  ) {
    const path = join(rootDir, 'config', 'topics.json');
    const file = readJsonFile<TopicsFile>(path, { dataVersion: 0, topics: {} });
    for (const [name, config] of Object.entries(file.topics)) this.topics.set(name, config);
    this.version = file.dataVersion;
    this.writer = new JsonFileWriter(path, () => ({
      dataVersion: this.version,
      topics: Object.fromEntries(this.topics),
    }));
  }

  get dataVersion(): number {
    return this.version;
  }

  get(topic: string): TopicConfig | undefined {
    return this.topics.get(topic);
  }

  all(): TopicConfig[] {
    return [...this.topics.values()];
  }

  /** Called after any change (used to re-register with name servers). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Creates or replaces a topic; resolves once persisted. */
  async upsert(config: Partial<TopicConfig> & { topic_name: string }): Promise<TopicConfig> {
    const existing = this.topics.get(config.topic_name);
    const queues = this.defaults.defaultTopicQueueNums;
    const next: TopicConfig = {
      topic_name: config.topic_name,
      read_queue_nums: config.read_queue_nums || existing?.read_queue_nums || queues,
      write_queue_nums: config.write_queue_nums || existing?.write_queue_nums || queues,
      perm: config.perm || existing?.perm || Perm.READ_WRITE,
      message_type: config.message_type || existing?.message_type || 'NORMAL',
      order: config.order ?? existing?.order ?? false,
    };
    this.topics.set(next.topic_name, next);
    await this.changed();
    return next;
  }

  /**
   * The topic's config, creating it when auto-creation is on (or `force`,
   * for system topics such as %RETRY% and %DLQ%). Undefined when unknown.
   */
  async getOrCreate(
    topic: string,
    force = false,
    queueNums?: number,
  ): Promise<TopicConfig | undefined> {
    const existing = this.topics.get(topic);
    if (existing) return existing;
    if (!force && !this.defaults.autoCreateTopicEnable) return undefined;
    return this.upsert({
      topic_name: topic,
      read_queue_nums: queueNums ?? this.defaults.defaultTopicQueueNums,
      write_queue_nums: queueNums ?? this.defaults.defaultTopicQueueNums,
    });
  }

  async delete(topic: string): Promise<boolean> {
    if (!this.topics.delete(topic)) return false;
    await this.changed();
    return true;
  }

  private async changed(): Promise<void> {
    this.version++;
    await this.writer.save();
    for (const l of this.listeners) l();
  }
}
