/**
 * Store options: RocketMQ's property names, one default each (units in the
 * constant names), and parseStoreOptions(), which fills defaults, validates and
 * freezes. Path options left empty default under storePathRootDir as RocketMQ
 * lays them out: commitlog/, consumequeue/, index/, checkpoint, abort.
 */
import { join } from 'node:path';
import { errors } from '../../common/errors.js';
import { CQ_ENTRY_SIZE_BYTES } from './consume-queue.js';
import type { FlushDiskType } from './store-api.js';

export const DEFAULT_MAPED_FILE_SIZE_COMMIT_LOG_BYTES = 1024 * 1024 * 1024;
/** 300 000 entries of 20 bytes, as RocketMQ. */
export const DEFAULT_MAPED_FILE_SIZE_CONSUME_QUEUE_BYTES = 300_000 * CQ_ENTRY_SIZE_BYTES;
export const DEFAULT_FLUSH_DISK_TYPE: FlushDiskType = 'ASYNC_FLUSH';
export const DEFAULT_FLUSH_INTERVAL_COMMIT_LOG_MS = 500;
/** Consume queues, index and checkpoint are flushed this often (RocketMQ flushIntervalConsumeQueue). */
export const DEFAULT_FLUSH_INTERVAL_CONSUME_QUEUE_MS = 1000;
export const DEFAULT_SYNC_FLUSH_TIMEOUT_MS = 5000;
export const DEFAULT_FILE_RESERVED_TIME_HOURS = 72;
export const DEFAULT_DELETE_WHEN = '04';
export const DEFAULT_DISK_MAX_USED_SPACE_RATIO_PERCENT = 75;
/** Writes are refused above this disk use (RocketMQ diskSpaceWarningLevelRatio), 0..1. */
export const DEFAULT_DISK_SPACE_WARNING_LEVEL_RATIO = 0.9;
export const DEFAULT_STORE_HOST = '127.0.0.1:10911';
export const DEFAULT_MAX_MESSAGE_SIZE_BYTES = 4 * 1024 * 1024;
/**
 * Hash slots per index file. Smaller than RocketMQ's 5 000 000: the slot table
 * of the file being filled lives in memory (4 bytes a slot) because Node has no
 * mmap, and we keep the store's memory flat.
 */
export const DEFAULT_MAX_HASH_SLOT_NUM = 1_000_000;
/** Entries per index file (20 bytes each on disk). */
export const DEFAULT_MAX_INDEX_NUM = 4_000_000;
/**
 * Descriptors of complete store files (full commitlog segments, consume queue
 * and index files) kept open at most; least recently used ones are closed and
 * reopened on demand. Files being filled stay open besides.
 */
export const DEFAULT_MAX_OPEN_FILES = 256;
/** Retention pass period (RocketMQ cleanResourceInterval). */
export const DEFAULT_CLEAN_RESOURCE_INTERVAL_MS = 10_000;

export interface StoreOptions {
  /** Root of the store; the other paths default under it. */
  storePathRootDir: string;
  storePathCommitLog: string;
  storePathConsumeQueue: string;
  storePathIndex: string;
  storeCheckpoint: string;
  abortFile: string;
  /** Commitlog segment size, bytes. */
  mapedFileSizeCommitLog: number;
  /** Consume queue file size, bytes; rounded up to a multiple of 20 (one entry). */
  mapedFileSizeConsumeQueue: number;
  flushDiskType: FlushDiskType;
  /** ASYNC_FLUSH period, ms. */
  flushIntervalCommitLog: number;
  /** Consume queue / index / checkpoint flush period, ms. */
  flushIntervalConsumeQueue: number;
  /** SYNC_FLUSH wait before FLUSH_DISK_TIMEOUT, ms. */
  syncFlushTimeout: number;
  /** Hours a commitlog segment is kept. */
  fileReservedTime: number;
  /** Hour(s) of the day, local time, expired segments are deleted: "04" or "04;16". */
  deleteWhen: string;
  /** Disk use, percent, above which the oldest segments are deleted early. */
  diskMaxUsedSpaceRatio: number;
  /** Disk use, 0..1, above which appends are refused with DISK_FULL. */
  diskSpaceWarningLevelRatio: number;
  /** "ip:port" written into records and offset message ids. */
  storeHost: string;
  /** Largest message body, bytes. */
  maxMessageSize: number;
  maxHashSlotNum: number;
  maxIndexNum: number;
  /** Retention pass period, ms (0 = no timer; call runRetention()). */
  cleanResourceInterval: number;
  /** Idle descriptors of complete store files kept open at most (LRU). */
  maxOpenFiles: number;
}

/**
 * What callers pass: the root is required, everything else has a default.
 * flushDiskType may be any string (config files are text); parseStoreOptions checks it.
 */
export type StoreOptionsInput = Partial<Omit<StoreOptions, 'flushDiskType'>> &
  Pick<StoreOptions, 'storePathRootDir'> & { flushDiskType?: FlushDiskType | string };

function positiveInt(name: string, value: number, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw errors.badRequest(
      `store option ${name}=${value} is not valid; expected an integer >= ${min}`,
      {
        key: name,
        value,
      },
    );
  }
  return value;
}

/** Parses "04" or "04;16" into hours 0..23. */
export function parseDeleteWhen(text: string): number[] {
  const hours = text
    .split(';')
    .map((h) => h.trim())
    .filter((h) => h !== '')
    .map(Number);
  if (hours.length === 0 || hours.some((h) => !Number.isInteger(h) || h < 0 || h > 23)) {
    throw errors.badRequest(
      `store option deleteWhen=${text} is not valid; expected hours like 04 or 04;16`,
      {
        key: 'deleteWhen',
        value: text,
      },
    );
  }
  return hours;
}

/**
 * Fills defaults, validates and freezes.
 *
 * @example
 *   const options = parseStoreOptions({ storePathRootDir: '/var/sluice/store', flushDiskType: 'SYNC_FLUSH' });
 *   options.storePathCommitLog; // '/var/sluice/store/commitlog'
 */
export function parseStoreOptions(input: StoreOptionsInput): Readonly<StoreOptions> {
  const root = input.storePathRootDir;
  if (typeof root !== 'string' || root === '') {
    throw errors.badRequest('store option storePathRootDir must be a directory path', {
      key: 'storePathRootDir',
    });
  }
  const pick = <K extends keyof StoreOptions>(
    key: K,
    fallback: StoreOptions[K],
  ): StoreOptions[K] => {
    const v = (input as Partial<StoreOptions>)[key];
    return v === undefined || v === '' ? fallback : (v as StoreOptions[K]);
  };
  const cqBytes = positiveInt(
    'mapedFileSizeConsumeQueue',
    pick('mapedFileSizeConsumeQueue', DEFAULT_MAPED_FILE_SIZE_CONSUME_QUEUE_BYTES),
    CQ_ENTRY_SIZE_BYTES,
  );
  const options: StoreOptions = {
    storePathRootDir: root,
    storePathCommitLog: pick('storePathCommitLog', join(root, 'commitlog')),
    storePathConsumeQueue: pick('storePathConsumeQueue', join(root, 'consumequeue')),
    storePathIndex: pick('storePathIndex', join(root, 'index')),
    storeCheckpoint: pick('storeCheckpoint', join(root, 'checkpoint')),
    abortFile: pick('abortFile', join(root, 'abort')),
    mapedFileSizeCommitLog: positiveInt(
      'mapedFileSizeCommitLog',
      pick('mapedFileSizeCommitLog', DEFAULT_MAPED_FILE_SIZE_COMMIT_LOG_BYTES),
      4096,
    ),
    mapedFileSizeConsumeQueue: Math.ceil(cqBytes / CQ_ENTRY_SIZE_BYTES) * CQ_ENTRY_SIZE_BYTES,
    flushDiskType: pick('flushDiskType', DEFAULT_FLUSH_DISK_TYPE),
    flushIntervalCommitLog: positiveInt(
      'flushIntervalCommitLog',
      pick('flushIntervalCommitLog', DEFAULT_FLUSH_INTERVAL_COMMIT_LOG_MS),
    ),
    flushIntervalConsumeQueue: positiveInt(
      'flushIntervalConsumeQueue',
      pick('flushIntervalConsumeQueue', DEFAULT_FLUSH_INTERVAL_CONSUME_QUEUE_MS),
    ),
    syncFlushTimeout: positiveInt(
      'syncFlushTimeout',
      pick('syncFlushTimeout', DEFAULT_SYNC_FLUSH_TIMEOUT_MS),
    ),
    fileReservedTime: positiveInt(
      'fileReservedTime',
      pick('fileReservedTime', DEFAULT_FILE_RESERVED_TIME_HOURS),
      0,
    ),
    deleteWhen: pick('deleteWhen', DEFAULT_DELETE_WHEN),
    diskMaxUsedSpaceRatio: pick('diskMaxUsedSpaceRatio', DEFAULT_DISK_MAX_USED_SPACE_RATIO_PERCENT),
    diskSpaceWarningLevelRatio: pick(
      'diskSpaceWarningLevelRatio',
      DEFAULT_DISK_SPACE_WARNING_LEVEL_RATIO,
    ),
    storeHost: pick('storeHost', DEFAULT_STORE_HOST),
    maxMessageSize: positiveInt(
      'maxMessageSize',
      pick('maxMessageSize', DEFAULT_MAX_MESSAGE_SIZE_BYTES),
    ),
    maxHashSlotNum: positiveInt(
      'maxHashSlotNum',
      pick('maxHashSlotNum', DEFAULT_MAX_HASH_SLOT_NUM),
    ),
    maxIndexNum: positiveInt('maxIndexNum', pick('maxIndexNum', DEFAULT_MAX_INDEX_NUM)),
    cleanResourceInterval: positiveInt(
      'cleanResourceInterval',
      pick('cleanResourceInterval', DEFAULT_CLEAN_RESOURCE_INTERVAL_MS),
      0,
    ),
    maxOpenFiles: positiveInt('maxOpenFiles', pick('maxOpenFiles', DEFAULT_MAX_OPEN_FILES)),
  };
  if (options.flushDiskType !== 'ASYNC_FLUSH' && options.flushDiskType !== 'SYNC_FLUSH') {
    throw errors.badRequest(
      `store option flushDiskType=${String(options.flushDiskType)} is not valid; expected ASYNC_FLUSH or SYNC_FLUSH`,
      { key: 'flushDiskType' },
    );
  }
  const ratio = options.diskMaxUsedSpaceRatio;
  if (!(ratio > 0 && ratio <= 100)) {
    throw errors.badRequest(
      `store option diskMaxUsedSpaceRatio=${ratio} is not valid; expected a percent 1..100`,
      {
        key: 'diskMaxUsedSpaceRatio',
      },
    );
  }
  const warn = options.diskSpaceWarningLevelRatio;
  if (!(warn > 0 && warn <= 1)) {
    throw errors.badRequest(
      `store option diskSpaceWarningLevelRatio=${warn} is not valid; expected a fraction 0..1`,
      { key: 'diskSpaceWarningLevelRatio' },
    );
  }
  parseDeleteWhen(options.deleteWhen);
  return Object.freeze(options);
}
