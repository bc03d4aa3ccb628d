/**
 * The message store (DESIGN.md §4): one append-only commitlog for every topic,
 * per-queue consume queues built from it by a dispatcher, and an index for
 * keys and message ids.
 *
 * The contract lives in store-api.ts (so implementation files can import it
 * without an import cycle through this file); this module is what the rest of
 * the broker imports.
 */

export {
  createOffsetMessageId,
  decodeOffsetMessageId,
  newUniqueMessageId,
  UniqueIdGenerator,
} from './message-id.js';
export {
  createMessageStore,
  DELETED_TOPICS_FILE,
  defaultDiskUsage,
  type StoreSeams,
} from './message-store.js';
export { writevAtSync } from './positioned-io.js';
export * from './store-api.js';
export {
  DEFAULT_CLEAN_RESOURCE_INTERVAL_MS,
  DEFAULT_DELETE_WHEN,
  DEFAULT_DISK_MAX_USED_SPACE_RATIO_PERCENT,
  DEFAULT_DISK_SPACE_WARNING_LEVEL_RATIO,
  DEFAULT_FILE_RESERVED_TIME_HOURS,
  DEFAULT_FLUSH_DISK_TYPE,
  DEFAULT_FLUSH_INTERVAL_COMMIT_LOG_MS,
  DEFAULT_FLUSH_INTERVAL_CONSUME_QUEUE_MS,
  DEFAULT_MAPED_FILE_SIZE_COMMIT_LOG_BYTES,
  DEFAULT_MAPED_FILE_SIZE_CONSUME_QUEUE_BYTES,
  DEFAULT_MAX_HASH_SLOT_NUM,
  DEFAULT_MAX_INDEX_NUM,
  DEFAULT_MAX_MESSAGE_SIZE_BYTES,
  DEFAULT_MAX_OPEN_FILES,
  DEFAULT_STORE_HOST,
  DEFAULT_SYNC_FLUSH_TIMEOUT_MS,
  parseStoreOptions,
  type StoreOptions,
  type StoreOptionsInput,
} from './store-options.js';
export { tagHash } from './tag-hash.js';
export { parseTopicTombstones } from './topic-tombstones.js';
