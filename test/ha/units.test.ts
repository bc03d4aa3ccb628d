/**
 * Unit tests of the replication pieces that need no process: the SYNC_MASTER
 * group wait, the wake-up, slave-read advice, the slave's read-only store,
 * metadata snapshots applied to real metadata managers, consumer offsets in
 * both directions (forward only on the slave unless explicitly reset; the
 * slave's higher offsets taken by the master), and the per-slave lag clock.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AppendTimeline } from '../../broker/ha/append-timeline.js';
import { MetadataApplier } from '../../broker/ha/metadata-applier.js';
import {
  decodeMetadata,
  encodeMetadata,
  readMetadataSnapshot,
  validateMetadata,
} from '../../broker/ha/metadata-snapshot.js';
import { mergeSlaveOffsets, OffsetResetLog, RESETS_FILE } from '../../broker/ha/offset-sync.js';
import { readOnlyStore } from '../../broker/ha/read-only-store.js';
import { SlaveAckWaiters } from '../../broker/ha/slave-ack-waiters.js';
import { suggestBrokerId } from '../../broker/ha/slave-read-advice.js';
import { Wakeup } from '../../broker/ha/wakeup.js';
import { ConsumerOffsetManager } from '../../broker/metadata/consumer-offset-manager.js';
import { SubscriptionGroupManager } from '../../broker/metadata/subscription-group-manager.js';
import { TopicConfigManager } from '../../broker/metadata/topic-config-manager.js';
import { BROKER_SCHEMA, type BrokerOptions } from '../../broker/options.js';
import type { MessageStore } from '../../broker/store/index.js';
import { Code } from '../../common/errors.js';
import { silentLogger } from '../../common/logger.js';
import { makeTempDir } from '../harness/tmp.js';

const defaults = Object.fromEntries(
  Object.entries(BROKER_SCHEMA).map(([k, spec]) => [k, spec.default]),
) as unknown as BrokerOptions;

afterEach(() => {
  vi.useRealTimers();
});

describe('SlaveAckWaiters', () => {
  it('settles every waiter at or below one ack, and none above it', async () => {
    const w = new SlaveAckWaiters(1_000);
    const settled: number[] = [];
    const offsets = [100, 300, 200, 400, 150];
    const all = offsets.map((o) => w.wait(o).then(() => settled.push(o)));
    expect(w.size).toBe(5);
    w.advance(300);
    await new Promise((r) => setImmediate(r));
    expect(settled.sort((a, b) => a - b)).toEqual([100, 150, 200, 300]);
    expect(w.size).toBe(1);
    w.advance(1_000);
    await Promise.all(all);
    expect(w.size).toBe(0);
    // Below what is acked: at once.
    await w.wait(999);
  });

  it('times out with FLUSH_SLAVE_TIMEOUT after the slave timeout', async () => {
    vi.useFakeTimers();
    const w = new SlaveAckWaiters(200, () => Date.now());
    const p = w.wait(10);
    const seen = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(260);
    const err = (await seen) as { code: number; message: string };
    expect(err.code).toBe(Code.SLAVE_PERSISTENCE_TIMEOUT);
    expect(err.message).toMatch(/FLUSH_SLAVE_TIMEOUT/);
    expect(w.timedOut).toBe(1);
    expect(w.size).toBe(0);
  });
});

describe('Wakeup', () => {
  it('remembers a notify that found nobody asleep, and times out otherwise', async () => {
    const w = new Wakeup();
    w.notify();
    const t0 = Date.now();
    await w.wait(5_000);
    expect(Date.now() - t0).toBeLessThan(1_000);
    const t1 = Date.now();
    await w.wait(30);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(25);
    const sleeping = w.wait(5_000);
    w.notify();
    await sleeping;
  });
});

describe('slave-read advice', () => {
  const store = { maxPhysicalOffset: () => 10_000 } as unknown as MessageStore;
  const groups = {
    get: (g: string) => (g === 'slow' ? { which_broker_when_consume_slowly: 2 } : undefined),
  };
  const deps = (over: Partial<BrokerOptions>) => ({
    options: { ...defaults, ...over },
    store,
    groups: groups as never,
    totalMemoryBytes: 1_000,
  });

  it('sends a consumer far behind to whichBrokerWhenConsumeSlowly, only with slaveReadEnable', () => {
    // 40% of 1000 bytes of memory = 400 bytes: 9000 behind is "far".
    expect(suggestBrokerId(deps({ slaveReadEnable: false }), 'g', 1_000)).toBe(0);
    expect(suggestBrokerId(deps({ slaveReadEnable: true }), 'g', 1_000)).toBe(1);
    expect(suggestBrokerId(deps({ slaveReadEnable: true }), 'slow', 1_000)).toBe(2);
    expect(suggestBrokerId(deps({ slaveReadEnable: true }), 'g', 9_900)).toBe(0);
    expect(suggestBrokerId(deps({ slaveReadEnable: true }), 'g', -1)).toBe(0);
  });
});

describe('readOnlyStore', () => {
  it('refuses appendBatch with NOT_MASTER and passes everything else through', async () => {
    const inner = {
      n: 7,
      maxPhysicalOffset(this: { n: number }) {
        return this.n;
      },
      appendBatch: () => Promise.resolve([]),
    } as unknown as MessageStore;
    const ro = readOnlyStore(inner, 'broker-a');
    await expect(ro.appendBatch([])).rejects.toMatchObject({
      code: Code.FORBIDDEN,
      reason: 'NOT_MASTER',
    });
    const { maxPhysicalOffset } = ro;
    expect(maxPhysicalOffset()).toBe(7);
  });
});

describe('metadata snapshot', () => {
  it('ships every config JSON file but broker.json, and validates what it receives', async () => {
    const tmp = makeTempDir();
    try {
      const dir = join(tmp.path, 'config');
      mkdirSync(dir);
      writeFileSync(join(dir, 'topics.json'), '{"dataVersion":1,"topics":{}}');
      writeFileSync(join(dir, 'timerProgress.json'), '{"x":1}');
      writeFileSync(join(dir, 'broker.json'), '{"perm":2}');
      writeFileSync(join(dir, 'topics.json.tmp'), 'partial');
      const s = await readMetadataSnapshot(dir, [
        { group: '#timer', topic: 't', queueId: 0, base: 3 },
      ]);
      expect(Object.keys(s.files)).toEqual(['timerProgress.json', 'topics.json']);
      expect(validateMetadata(decodeMetadata(encodeMetadata(s)))).toEqual(s);
      expect(() => validateMetadata({ v: 1, files: { '../x': '{}' }, readers: [] })).toThrow(
        /plain name/,
      );
      expect(() => decodeMetadata(Buffer.from('{nope'))).toThrow(/not JSON/);
    } finally {
      tmp.remove();
    }
  });

  it('applies topics, groups, offsets and other files on a slave, idempotently', async () => {
    const tmp = makeTempDir();
    try {
      const root = tmp.path;
      const topics = new TopicConfigManager(root, {
        autoCreateTopicEnable: true,
        defaultTopicQueueNums: 4,
      });
      const groups = new SubscriptionGroupManager(root, true, 16);
      const offsets = new ConsumerOffsetManager(root);
      await topics.upsert({ topic_name: 'gone-on-master' });
      const applier = new MetadataApplier({
        configDir: join(root, 'config'),
        topics,
        groups,
        offsets,
        logger: silentLogger,
      });
      const snapshot = {
        v: 1,
        files: {
          'topics.json': JSON.stringify({
            dataVersion: 3,
            topics: {
              T: {
                topic_name: 'T',
                read_queue_nums: 8,
                write_queue_nums: 8,
                perm: 6,
                message_type: 'NORMAL',
                order: false,
              },
            },
          }),
          'subscriptionGroup.json': JSON.stringify({
            G: {
              group_name: 'G',
              consume_enable: true,
              consume_broadcast_enable: true,
              retry_max_times: 3,
              consume_message_orderly: false,
              which_broker_when_consume_slowly: 1,
            },
          }),
          'consumerOffset.json': JSON.stringify({ 'T@G': { '0': 5, '1': 9 } }),
          'timerProgress.json': '{"delivered":12}',
        },
        readers: [],
      };
      const first = await applier.apply(snapshot);
      expect(first).toEqual({ topics: 2, groups: 1, offsets: 2, files: 1, readers: 0 });
      expect(topics.all().map((t) => [t.topic_name, t.read_queue_nums])).toEqual([['T', 8]]);
      expect(groups.get('G')?.retry_max_times).toBe(3);
      expect(offsets.get('G', 'T', 1)).toBe(9);
      expect(readFileSync(join(root, 'config', 'timerProgress.json'), 'utf8')).toBe(
        '{"delivered":12}',
      );
      const again = await applier.apply(snapshot);
      expect(again).toEqual({ topics: 0, groups: 0, offsets: 0, files: 0, readers: 0 });
      await offsets.close();
    } finally {
      tmp.remove();
    }
  });
});

describe('consumer offsets between master and slave', () => {
  it('a slave moves offsets forward only, except for an explicit reset, applied once', async () => {
    const tmp = makeTempDir();
    try {
      const root = tmp.path;
      const offsets = new ConsumerOffsetManager(root);
      const applier = new MetadataApplier({
        configDir: join(root, 'config'),
        topics: new TopicConfigManager(root, {
          autoCreateTopicEnable: true,
          defaultTopicQueueNums: 4,
        }),
        groups: new SubscriptionGroupManager(root, true, 16),
        offsets,
        logger: silentLogger,
      });
      const snap = (files: Record<string, unknown>) => ({
        v: 1,
        files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, JSON.stringify(v)])),
        readers: [],
      });
      await applier.apply(snap({ 'consumerOffset.json': { 'T@G': { '0': 10, '1': 4 } } }));
      // Consumed on this slave while the master was down.
      offsets.commit('G', 'T', 0, 30);
      // The returned master's older copy does not move it back; higher ones still apply.
      await applier.apply(snap({ 'consumerOffset.json': { 'T@G': { '0': 12, '1': 6 } } }));
      expect([offsets.get('G', 'T', 0), offsets.get('G', 'T', 1)]).toEqual([30, 6]);
      expect(applier.handshakeOffsets()).toEqual({
        offsets: { 'T@G': { '0': 30, '1': 6 } },
        resets: {},
      });
      // An explicit reset on the master goes back, once.
      const reset = { 'T@G': { '0': { offset: 2, seq: 100 } } };
      await applier.apply(
        snap({ [RESETS_FILE]: reset, 'consumerOffset.json': { 'T@G': { '0': 2, '1': 6 } } }),
      );
      expect(offsets.get('G', 'T', 0)).toBe(2);
      offsets.commit('G', 'T', 0, 8);
      await applier.apply(snap({ [RESETS_FILE]: reset }));
      expect(offsets.get('G', 'T', 0)).toBe(8);
      expect(applier.handshakeOffsets().resets).toEqual({ 'T@G': { '0': 100 } });
      // The applied resets survive a restart of the slave (the file is written here).
      expect(JSON.parse(readFileSync(join(root, 'config', RESETS_FILE), 'utf8'))).toEqual(reset);
      await offsets.close();
    } finally {
      tmp.remove();
    }
  });

  it("a master takes a slave's higher offsets, unless it reset the queue since", async () => {
    const tmp = makeTempDir();
    try {
      const root = tmp.path;
      const offsets = new ConsumerOffsetManager(root);
      const resets = new OffsetResetLog(join(root, 'config'), () => 1_000);
      offsets.commit('G', 'T', 0, 10);
      offsets.commit('G', 'T', 1, 10);
      offsets.commit('G', 'T', 2, 50);
      await resets.note('G', 'T', 1, 10);
      const moved = await mergeSlaveOffsets(
        { offsets, resets, logger: silentLogger },
        {
          // Queue 0 progressed on the slave; queue 1 too, but before the master's reset;
          // queue 2 is behind the master; queue 3 only the slave knows.
          offsets: { 'T@G': { '0': 40, '1': 40, '2': 20, '3': 7 } },
          resets: {},
        },
        'slave:1',
      );
      expect(moved).toBe(2);
      expect([0, 1, 2, 3].map((q) => offsets.get('G', 'T', q))).toEqual([40, 10, 50, 7]);
      // Once the slave applied that reset, its later progress counts.
      await mergeSlaveOffsets(
        { offsets, resets, logger: silentLogger },
        { offsets: { 'T@G': { '1': 15 } }, resets: { 'T@G': { '1': resets.seq('T@G', '1') } } },
        'slave:1',
      );
      expect(offsets.get('G', 'T', 1)).toBe(15);
      await offsets.close();
    } finally {
      tmp.remove();
    }
  });
});

describe('AppendTimeline', () => {
  it('answers how long ago the master first held a byte a slave lacks', () => {
    const t = new AppendTimeline(5, 4);
    t.note(100, 1_000);
    t.note(150, 1_002); // same 5 ms slot: raises its end
    t.note(300, 1_010);
    t.note(400, 1_020);
    expect(t.lagMs(400, 400, 1_030)).toBe(0);
    expect(t.lagMs(350, 400, 1_030)).toBe(10);
    expect(t.lagMs(160, 400, 1_030)).toBe(20);
    expect(t.lagMs(120, 400, 1_030)).toBe(30);
    t.note(500, 1_030);
    t.note(600, 1_040); // the ring (4 samples) drops the oldest: older lags are at least its age
    expect(t.lagMs(0, 600, 1_050)).toBe(40);
  });
});
