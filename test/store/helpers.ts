/** Shared helpers for store tests: temp dirs, messages, small-sized stores. */

import type { MessageInput, MessageStore } from '../../broker/store/index.js';
import { createMessageStore, type StoreSeams } from '../../broker/store/message-store.js';
import type { StoreOptionsInput } from '../../broker/store/store-options.js';
import { makeTempDir } from '../harness/tmp.js';

export interface TempStore {
  dir: string;
  open(overrides?: Partial<StoreOptionsInput>, seams?: StoreSeams): MessageStore;
  remove(): void;
}

/** Small files so tests roll segments and consume queue files quickly. */
export const SMALL: Partial<StoreOptionsInput> = {
  mapedFileSizeCommitLog: 64 * 1024,
  mapedFileSizeConsumeQueue: 20 * 64,
  maxHashSlotNum: 64,
  maxIndexNum: 256,
  cleanResourceInterval: 0,
};

export function tempStore(prefix = 'sluice-store-'): TempStore {
  const tmp = makeTempDir(prefix);
  return {
    dir: tmp.path,
    open: (overrides = {}, seams = {}) =>
      createMessageStore({ storePathRootDir: tmp.path, ...SMALL, ...overrides }, seams),
    remove: tmp.remove,
  };
}

let seq = 0;

export function message(overrides: Partial<MessageInput> = {}): MessageInput {
  seq++;
  return {
    topic: 'T',
    queueId: 0,
    body: Buffer.from(`body-${seq}`),
    tag: '',
    keys: [],
    properties: {},
    messageId: `ID${String(seq).padStart(30, '0')}`,
    bornTimestamp: 1_700_000_000_000 + seq,
    bornHost: '127.0.0.1:5000',
    ...overrides,
  };
}

/** Reads a whole queue from its min offset. */
export async function readAll(store: MessageStore, topic: string, queueId: number) {
  const out = [];
  let offset = store.minOffset(topic, queueId);
  for (;;) {
    const r = await store.read(topic, queueId, offset, 1000);
    out.push(...r.records);
    if (r.nextOffset === offset) break;
    offset = r.nextOffset;
  }
  return out;
}
