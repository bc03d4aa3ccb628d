/**
 * Reads the records of one consume queue that a QueueState has not settled,
 * from its base to the queue's end, skipping settled runs without reading
 * them (used to rebuild the timer index and the open transactions at start).
 */
import type { MessageStore, StoredRecord } from '../store/index.js';
import type { QueueState } from './consume-state.js';

const READ_CHUNK = 512;

/**
 * Calls `visit` for every open (unsettled, not in-flight unless `withInflight`)
 * record in offset order; answers the offsets that are gone (below the
 * store's min offset: removed by retention).
 */
export async function scanOpenRecords(
  store: MessageStore,
  st: QueueState,
  visit: (r: StoredRecord) => void,
  withInflight = false,
): Promise<number[]> {
  const max = store.maxOffset(st.topic, st.queueId);
  const lost: number[] = [];
  let offset = st.base;
  while (offset < max) {
    offset = st.settled.nextAbsent(offset);
    if (offset >= max) break;
    const gapEnd = Math.min(st.settled.nextPresent(offset) ?? max, max);
    const read = await store.read(
      st.topic,
      st.queueId,
      offset,
      Math.min(READ_CHUNK, gapEnd - offset),
    );
    for (let o = offset; o < Math.min(read.minOffset, gapEnd); o++) lost.push(o);
    for (const r of read.records) {
      if (st.isSettled(r.queueOffset)) continue;
      if (!withInflight && st.inflight.has(r.queueOffset)) continue;
      visit(r);
    }
    if (read.nextOffset <= offset) break;
    offset = read.nextOffset;
  }
  return lost;
}
