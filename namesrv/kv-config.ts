/**
 * The name server's KV config: namespace → key → value, persisted as
 * RocketMQ's `kvConfig.json` (`{"configTable": {ns: {key: value}}}`). Every
 * change is written to a temporary file, fsynced and renamed over the old one
 * before the call that made it is answered, so an acknowledged change survives
 * a crash.
 */
import { JsonFileWriter, readJsonFile } from '../common/json-file.js';

interface KvConfigFile {
  configTable: Record<string, Record<string, string>>;
}

/**
 * @example
 *   const kv = new KvConfigStore('/home/me/namesrv/kvConfig.json');
 *   await kv.put('ORDER_TOPIC_CONFIG', 'orders', 'broker-a:4');
 *   kv.get('ORDER_TOPIC_CONFIG', 'orders'); // 'broker-a:4'
 */
export class KvConfigStore {
  private readonly table = new Map<string, Map<string, string>>();
  private readonly writer: JsonFileWriter;

  /** Loads `path` if it exists (a missing file is an empty table). */
  constructor(readonly path: string) {
    const file = readJsonFile<KvConfigFile>(path, { configTable: {} });
    for (const [ns, entries] of Object.entries(file.configTable ?? {})) {
      this.table.set(ns, new Map(Object.entries(entries)));
    }
    this.writer = new JsonFileWriter(path, () => ({
      configTable: Object.fromEntries(
        [...this.table].map(([ns, entries]) => [ns, Object.fromEntries(entries)]),
      ),
    }));
  }

  get(namespace: string, key: string): string | undefined {
    return this.table.get(namespace)?.get(key);
  }

  /** Entries of a namespace (empty when unknown). */
  list(namespace: string): Record<string, string> {
    return Object.fromEntries(this.table.get(namespace) ?? []);
  }

  /** Sets a value; resolves once it is on disk. */
  async put(namespace: string, key: string, value: string): Promise<void> {
    let entries = this.table.get(namespace);
    if (!entries) {
      entries = new Map();
      this.table.set(namespace, entries);
    }
    entries.set(key, value);
    await this.writer.save();
  }

  /** Removes a value; resolves once on disk. False when there was none. */
  async delete(namespace: string, key: string): Promise<boolean> {
    const entries = this.table.get(namespace);
    if (!entries?.delete(key)) return false;
    if (entries.size === 0) this.table.delete(namespace);
    await this.writer.save();
    return true;
  }
}
