/**
 * Pure unit tests of the gateway's transport-free parts: send coalescing,
 * broker avoidance, Idempotency-Keys, route caching, message conversion.
 */
import type { Context } from 'hono';
import { describe, expect, it } from 'vitest';
import {
  anyAddrOf,
  brokerAddrMap,
  brokerAddrsJson,
  masterAddrOf,
} from '../../common/broker-addrs.js';
import { Code, isSluiceError } from '../../common/errors.js';
import type { SendEntry } from '../../common/generated/sluice/v1/SendEntry.js';
import type { SendResult__Output } from '../../common/generated/sluice/v1/SendResult.js';
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { silentLogger } from '../../common/logger.js';
import { encodeReceiptHandle } from '../../common/receipt-handle.js';
import { BrokerPool } from '../../gateway/core/broker-pool.js';
import { ClusterView } from '../../gateway/core/cluster-view.js';
import { fingerprintOf, IdempotencyGuard } from '../../gateway/core/idempotency-guard.js';
import { LatencyFaultTolerance } from '../../gateway/core/latency-fault-tolerance.js';
import type { NamesrvClient } from '../../gateway/core/namesrv-client.js';
import { ReceiveStash } from '../../gateway/core/receive-stash.js';
import { RouteResolver } from '../../gateway/core/route-resolver.js';
import { SendBatcher } from '../../gateway/core/send-batcher.js';
import { renderDocsPage } from '../../gateway/http/docs-page.js';
import { isRawSend, rawToMessage, toMessage } from '../../gateway/http/message-json.js';
import { problemResponse } from '../../gateway/http/problem.js';
import { MemoryIdempotencyStore } from '../../gateway/idempotency/memory.js';
import type { RouteCache, TopicRoute } from '../../gateway/route-cache/index.js';
import { MemoryRouteCache } from '../../gateway/route-cache/memory.js';
import { waitFor } from '../harness/wait.js';

const ok = (n: number): SendResult__Output[] =>
  Array.from({ length: n }, (_, i) => ({
    status: { code: Code.OK, message: 'OK', reason: '' },
    message_id: `m${i}`,
    offset_message_id: '',
    queue_id: 0,
    queue_offset: i,
    physical_offset: 0,
    transaction_id: '',
  }));

const entry = (body: string): SendEntry => ({
  message: { topic: 't', body: Buffer.from(body) },
  queue_id: -1,
});

describe('SendBatcher', () => {
  it('coalesces concurrent sends to one broker into one RPC and answers each caller its own entries', async () => {
    const calls: SendEntry[][] = [];
    const b = new SendBatcher(async (_addr, entries) => {
      calls.push(entries);
      return ok(entries.length).map((r, i) => ({
        ...r,
        message_id: String(entries[i]!.message!.body),
      }));
    });
    const answers = await Promise.all([
      b.send('a:1', [entry('x1'), entry('x2')]),
      b.send('a:1', [entry('y1')]),
      b.send('b:1', [entry('z1')]),
    ]);
    expect(calls.map((c) => c.length).sort()).toEqual([1, 3]);
    expect(answers.map((a) => a.map((r) => r.message_id))).toEqual([['x1', 'x2'], ['y1'], ['z1']]);
  });

  it('caps RPCs in flight; what queues meanwhile leaves as one batch', async () => {
    const release: (() => void)[] = [];
    const sizes: number[] = [];
    const b = new SendBatcher(
      (_addr, entries) =>
        new Promise((resolve) => {
          sizes.push(entries.length);
          release.push(() => resolve(ok(entries.length)));
        }),
      { maxInFlight: 1 },
    );
    const first = b.send('a', [entry('1')]);
    await new Promise((r) => setImmediate(r));
    const rest = Array.from({ length: 10 }, (_, i) => b.send('a', [entry(String(i))]));
    await new Promise((r) => setImmediate(r));
    expect(sizes).toEqual([1]);
    expect(b.queued).toBe(10);
    release.shift()!();
    await first;
    await new Promise((r) => setImmediate(r));
    expect(sizes).toEqual([1, 10]);
    release.shift()!();
    expect((await Promise.all(rest)).every((r) => r.length === 1)).toBe(true);
  });

  it('bounds the queue per broker: past maxQueued a send is refused with 429 and a Retry-After hint', async () => {
    const release: (() => void)[] = [];
    const b = new SendBatcher(
      (_addr, entries) =>
        new Promise((resolve) => {
          release.push(() => resolve(ok(entries.length)));
        }),
      { maxInFlight: 1, maxQueued: 5, maxBatch: 2 },
    );
    const first = b.send('a', [entry('0')]);
    await new Promise((r) => setImmediate(r));
    const queued = Array.from({ length: 5 }, (_, i) => b.send('a', [entry(String(i))]));
    expect(b.queued).toBe(5);
    const refused = await b.send('a', [entry('x')]).catch((e: unknown) => e);
    expect(isSluiceError(refused, Code.TOO_MANY_REQUESTS)).toBe(true);
    const res = problemResponse(
      { req: { path: '/v1/topics/t/messages' } } as unknown as Context,
      refused,
    );
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another broker's lane is not affected; the queue takes sends again once it drains.
    const other = b.send('b', [entry('y')]);
    expect(b.queued).toBe(6);
    while (release.length > 0) {
      release.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all([first, ...queued, other]);
    expect(b.queued).toBe(0);
    const again = b.send('a', [entry('z')]);
    await new Promise((r) => setImmediate(r));
    release.shift()!();
    expect(await again).toHaveLength(1);
  });

  it('splits at maxBatch and fails every caller of a failed RPC', async () => {
    const sizes: number[] = [];
    const b = new SendBatcher(
      async (_addr, entries) => {
        sizes.push(entries.length);
        throw new Error('down');
      },
      { maxBatch: 4 },
    );
    const all = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => b.send('a', [entry(String(i))])),
    );
    expect(all.every((r) => r.status === 'rejected')).toBe(true);
    expect(sizes.every((s) => s <= 4)).toBe(true);
    expect(sizes.reduce((a, b2) => a + b2, 0)).toBe(10);
  });
});

describe('LatencyFaultTolerance', () => {
  it('puts slow or failing brokers last for a while, never drops them', () => {
    let now = 1_000;
    const f = new LatencyFaultTolerance(true, () => now, 3_000);
    const t = [{ brokerName: 'a' }, { brokerName: 'b' }, { brokerName: 'c' }];
    f.update('a', 0, true);
    f.update('b', 600, false);
    expect(f.order(t).map((x) => x.brokerName)).toEqual(['c', 'a', 'b']);
    now += 3_001;
    expect(f.order(t).map((x) => x.brokerName)).toEqual(['a', 'c', 'b']);
    f.update('b', 5, false);
    expect(f.order(t).map((x) => x.brokerName)).toEqual(['a', 'b', 'c']);
    expect(new LatencyFaultTolerance(false).order(t)).toEqual(t);
  });
});

describe('IdempotencyGuard', () => {
  it('runs the first request once; a repeat replays its result; concurrent duplicates wait', async () => {
    const guard = new IdempotencyGuard(new MemoryIdempotencyStore(100), 60_000, 5_000);
    let runs = 0;
    const work = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 30));
      return { id: runs };
    };
    const [a, b] = await Promise.all([
      guard.run('k', 'fp', work, () => true),
      guard.run('k', 'fp', work, () => true),
    ]);
    expect(runs).toBe(1);
    expect([a.replayed, b.replayed].sort()).toEqual([false, true]);
    expect(b.value).toEqual(a.value);
    const again = await guard.run('k', 'fp', work, () => true);
    expect(again).toEqual({ value: { id: 1 }, replayed: true });
  });

  it('refuses a key reused for another request, and forgets keys whose work stored nothing', async () => {
    const guard = new IdempotencyGuard(new MemoryIdempotencyStore(100));
    await guard.run(
      'k',
      'fp1',
      async () => 1,
      () => true,
    );
    await expect(
      guard.run(
        'k',
        'fp2',
        async () => 2,
        () => true,
      ),
    ).rejects.toMatchObject({ code: Code.BAD_REQUEST });
    await guard.run(
      'f',
      'fp',
      async () => 0,
      () => false,
    );
    expect(
      (
        await guard.run(
          'f',
          'fp',
          async () => 5,
          () => true,
        )
      ).value,
    ).toBe(5);
    await expect(
      guard.run(
        'e',
        'fp',
        async () => Promise.reject(new Error('x')),
        () => true,
      ),
    ).rejects.toThrow('x');
    expect(
      (
        await guard.run(
          'e',
          'fp',
          async () => 6,
          () => true,
        )
      ).replayed,
    ).toBe(false);
  });

  it('bounds the in-process store and checks keys', async () => {
    const store = new MemoryIdempotencyStore(3);
    for (let i = 0; i < 10; i++) await store.complete(`k${i}`, 'f', 'r', 60_000);
    expect(store.size).toBe(3);
    // Bytes are bounded too: big answers push the oldest keys out long before the key limit.
    const bySize = new MemoryIdempotencyStore(1_000, Date.now, 10_000);
    for (let i = 0; i < 50; i++) await bySize.complete(`k${i}`, 'f', 'r'.repeat(1_000), 60_000);
    expect(bySize.bytes).toBeLessThanOrEqual(10_000);
    expect(bySize.size).toBeLessThan(10);
    expect((await bySize.claim('k49', 'f', 1_000)).state).toBe('done');
    expect((await bySize.claim('k0', 'f', 1_000)).state).toBe('claimed');
    await bySize.complete('huge', 'f', 'r'.repeat(20_000), 60_000);
    expect(bySize.bytes).toBeLessThanOrEqual(10_000);
    expect((await bySize.claim('k49', 'f', 1_000)).state).toBe('done');
    expect(() => IdempotencyGuard.checkKey('')).toThrow();
    expect(() => IdempotencyGuard.checkKey('a b')).toThrow();
    expect(IdempotencyGuard.checkKey('order-42')).toBe('order-42');
    expect(fingerprintOf('a', 'b')).not.toBe(fingerprintOf('ab'));
  });
});

describe('RouteResolver', () => {
  const route = (topic: string, addr = '127.0.0.1:1'): TopicRoute => ({
    topic,
    queue_datas: [
      {
        broker_name: 'a',
        read_queue_nums: 4,
        write_queue_nums: 4,
        perm: 6,
        message_type: 'NORMAL',
      },
    ],
    broker_datas: [{ cluster: 'c', broker_name: 'a', broker_addrs: { '0': addr } }],
    status: null,
  });

  it('serves from the cache, refreshes ahead of expiry in the background, caches "not found" briefly', async () => {
    let now = 0;
    let loads = 0;
    let addr = 'x:1';
    const ns = {
      routes: async ([t]: readonly string[]) => {
        loads++;
        if (t === 'missing') {
          return [
            {
              ...route(t!),
              queue_datas: [],
              broker_datas: [],
              status: { code: Code.TOPIC_NOT_FOUND, message: '', reason: '' },
            },
          ];
        }
        return [route(t!, addr)];
      },
    };
    const r = new RouteResolver(
      ns,
      new MemoryRouteCache(() => now),
      30_000,
      silentLogger,
      () => now,
      {
        refreshAheadMs: 5_000,
        negativeTtlMs: 1_000,
      },
    );
    expect((await r.writable('t'))[0]!.addr).toBe('x:1');
    await r.writable('t');
    expect(loads).toBe(1);
    now = 26_000;
    addr = 'y:1';
    expect((await r.writable('t'))[0]!.addr).toBe('x:1'); // still served …
    await new Promise((res) => setImmediate(res));
    expect(loads).toBe(2); // … while refreshed
    expect((await r.writable('t'))[0]!.addr).toBe('y:1');
    await expect(r.readable('missing')).rejects.toMatchObject({ code: Code.TOPIC_NOT_FOUND });
    await r.writable('missing');
    expect(loads).toBe(3);
    now += 1_001;
    await r.writable('missing');
    expect(loads).toBe(4);
  });

  it('treats a failing cache as a miss and a stale route as better than none', async () => {
    let down = false;
    const ns = {
      routes: async ([t]: readonly string[]) => {
        if (down) throw new Error('no name server');
        return [route(t!)];
      },
    };
    const broken: RouteCache = {
      get: () => Promise.reject(new Error('redis down')),
      set: () => Promise.reject(new Error('redis down')),
      invalidate: () => Promise.reject(new Error('redis down')),
      close: async () => {},
    };
    const r1 = new RouteResolver(ns, broken, 1_000, silentLogger);
    expect(await r1.writable('t')).toHaveLength(1);
    let now = 0;
    const r2 = new RouteResolver(
      ns,
      new MemoryRouteCache(() => now),
      1_000,
      silentLogger,
      () => now,
    );
    await r2.writable('t');
    now = 5_000;
    down = true;
    expect(await r2.writable('t')).toHaveLength(1);
  });

  it('keeps at most localMaxEntries routes in process (LRU) in front of a shared cache', async () => {
    let loads = 0;
    const ns = {
      routes: async ([t]: readonly string[]) => {
        loads++;
        return [route(t!)];
      },
    };
    const r = new RouteResolver(ns, new MemoryRouteCache(), 30_000, silentLogger, Date.now, {
      localTtlMs: 60_000,
      localMaxEntries: 50,
    });
    await r.writable('hot');
    for (let i = 0; i < 500; i++) {
      await r.writable(`t${i}`);
      if (i % 10 === 0) await r.writable('hot');
    }
    expect(r.localSize).toBe(50);
    expect(loads).toBe(501);
    await r.writable('hot');
    expect(loads).toBe(501);
  });

  it('reads broker ids from int32 map keys, master first', () => {
    const addrs = { 1: 's:1', 0: 'm:1' };
    expect(masterAddrOf(addrs)).toBe('m:1');
    expect(brokerAddrsJson(addrs)).toEqual({ '0': 'm:1', '1': 's:1' });
    expect(anyAddrOf({ '1': 's:1' })).toBe('s:1');
    expect(masterAddrOf({ '1': 's:1' })).toBeUndefined();
    expect(masterAddrOf({ '0': 'm:2' })).toBe('m:2');
  });

  it("builds a record's address map once; a new record (a reloaded route) gets its own", () => {
    const addrs = { '0': 'm:1' };
    const map = brokerAddrMap(addrs);
    expect(brokerAddrMap(addrs)).toBe(map);
    expect([...brokerAddrMap({ '2': 's:2', '0': 'm:1' })]).toEqual([
      [0, 'm:1'],
      [2, 's:2'],
    ]);
    expect([...brokerAddrMap(undefined)]).toEqual([]);
  });
});

describe('ReceiveStash', () => {
  const msg = (id: string, popTime: number, invisibleMs: number): StoredMessage__Output =>
    ({
      message: { message_id: id },
      receipt_handle: encodeReceiptHandle(
        {
          brokerName: 'a',
          topic: 't',
          queueId: 0,
          offset: 0,
          popTime,
          invisibleMs,
          attempt: 1,
          group: 'g',
        },
        'secret',
      ),
    }) as unknown as StoredMessage__Output;

  it('hands held messages to the next receive of the key, else back to the broker after the hold; bounded', async () => {
    const released: string[] = [];
    const stash = new ReceiveStash(
      async (_t, _g, msgs) => {
        released.push(...msgs.map((m) => m.message!.message_id));
      },
      200,
      3,
    );
    const key = ReceiveStash.keyOf('t', 'g', '*');
    let woken = 0;
    const off = stash.onPut(key, () => woken++);
    const now = Date.now();
    stash.put(key, 't', 'g', [msg('m1', now, 60_000), msg('m2', now, 60_000)]);
    expect(woken).toBe(1);
    off();
    expect(stash.take(ReceiveStash.keyOf('t', 'g', 'TagA'), 5)).toEqual([]);
    expect(stash.take(key, 1).map((s) => s.message.message!.message_id)).toEqual(['m1']);
    // Over the bound: the surplus goes back at once.
    stash.put(key, 't', 'g', [
      msg('m3', now, 60_000),
      msg('m4', now, 60_000),
      msg('m5', now, 60_000),
    ]);
    expect(stash.size).toBe(3);
    expect(released).toEqual(['m5']);
    await waitFor('held messages handed back', () => released.length === 4, 2_000, 20);
    expect(released.sort()).toEqual(['m2', 'm3', 'm4', 'm5']);
    expect(stash.size).toBe(0);
    stash.put(key, 't', 'g', [msg('m6', now, 60_000)]);
    await stash.drain();
    expect(released).toContain('m6');
    expect(stash.stats).toEqual({ stashed: 5, reused: 1, released: 5 });

    // A message whose handle is about to expire is not held for the full hold.
    const back: string[] = [];
    const long = new ReceiveStash(async (_t, _g, msgs) => {
      back.push(...msgs.map((m) => m.message!.message_id));
    }, 60_000);
    long.put(key, 't', 'g', [
      msg('old', Date.now() - 59_000, 60_000),
      msg('new', Date.now(), 60_000),
    ]);
    await waitFor('expiring message handed back', () => back.length > 0, 1_000, 20);
    expect(back).toEqual(['old']);
    await long.drain();
    expect(back).toEqual(['old', 'new']);
  });
});

describe('ClusterView', () => {
  it('remembers the orderly flag of at most maxGroups groups', async () => {
    const namesrv = {
      clusterInfo: async () => ({ broker_addr_table: {}, cluster_addr_table: {} }),
    } as unknown as NamesrvClient;
    const view = new ClusterView({
      namesrv,
      brokers: new BrokerPool(),
      logger: silentLogger,
      rpcTimeoutMs: 1_000,
      maxGroups: 20,
    });
    for (let i = 0; i < 200; i++) expect(await view.isOrderlyGroup(`g${i}`)).toBe(false);
    expect(view.cachedGroups).toBe(20);
  });
});

describe('REST message conversion', () => {
  it('raw mode takes attributes from x-mq-* headers', () => {
    const h = new Headers({
      'content-type': 'application/octet-stream',
      'x-mq-tag': 'TagA',
      'x-mq-keys': 'k1, k2',
      'x-mq-message-group': 'g1',
      'x-mq-delay-seconds': '5',
      'x-mq-property-color': 'red',
    });
    expect(isRawSend(h)).toBe(true);
    expect(isRawSend(new Headers({ 'content-type': 'application/json' }))).toBe(false);
    expect(isRawSend(new Headers({ 'content-type': 'application/json', 'x-mq-tag': 'a' }))).toBe(
      true,
    );
    const m = rawToMessage(Buffer.from([0, 1, 2]), h, 1_000);
    expect(m).toMatchObject({
      tag: 'TagA',
      keys: ['k1', 'k2'],
      message_group: 'g1',
      delivery_timestamp_ms: 6_000,
      properties: { color: 'red' },
    });
    try {
      rawToMessage(Buffer.from('x'), new Headers({ 'x-mq-delay-seconds': 'soon' }));
      expect.unreachable();
    } catch (err) {
      expect(isSluiceError(err) && err.details?.field).toBe('x-mq-delay-seconds');
    }
  });

  it('checks base64 bodies and names the entry', () => {
    expect(String(toMessage({ body: 'aGk=', bodyEncoding: 'base64' }).body)).toBe('hi');
    expect(() => toMessage({ body: 'not base64!', bodyEncoding: 'base64' }, 0, 3)).toThrow(
      /messages\.3\.body/,
    );
    expect(() =>
      toMessage({ body: 'x', bodyEncoding: 'utf8', delaySeconds: 1, deliveryTime: 5 }),
    ).toThrow();
  });

  it('renders /docs from an OpenAPI document, escaping text', () => {
    const html = renderDocsPage({
      openapi: '3.1.0',
      info: { title: 'T <x>', version: '1' },
      paths: { '/a': { get: { summary: 'get a', responses: { 200: { description: 'ok' } } } } },
    });
    expect(html).toContain('T &#60;x&#62;');
    expect(html).toContain('/a');
  });
});
