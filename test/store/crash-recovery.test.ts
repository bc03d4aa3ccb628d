import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MESSAGE_MAGIC } from '../../broker/store/commitlog-record.js';
import type { AppendResult, MessageStore } from '../../broker/store/index.js';
import { createMessageStore } from '../../broker/store/message-store.js';
import { makeTempDir } from '../harness/tmp.js';
import {
  bodyFor,
  CHILD_QUEUES,
  CHILD_TOPIC,
  type StoreState,
  stateOf,
} from './fixtures/store-child.js';
import { message, readAll, SMALL, tempStore } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/store-child.ts', import.meta.url));

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface ChildLine {
  started?: boolean;
  ack?: Array<[string, number, number]>;
  state?: StoreState;
}

/** Runs the child; `onLine` answers true to SIGKILL it. Resolves once it exited. */
function runChild(
  mode: 'append' | 'recover',
  options: object,
  onLine: (line: ChildLine) => boolean,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CHILD, mode, JSON.stringify(options)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    let killed = false;
    createInterface({ input: child.stdout }).on('line', (text) => {
      if (killed) return;
      if (onLine(JSON.parse(text) as ChildLine)) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`child exited with ${code}: ${stderr}`));
    });
  });
}

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

async function started(options: object): Promise<MessageStore> {
  const store = createMessageStore(options as { storePathRootDir: string });
  await store.start();
  cleanups.push(() => store.close());
  return store;
}

async function killMidStream(flushDiskType: 'SYNC_FLUSH' | 'ASYNC_FLUSH') {
  const tmp = makeTempDir('sluice-crash-');
  cleanups.push(tmp.remove);
  const options = {
    storePathRootDir: tmp.path,
    flushDiskType,
    mapedFileSizeCommitLog: 256 * 1024,
    mapedFileSizeConsumeQueue: 20 * 200,
    flushIntervalCommitLog: 20,
    flushIntervalConsumeQueue: 50,
    cleanResourceInterval: 0,
  };
  const acked: Array<[string, number, number]> = [];
  await runChild('append', options, (line) => {
    if (line.ack) acked.push(...line.ack);
    return acked.length >= 1500;
  });
  return { options, acked };
}

/** Message records in the commitlog, walked with readRaw (whole records only). */
async function countRecords(store: MessageStore): Promise<number> {
  let n = 0;
  for (let at = store.minPhysicalOffset(); at < store.maxPhysicalOffset(); ) {
    const chunk = await store.readRaw(at, 1 << 20);
    for (let p = 0; p < chunk.length; p += chunk.readInt32BE(p)) {
      if (chunk.readUInt32BE(p + 4) === MESSAGE_MAGIC) n++;
    }
    at += chunk.length;
  }
  return n;
}

async function expectAckedIntact(store: MessageStore, acked: Array<[string, number, number]>) {
  const byId = new Map<
    string,
    { queueId: number; queueOffset: number; body: Buffer; crc: number }
  >();
  for (let q = 0; q < CHILD_QUEUES; q++) {
    const records = await readAll(store, CHILD_TOPIC, q);
    records.forEach((r, i) => {
      expect(r.queueOffset).toBe(i); // no holes
      expect(r.body.equals(bodyFor(r.messageId)), `body of ${r.messageId}`).toBe(true);
      expect(crc32(r.body)).toBe(r.bodyCrc);
      byId.set(r.messageId, {
        queueId: q,
        queueOffset: r.queueOffset,
        body: r.body,
        crc: r.bodyCrc,
      });
    });
  }
  for (const [id, queueId, queueOffset] of acked) {
    expect(byId.get(id), `acknowledged ${id} missing`).toMatchObject({ queueId, queueOffset });
  }
  return byId;
}

describe('crash recovery (real SIGKILL)', () => {
  it('keeps every SYNC_FLUSH-acknowledged append, and recovering twice gives the same state', async () => {
    const { options, acked } = await killMidStream('SYNC_FLUSH');
    expect(acked.length).toBeGreaterThanOrEqual(1500);
    // First recovery in a child that is killed right after it (so the abort file stays)…
    let first: StoreState | undefined;
    await runChild('recover', options, (line) => {
      first = line.state;
      return true;
    });
    // …then a second recovery here.
    const store = await started(options);
    expect(store.stats().recovery?.abnormal).toBe(true);
    expect(await stateOf(store)).toEqual(first);
    await expectAckedIntact(store, acked);
  });

  it('keeps an intact prefix under ASYNC_FLUSH', async () => {
    const { options, acked } = await killMidStream('ASYNC_FLUSH');
    const store = await started(options);
    expect(store.stats().recovery?.abnormal).toBe(true);
    // A process kill leaves written bytes in the page cache, so even ASYNC-acknowledged
    // appends survive it; only a power cut could lose the unflushed tail.
    const present = await expectAckedIntact(store, acked);
    // A prefix: the log holds whole records up to its end and the queues index exactly them.
    expect(await countRecords(store)).toBe(present.size);
    const max = store.maxPhysicalOffset();
    const [next] = await store.appendBatch([message({ topic: CHILD_TOPIC })]);
    expect(next!.physicalOffset).toBeGreaterThanOrEqual(max);
    expect(next!.queueOffset).toBe(store.maxOffset(CHILD_TOPIC, 0) - 1);
  });
});

/**
 * A store whose checkpoint is older than its tail (as after a crash): appends, flushes
 * (checkpoint), appends a tail, closes, then puts back the old checkpoint and an abort file.
 */
async function crashedStore() {
  const t = tempStore('sluice-tail-');
  cleanups.push(t.remove);
  const store = t.open();
  await store.start();
  const head: AppendResult[] = [];
  for (let b = 0; b < 30; b++) {
    head.push(
      ...(await store.appendBatch(
        Array.from({ length: 5 }, (_, i) => message({ queueId: i % 2, keys: [`h${b}-${i}`] })),
      )),
    );
  }
  await store.flush();
  const checkpoint = readFileSync(join(t.dir, 'checkpoint'));
  const tail: AppendResult[] = [];
  for (let b = 0; b < 5; b++) {
    tail.push(
      ...(await store.appendBatch([
        message({ queueId: 0, keys: [`tail-${b}`], body: Buffer.alloc(300, b) }),
      ])),
    );
  }
  await store.close();
  writeFileSync(join(t.dir, 'checkpoint'), checkpoint);
  writeFileSync(join(t.dir, 'abort'), '');
  const last = tail.at(-1)!;
  const segment = join(
    t.dir,
    'commitlog',
    String(last.physicalOffset - (last.physicalOffset % 65536)).padStart(20, '0'),
  );
  return { t, head, tail, last, segment };
}

async function recover(t: ReturnType<typeof tempStore>) {
  const { logger, lines } = capturingLogger();
  const store = t.open({}, { logger });
  await store.start();
  return { store, lines };
}

describe('crash recovery (damaged tail)', () => {
  async function expectCutAt(
    t: ReturnType<typeof tempStore>,
    head: AppendResult[],
    tail: AppendResult[],
    cut: number,
  ) {
    const { store, lines } = await recover(t);
    expect(store.maxPhysicalOffset()).toBe(cut);
    expect(store.stats().recovery).toMatchObject({ abnormal: true, maxPhysicalOffset: cut });
    expect(store.stats().recovery!.truncatedBytes).toBeGreaterThan(0);
    const truncation = lines.find((l) => String(l.msg).includes('truncated'));
    expect(truncation?.offset).toBe(cut);
    // Everything before the damaged record is intact; the damaged one and nothing after is gone.
    const q0 = await readAll(store, 'T', 0);
    const kept = [...head, ...tail].filter((r) => r.physicalOffset < cut);
    expect(q0.length + (await readAll(store, 'T', 1)).length).toBe(kept.length);
    expect(q0.at(-1)!.physicalOffset).toBeLessThan(cut);
    expect(await store.lookupByKey('T', 'tail-4', 10)).toEqual([]);
    expect((await store.lookupByKey('T', 'tail-3', 10)).length).toBe(1);
    const state = {
      max: store.maxPhysicalOffset(),
      q0: store.maxOffset('T', 0),
      q1: store.maxOffset('T', 1),
    };
    // Recovering again (another crash before any write) finds the same state.
    rmSync(join(t.dir, 'checkpoint'));
    writeFileSync(join(t.dir, 'abort'), '');
    const again = await recover(t);
    expect({
      max: again.store.maxPhysicalOffset(),
      q0: again.store.maxOffset('T', 0),
      q1: again.store.maxOffset('T', 1),
    }).toEqual(state);
    expect(again.store.stats().recovery!.truncatedBytes).toBe(0);
    // New appends continue exactly where the damaged record was.
    const [next] = await again.store.appendBatch([message({ queueId: 0 })]);
    expect(next!.physicalOffset).toBe(cut);
    expect(next!.queueOffset).toBe(state.q0);
    await again.store.close();
  }

  it('truncates a torn tail (file cut mid-record) exactly at that record', async () => {
    const { t, head, tail, last, segment } = await crashedStore();
    truncateSync(segment, (last.physicalOffset % 65536) + Math.floor(last.size / 2));
    await expectCutAt(t, head, tail, last.physicalOffset);
  });

  it('truncates at a last record with flipped bytes', async () => {
    const { t, head, tail, last, segment } = await crashedStore();
    const bytes = readFileSync(segment);
    const at = (last.physicalOffset % 65536) + last.size - 30; // in the properties
    bytes[at]! ^= 0x5a;
    bytes[at + 1]! ^= 0x5a;
    writeFileSync(segment, bytes);
    await expectCutAt(t, head, tail, last.physicalOffset);
  });
});

describe('crash recovery (damage at or before the checkpoint)', () => {
  it('cuts at a torn or zero-filled record at the checkpoint offset without distrusting the checkpoint', async () => {
    for (const damage of ['zero-filled', 'torn'] as const) {
      const { t, head, tail, segment } = await crashedStore();
      const checkpoint = tail[0]!.physicalOffset;
      const at = checkpoint % 65536;
      if (damage === 'zero-filled') {
        const bytes = readFileSync(segment);
        bytes.fill(0, at);
        writeFileSync(segment, bytes);
      } else {
        truncateSync(segment, at + 40);
      }
      const { store, lines } = await recover(t);
      cleanups.push(() => store.close());
      expect(
        lines.some((l) => String(l.msg).includes('checkpoint offset is not a valid record')),
        damage,
      ).toBe(false);
      expect(store.stats().recovery, damage).toMatchObject({
        validatedFrom: checkpoint,
        maxPhysicalOffset: checkpoint,
      });
      expect(lines.find((l) => String(l.msg).includes('truncated'))?.offset).toBe(checkpoint);
      const kept = (await readAll(store, 'T', 0)).length + (await readAll(store, 'T', 1)).length;
      expect(kept).toBe(head.length);
    }
  });

  it('cuts at a bad record before the checkpoint in the last segment, so appends never follow garbage', async () => {
    const { t, head, segment } = await crashedStore();
    // Consume queues lost too, so the scan reads the log from its start.
    rmSync(join(t.dir, 'consumequeue'), { recursive: true });
    const bad = head[100]!;
    const bytes = readFileSync(segment);
    bytes.fill(0x5a, bad.physicalOffset + 4, bad.physicalOffset + 8); // its magic
    writeFileSync(segment, bytes);
    const { store, lines } = await recover(t);
    cleanups.push(() => store.close());
    expect(store.maxPhysicalOffset()).toBe(bad.physicalOffset);
    expect(lines.find((l) => String(l.msg).includes('truncated'))?.offset).toBe(bad.physicalOffset);
    const q0 = await readAll(store, 'T', 0);
    const q1 = await readAll(store, 'T', 1);
    expect(q0.length + q1.length).toBe(100);
    expect(await store.lookupByKey('T', 'h24-0', 10)).toEqual([]); // indexed past the cut: dropped
    const [next] = await store.appendBatch([message({ queueId: 0 })]);
    expect(next).toMatchObject({ physicalOffset: bad.physicalOffset, queueOffset: q0.length });
  });
});

describe('recovery scan', () => {
  it('re-validates records cut by chunk boundaries and records bigger than a chunk', async () => {
    const t = tempStore('sluice-bigscan-');
    cleanups.push(t.remove);
    const options = { mapedFileSizeCommitLog: 32 * 1024 * 1024, maxMessageSize: 6 * 1024 * 1024 };
    const store = t.open(options);
    await store.start();
    const sizes = [3000, 5 * 1024 * 1024, 777, 4 * 1024 * 1024 - 50, 1, 6 * 1024 * 1024, 12_345];
    const sent: AppendResult[] = [];
    for (let round = 0; round < 2; round++) {
      for (const [i, n] of sizes.entries()) {
        sent.push(
          ...(await store.appendBatch([
            message({ body: Buffer.alloc(n, i + round), keys: [`big-${round}-${i}`] }),
          ])),
        );
      }
    }
    await store.close();
    rmSync(join(t.dir, 'checkpoint'));
    rmSync(join(t.dir, 'consumequeue'), { recursive: true });
    writeFileSync(join(t.dir, 'abort'), '');
    // A torn last record too: cut it short.
    const last = sent.at(-1)!;
    truncateSync(join(t.dir, 'commitlog', '00000000000000000000'), last.physicalOffset + 100);
    const again = t.open(options);
    await again.start();
    cleanups.push(() => again.close());
    expect(again.stats().recovery).toMatchObject({
      abnormal: true,
      validatedFrom: 0,
      maxPhysicalOffset: last.physicalOffset,
    });
    const records = await readAll(again, 'T', 0);
    expect(records.map((r) => r.body.length)).toEqual([...sizes, ...sizes].slice(0, -1));
    for (const [i, r] of records.entries()) {
      const fill = (i % sizes.length) + Math.floor(i / sizes.length);
      expect(r.body.equals(Buffer.alloc(r.body.length, fill))).toBe(true);
    }
  });

  it('distrusts a checkpoint offset that is not a record start', async () => {
    const t = tempStore('sluice-badcp-');
    cleanups.push(t.remove);
    const store = t.open();
    await store.start();
    const sent = await store.appendBatch(
      Array.from({ length: 40 }, () => message({ body: Buffer.alloc(500) })),
    );
    await store.close();
    // A checkpoint whose flushed offset points into the middle of a record (valid CRC).
    const { encodeCheckpoint } = await import('../../broker/store/checkpoint.js');
    const mid = sent[10]!.physicalOffset + 7;
    // Consume queues and index are complete, so the scan starts at the checkpoint's offset.
    const end = sent.at(-1)!.physicalOffset + sent.at(-1)!.size;
    writeFileSync(
      join(t.dir, 'checkpoint'),
      encodeCheckpoint({
        physicMsgTimestamp: 0,
        logicsMsgTimestamp: 0,
        indexMsgTimestamp: 0,
        physicalOffset: mid,
        logicsOffset: end,
        indexOffset: end,
      }),
    );
    writeFileSync(join(t.dir, 'abort'), '');
    const { logger, lines } = capturingLogger();
    const again = t.open({}, { logger });
    await again.start();
    cleanups.push(() => again.close());
    expect(
      lines.some((l) => String(l.msg).includes('checkpoint offset is not a valid record')),
    ).toBe(true);
    expect(again.maxPhysicalOffset()).toBe(end);
    expect(again.stats().recovery?.truncatedBytes).toBe(0);
    expect((await readAll(again, 'T', 0)).length).toBe(40);
  });
});

describe('rebuilding from the commitlog', () => {
  it('rebuilds deleted consume queues and index on start', async () => {
    const t = tempStore('sluice-rebuild-');
    cleanups.push(t.remove);
    const store = t.open();
    await store.start();
    const results: AppendResult[] = [];
    for (let b = 0; b < 40; b++) {
      results.push(
        ...(await store.appendBatch(
          Array.from({ length: 10 }, (_, i) =>
            message({ topic: `t${i % 3}`, queueId: i % 2, keys: [`k${b}`], tag: `g${i}` }),
          ),
        )),
      );
    }
    const before = new Map<string, string[]>();
    for (const topic of ['t0', 't1', 't2']) {
      for (const q of [0, 1])
        before.set(
          `${topic}/${q}`,
          (await readAll(store, topic, q)).map((r) => r.messageId),
        );
    }
    await store.close();
    rmSync(join(t.dir, 'consumequeue'), { recursive: true });
    rmSync(join(t.dir, 'index'), { recursive: true });

    const again = t.open();
    await again.start();
    cleanups.push(() => again.close());
    expect(again.stats().recovery).toMatchObject({ abnormal: false, dispatchedFrom: 0 });
    for (const topic of ['t0', 't1', 't2']) {
      expect(again.queueIds(topic).sort()).toEqual([0, 1]);
      for (const q of [0, 1]) {
        expect((await readAll(again, topic, q)).map((r) => r.messageId)).toEqual(
          before.get(`${topic}/${q}`),
        );
      }
    }
    const filtered = await again.read('t1', 1, 0, 100, { tags: new Set(['g1']) });
    expect(filtered.records.length).toBe(40);
    expect((await again.lookupByKey('t2', 'k17', 10)).length).toBe(3); // i = 2, 5, 8 of batch 17
    expect((await again.lookupById('t2', results[5]!.messageId))?.physicalOffset).toBe(
      results[5]!.physicalOffset,
    );
  });

  it('rebuilds one lost queue directory and one cut-short queue while the others are whole', async () => {
    const t = tempStore('sluice-onequeue-');
    cleanups.push(t.remove);
    const store = t.open(); // 64 entries per consume queue file
    await store.start();
    for (let b = 0; b < 50; b++) {
      await store.appendBatch(
        Array.from({ length: 6 }, (_, i) => message({ topic: i < 4 ? 'A' : 'B', queueId: i % 2 })),
      );
    }
    const before = new Map<string, string[]>();
    for (const [topic, q] of [
      ['A', 0],
      ['A', 1],
      ['B', 0],
      ['B', 1],
    ] as const) {
      before.set(
        `${topic}/${q}`,
        (await readAll(store, topic, q)).map((r) => r.messageId),
      );
    }
    expect(store.maxOffset('A', 1)).toBe(100);
    await store.close();
    rmSync(join(t.dir, 'consumequeue', 'B', '1'), { recursive: true }); // a lost queue
    const a1 = join(t.dir, 'consumequeue', 'A', '1');
    rmSync(join(a1, readdirSync(a1).sort().at(-1)!)); // A/1 loses its last file: 64 of 100 left
    const { logger, lines } = capturingLogger();
    const again = t.open({}, { logger });
    await again.start();
    cleanups.push(() => again.close());
    expect(
      lines.filter((l) => String(l.msg).includes('consume queue lost or shorter')),
    ).toHaveLength(2);
    for (const [key, ids] of before) {
      const [topic, q] = key.split('/') as [string, string];
      expect(
        (await readAll(again, topic, Number(q))).map((r) => r.messageId),
        key,
      ).toEqual(ids);
    }
    const [b1] = await again.appendBatch([message({ topic: 'B', queueId: 1 })]);
    const [a] = await again.appendBatch([message({ topic: 'A', queueId: 1 })]);
    expect(b1!.queueOffset).toBe(50);
    expect(a!.queueOffset).toBe(100);
  });

  it('keeps the index across restarts: slot table kept at clean close, rebuilt after a crash', async () => {
    const t = tempStore('sluice-index-');
    cleanups.push(t.remove);
    // 300 slots, 1000 entries a file: the last file is part-filled when closed.
    const options = { maxHashSlotNum: 300, maxIndexNum: 1000 };
    let store = t.open(options);
    await store.start();
    const first = await store.appendBatch(
      Array.from({ length: 700 }, (_, i) => message({ keys: [`a${i}`] })),
    );
    await store.close();
    const header = readFileSync(join(t.dir, 'index', readdirSync(join(t.dir, 'index')).at(-1)!));
    expect(header.readInt32BE(4)).toBe(2); // unsealed, slot table valid
    store = t.open(options);
    await store.start();
    expect(store.stats().recovery?.scannedRecords).toBe(0);
    expect((await store.lookupByKey('T', 'a699', 5))[0]?.physicalOffset).toBe(
      first[699]!.physicalOffset,
    );
    expect((await store.lookupByKey('T', 'a3', 5))[0]?.physicalOffset).toBe(
      first[3]!.physicalOffset,
    );
    const second = await store.appendBatch(
      Array.from({ length: 50 }, (_, i) => message({ keys: [`b${i}`] })),
    );
    await store.flush();
    // Crash: no clean close, so the slot table on disk is stale (the flush cleared its flag).
    writeFileSync(join(t.dir, 'abort'), '');
    const crashed = t.open(options);
    await crashed.start();
    cleanups.push(() => crashed.close());
    for (const [key, r] of [
      ['a0', first[0]!],
      ['a650', first[650]!],
      ['b49', second[49]!],
    ] as const) {
      expect((await crashed.lookupByKey('T', key, 5)).map((x) => x.physicalOffset)).toEqual([
        r.physicalOffset,
      ]);
    }
    expect((await crashed.lookupById('T', second[7]!.messageId))?.physicalOffset).toBe(
      second[7]!.physicalOffset,
    );
  });

  it("never rebuilds a deleted topic's records into the queues of its re-created namesake", async () => {
    const t = tempStore('sluice-deleted-');
    cleanups.push(t.remove);
    const store = t.open();
    await store.start();
    const old = await store.appendBatch(
      Array.from({ length: 30 }, (_, i) => message({ topic: 'R', queueId: i % 2 })),
    );
    await store.appendBatch([message({ topic: 'other' })]);
    await store.deleteTopic('R');
    const fresh = await store.appendBatch(
      Array.from({ length: 6 }, (_, i) => message({ topic: 'R', queueId: i % 2 })),
    );
    expect(fresh.map((r) => r.queueOffset)).toEqual([15, 15, 16, 16, 17, 17]);
    await store.close();
    const oldIds = new Set(old.map((r) => r.messageId));
    /** What a rebuilt store must show for R: only the new records, at their offsets. */
    const expectOnlyNew = async (s: MessageStore) => {
      for (const q of [0, 1]) {
        expect([s.minOffset('R', q), s.maxOffset('R', q)]).toEqual([15, 18]);
        const fromZero = await s.read('R', q, 0, 100);
        expect(fromZero.records.map((r) => [r.queueOffset, r.messageId])).toEqual(
          fresh.filter((_, i) => i % 2 === q).map((r) => [r.queueOffset, r.messageId]),
        );
        expect(fromZero.records.some((r) => oldIds.has(r.messageId))).toBe(false);
      }
      expect((await readAll(s, 'other', 0)).length).toBe(1);
    };
    const reopen = async () => {
      const s = t.open();
      await s.start();
      return s;
    };
    // 1. The whole consume queue tree lost: rebuilt from the commitlog's start.
    rmSync(join(t.dir, 'consumequeue'), { recursive: true });
    let again = await reopen();
    expect(again.stats().recovery?.dispatchedFrom).toBe(0);
    await expectOnlyNew(again);
    await again.close();
    // 2. One queue lost while the other is whole (the queue checkpoint's per-queue rebuild).
    rmSync(join(t.dir, 'consumequeue', 'R', '1'), { recursive: true });
    again = await reopen();
    await expectOnlyNew(again);
    await again.close();
    // 3. A crash with no usable checkpoint: recovery re-dispatches from the start.
    rmSync(join(t.dir, 'consumequeue'), { recursive: true });
    writeFileSync(join(t.dir, 'checkpoint'), Buffer.alloc(56));
    writeFileSync(join(t.dir, 'abort'), '');
    again = await reopen();
    cleanups.push(() => again.close());
    expect(again.stats().recovery?.abnormal).toBe(true);
    await expectOnlyNew(again);
    const [next] = await again.appendBatch([message({ topic: 'R', queueId: 0 })]);
    expect(next!.queueOffset).toBe(18);
  });

  it('starts cleanly without scanning when nothing lags', async () => {
    const t = tempStore('sluice-clean-');
    cleanups.push(t.remove);
    const store = t.open(SMALL);
    await store.start();
    await store.appendBatch(Array.from({ length: 100 }, () => message()));
    await store.close();
    const again = t.open(SMALL);
    await again.start();
    cleanups.push(() => again.close());
    expect(again.stats().recovery).toMatchObject({ abnormal: false, scannedRecords: 0 });
    expect(again.maxOffset('T', 0)).toBe(100);
  });
});
