/**
 * Store benchmark: `npm run bench:store` (= `npx tsx bench/store.ts`). Prints one table with
 * each figure beside its target and, for appends, beside the raw sequential write ceiling
 * measured in the same run with the same write sizes.
 *
 *   --quick        sizes / 8, one round, shorter timed runs (also SLUICE_BENCH_QUICK=1)
 *   --dir=PATH     where data goes (default: a new directory under the OS temp dir; removed after)
 *   --only=LIST    run only these parts, comma-separated: append-128, append-1k, append-16k,
 *                  read (needs append-1k), flush, recovery, rss (default: all)
 *
 * Throughput figures are measured ROUNDS times (the box is shared); the table shows the best
 * and the median.
 *
 * Sections: raw ceiling vs commitlog append (128 B, 1 KiB, 16 KiB, batched, in-process);
 * ASYNC_FLUSH / SYNC_FLUSH with 1, 16 and 64 concurrent writers; sequential read via the
 * consume queue; recovery of a 1 GiB log after SIGKILL (a child process is killed mid-stream,
 * then the restart is timed), plus the worst case (checkpoint, consume queues and index gone);
 * peak RSS of a child writing 4 GiB.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { MessageInput, MessageStore } from '../broker/store/index.js';
import { newUniqueMessageId } from '../broker/store/message-id.js';
import { createMessageStore } from '../broker/store/message-store.js';
import type { StoreOptionsInput } from '../broker/store/store-options.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const SELF = fileURLToPath(import.meta.url);

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const value = (name: string) =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const QUICK = flag('quick') || process.env.SLUICE_BENCH_QUICK === '1';
const ONLY = value('only')?.split(',');
const wanted = (part: string) => ONLY === undefined || ONLY.includes(part);
const SCALE = QUICK ? 8 : 1;
const TIMED_MS = QUICK ? 1000 : 2000;
/** Repeats of each throughput measurement; the table shows the best (and median). */
const ROUNDS = QUICK ? 1 : 3;

// ------------------------------------------------------------------ helpers

function makeBatch(topic: string, queueId: number, bodyBytes: number, n: number): MessageInput[] {
  const body = Buffer.alloc(bodyBytes, 0x61);
  return Array.from({ length: n }, (_, i) => ({
    topic,
    queueId,
    body,
    tag: 'TagA',
    keys: [`key-${i}`],
    properties: { producer: 'bench' },
    messageId: newUniqueMessageId(),
    bornTimestamp: Date.now(),
    bornHost: '10.0.0.1:50000',
  }));
}

async function openStore(
  dir: string,
  options: Partial<StoreOptionsInput> = {},
): Promise<MessageStore> {
  const store = createMessageStore({ storePathRootDir: dir, cleanResourceInterval: 0, ...options });
  await store.start();
  return store;
}

/** Appends `total` messages in batches, `inflight` batches at a time; answers elapsed seconds. */
async function appendBatched(
  store: MessageStore,
  batch: MessageInput[],
  total: number,
  inflight: number,
): Promise<number> {
  let sent = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (sent < total) {
      sent += batch.length;
      await store.appendBatch(batch);
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  return (performance.now() - t0) / 1000;
}

/** Plain positioned writes of `writeBytes` each, one at a time, to a file in `dir`; answers MB/s. */
async function rawCeiling(dir: string, writeBytes: number, totalBytes: number): Promise<number> {
  const path = join(dir, 'raw-ceiling.bin');
  const fd = fs.openSync(path, 'w');
  const buf = Buffer.alloc(writeBytes, 0x61);
  const write = (pos: number) =>
    new Promise<void>((resolve, reject) =>
      fs.write(fd, buf, 0, buf.length, pos, (err) => (err ? reject(err) : resolve())),
    );
  const t0 = performance.now();
  for (let pos = 0; pos < totalBytes; pos += writeBytes) await write(pos);
  const seconds = (performance.now() - t0) / 1000;
  fs.fdatasyncSync(fd);
  fs.closeSync(fd);
  fs.rmSync(path);
  return totalBytes / seconds / 1e6;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

interface Row {
  test: string;
  result: string;
  target?: string;
  ok?: boolean;
}
const rows: Row[] = [];
function row(test: string, result: string, target?: string, ok?: boolean): void {
  rows.push({ test, result, target, ok });
  process.stderr.write(`  ${test}: ${result}\n`);
}

// ------------------------------------------------------------------ sections

/** Best and median of repeated measurements (this box is shared: the best is the least disturbed). */
function summary(values: number[]): { best: number; median: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { best: sorted.at(-1)!, median: sorted[Math.floor(sorted.length / 2)]! };
}

async function appendSection(root: string): Promise<{ readDir: string; readCount: number }> {
  const cases = [
    { part: 'append-128', body: 128, batch: 512, totalBytes: (128 * MiB) / SCALE },
    { part: 'append-1k', body: KiB, batch: 256, totalBytes: (512 * MiB) / SCALE },
    { part: 'append-16k', body: 16 * KiB, batch: 32, totalBytes: (512 * MiB) / SCALE },
  ].filter((c) => wanted(c.part));
  let readDir = '';
  let readCount = 0;
  for (const c of cases) {
    const raws: number[] = [];
    const rates: number[] = [];
    let recordBytes = 0;
    let writeBytes = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const dir = join(root, `append-${c.body}-${round}`);
      const store = await openStore(dir);
      const batch = makeBatch('bench', 0, c.body, c.batch);
      recordBytes = (await store.appendBatch(batch.slice(0, 1)))[0]!.size;
      const total = Math.ceil(c.totalBytes / c.body / c.batch) * c.batch;
      writeBytes = recordBytes * c.batch;
      raws.push(await rawCeiling(dir, writeBytes, writeBytes * (total / c.batch)));
      const seconds = await appendBatched(store, batch, total, 4);
      await store.close();
      rates.push(total / seconds);
      if (c.body === KiB && round === ROUNDS - 1) {
        readDir = dir;
        readCount = total + 1;
      } else {
        await rm(dir, { recursive: true, force: true });
      }
    }
    const raw = summary(raws);
    const rate = summary(rates);
    const msgs = rate.best;
    const diskMBs = (msgs * recordBytes) / 1e6;
    const ratio = diskMBs / raw.best;
    const label = c.body >= KiB ? `${c.body / KiB} KiB` : `${c.body} B`;
    row(
      `raw sequential write, ${fmt(writeBytes / KiB)} KiB writes`,
      `${fmt(raw.best)} MB/s (median ${fmt(raw.median)})`,
    );
    const result = `${fmt(msgs)} msg/s, ${fmt((msgs * c.body) / 1e6)} MB/s body, ${fmt(diskMBs)} MB/s disk = ${fmt(ratio * 100)}% of raw (median ${fmt(rate.median)} msg/s)`;
    if (c.body === KiB) {
      row(`append ${label} ASYNC, batch ${c.batch}`, result, '>= 300,000 msg/s', msgs >= 300_000);
    } else if (c.body === 16 * KiB) {
      row(`append ${label} ASYNC, batch ${c.batch}`, result, '>= 50% of raw', ratio >= 0.5);
    } else {
      row(`append ${label} ASYNC, batch ${c.batch}`, result);
    }
  }
  return { readDir, readCount };
}

async function flushSection(root: string): Promise<void> {
  for (const mode of ['ASYNC_FLUSH', 'SYNC_FLUSH'] as const) {
    for (const writers of [1, 16, 64]) {
      let best: { msgs: number; p50: number; p99: number; perSync: number } | undefined;
      const all: number[] = [];
      for (let round = 0; round < Math.min(ROUNDS, 2); round++) {
        const dir = join(root, `flush-${mode}-${writers}-${round}`);
        const store = await openStore(dir, { flushDiskType: mode });
        const syncsBefore = store.stats().commitlogSyncs ?? 0;
        const latencies: number[] = [];
        let count = 0;
        const deadline = performance.now() + TIMED_MS;
        const t0 = performance.now();
        const worker = async (w: number) => {
          const batch = makeBatch('bench', w % 8, KiB, 1);
          while (performance.now() < deadline) {
            const t = performance.now();
            await store.appendBatch(batch);
            latencies.push(performance.now() - t);
            count++;
          }
        };
        await Promise.all(Array.from({ length: writers }, (_, w) => worker(w)));
        const seconds = (performance.now() - t0) / 1000;
        const syncs = (store.stats().commitlogSyncs ?? 0) - syncsBefore;
        await store.close();
        await rm(dir, { recursive: true, force: true });
        latencies.sort((a, b) => a - b);
        const msgs = count / seconds;
        all.push(msgs);
        if (!best || msgs > best.msgs) {
          best = {
            msgs,
            p50: percentile(latencies, 50),
            p99: percentile(latencies, 99),
            perSync: count / Math.max(1, syncs),
          };
        }
      }
      const b = best!;
      const detail = `${fmt(b.msgs)} msg/s, p50 ${fmt(b.p50, 2)} ms, p99 ${fmt(b.p99, 2)} ms${mode === 'SYNC_FLUSH' ? `, ${fmt(b.perSync, 1)} appends per fdatasync` : ''} (runs: ${all.map((x) => fmt(x)).join(', ')})`;
      const name = `${mode}, ${writers} writer${writers > 1 ? 's' : ''}, 1 KiB`;
      if (mode === 'SYNC_FLUSH' && writers === 64)
        row(name, detail, '>= 40,000 msg/s', b.msgs >= 40_000);
      else row(name, detail);
    }
  }
}

async function readSection(dir: string, expected: number): Promise<void> {
  const store = await openStore(dir);
  for (const batchSize of [256, 32]) {
    const rates: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      let n = 0;
      let offset = 0;
      const t0 = performance.now();
      for (;;) {
        const r = await store.read('bench', 0, offset, batchSize);
        n += r.records.length;
        if (r.nextOffset === offset) break;
        offset = r.nextOffset;
      }
      const seconds = (performance.now() - t0) / 1000;
      if (n !== expected) throw new Error(`read ${n} records, expected ${expected}`);
      rates.push(n / seconds);
    }
    const rate = summary(rates);
    const name = `sequential read via consume queue, 1 KiB, ${batchSize} per read`;
    const result = `${fmt(rate.best)} msg/s (median ${fmt(rate.median)})`;
    if (batchSize === 256) row(name, result, '>= 300,000 msg/s', rate.best >= 300_000);
    else row(name, result);
  }
  await store.close();
}

function child(
  mode: string,
  dir: string,
  bytes: number,
  onLine: (line: Record<string, number>) => boolean,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      ['--import', 'tsx', SELF, `--child=${mode}`, `--dir=${dir}`, `--bytes=${bytes}`],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    createInterface({ input: p.stdout }).on('line', (text) => {
      if (onLine(JSON.parse(text) as Record<string, number>)) p.kill('SIGKILL');
    });
    p.on('error', reject);
    p.on('exit', (code, signal) =>
      code === 0 || signal === 'SIGKILL'
        ? resolve()
        : reject(new Error(`child ${mode} exited ${code}`)),
    );
  });
}

async function recoverySection(root: string): Promise<void> {
  const dir = join(root, 'recovery');
  const bytes = GiB / SCALE;
  await child('write', dir, bytes, (line) => line.written !== undefined);
  let t0 = performance.now();
  let store = await openStore(dir);
  let ms = performance.now() - t0;
  const r = store.stats().recovery!;
  row(
    `recovery after SIGKILL, ${fmt(r.maxPhysicalOffset / GiB, 2)} GiB log`,
    `${fmt(ms)} ms (re-validated ${fmt((r.maxPhysicalOffset - r.validatedFrom) / MiB)} MiB from the checkpoint, cut ${fmt(r.truncatedBytes)} B)`,
    '< 5,000 ms',
    ms < 5000,
  );
  await store.close();
  // Worst case: no checkpoint, consume queues and index gone, abort file present.
  await rm(join(dir, 'consumequeue'), { recursive: true, force: true });
  await rm(join(dir, 'index'), { recursive: true, force: true });
  await rm(join(dir, 'checkpoint'), { force: true });
  await writeFile(join(dir, 'abort'), '');
  t0 = performance.now();
  store = await openStore(dir);
  ms = performance.now() - t0;
  const w = store.stats().recovery!;
  row(
    `  worst case: no checkpoint, queues + index rebuilt`,
    `${fmt(ms)} ms (${fmt((w.maxPhysicalOffset - w.validatedFrom) / MiB)} MiB CRC-checked, ${fmt(w.scannedRecords)} records)`,
  );
  await store.close();
  await rm(dir, { recursive: true, force: true });
}

async function rssSection(root: string): Promise<void> {
  const dir = join(root, 'rss');
  const bytes = (4 * GiB) / SCALE;
  let result: Record<string, number> = {};
  await child('rss', dir, bytes, (line) => {
    result = line;
    return false;
  });
  row(
    `peak RSS writing ${fmt(bytes / GiB, 1)} GiB (child, 1 KiB batched)`,
    `${fmt(result.peakRss! / MiB)} MiB (idle baseline with tsx ${fmt(result.baselineRss! / MiB)} MiB; ${fmt(result.msgsPerSec!)} msg/s)`,
    '< 200 MiB',
    result.peakRss! < 200 * MiB,
  );
  await rm(dir, { recursive: true, force: true });
}

// ------------------------------------------------------------------ children

async function childWrite(dir: string, bytes: number): Promise<void> {
  const store = await openStore(dir);
  const batch = makeBatch('bench', 0, KiB, 256);
  let announced = false;
  const worker = async () => {
    for (;;) {
      await store.appendBatch(batch);
      if (!announced && store.maxPhysicalOffset() >= bytes) {
        announced = true;
        // Keep appending: the parent kills us mid-stream.
        process.stdout.write(`${JSON.stringify({ written: store.maxPhysicalOffset() })}\n`);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

async function childRss(dir: string, bytes: number): Promise<void> {
  const baselineRss = process.memoryUsage().rss;
  let peakRss = baselineRss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20);
  const store = await openStore(dir);
  const batch = makeBatch('bench', 0, KiB, 256);
  const recordBytes = (await store.appendBatch(batch.slice(0, 1)))[0]!.size;
  const total = Math.ceil(bytes / recordBytes / batch.length) * batch.length;
  const seconds = await appendBatched(store, batch, total, 4);
  await store.close();
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
  process.stdout.write(
    `${JSON.stringify({ baselineRss, peakRss, msgsPerSec: total / seconds })}\n`,
  );
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const childMode = value('child');
  if (childMode) {
    const dir = value('dir')!;
    const bytes = Number(value('bytes'));
    if (childMode === 'write') await childWrite(dir, bytes);
    else await childRss(dir, bytes);
    return;
  }
  const root = value('dir') ?? (await mkdtemp(join(tmpdir(), 'sluice-bench-')));
  const cleanup = () => fs.rmSync(root, { recursive: true, force: true });
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  process.stderr.write(`sluice store benchmark${QUICK ? ' (--quick)' : ''}, data in ${root}\n`);
  try {
    const { readDir, readCount } = await appendSection(root);
    if (readDir !== '') {
      if (wanted('read')) await readSection(readDir, readCount);
      await rm(readDir, { recursive: true, force: true });
    }
    if (wanted('flush')) await flushSection(root);
    if (wanted('recovery')) await recoverySection(root);
    if (wanted('rss')) await rssSection(root);
  } finally {
    cleanup();
  }
  const w = [
    Math.max(4, ...rows.map((r) => r.test.length)),
    Math.max(6, ...rows.map((r) => r.result.length)),
    Math.max(6, ...rows.map((r) => (r.target ?? '').length)),
  ];
  const line = (a: string, b: string, c: string, d: string) =>
    `| ${a.padEnd(w[0]!)} | ${b.padEnd(w[1]!)} | ${c.padEnd(w[2]!)} | ${d.padEnd(4)} |`;
  console.log(line('test', 'result', 'target', 'met'));
  console.log(
    `|${'-'.repeat(w[0]! + 2)}|${'-'.repeat(w[1]! + 2)}|${'-'.repeat(w[2]! + 2)}|------|`,
  );
  for (const r of rows)
    console.log(
      line(r.test, r.result, r.target ?? '', r.ok === undefined ? '' : r.ok ? 'yes' : 'NO'),
    );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
