import { describe, expect, it } from 'vitest';
import { Code } from '../../common/errors.js';
import { Perm } from '../../common/names.js';
import { type RegisterRequest, RouteTable, type TopicConfig } from '../../namesrv/route-table.js';

function topic(name: string, queues = 4, perm: number = Perm.READ_WRITE): TopicConfig {
  return {
    topic_name: name,
    read_queue_nums: queues,
    write_queue_nums: queues,
    perm,
    message_type: 'NORMAL',
    order: false,
  };
}

function reg(over: Partial<RegisterRequest> = {}): RegisterRequest {
  return {
    cluster_name: 'DefaultCluster',
    broker_name: 'broker-a',
    broker_id: 0,
    broker_addr: '127.0.0.1:10911',
    broker_role: 'ASYNC_MASTER',
    topics: [],
    data_version: 1,
    heartbeat_timeout_ms: 0,
    max_physical_offset: 0,
    perm: Perm.READ_WRITE,
    ...over,
  };
}

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe('RouteTable', () => {
  it('builds routes with queue data per group and broker addresses by id', () => {
    const routes = new RouteTable({ defaultExpireMs: 120_000 });
    routes.register(reg({ topics: [topic('T1', 8)] }));
    routes.register(
      reg({ broker_name: 'broker-b', broker_addr: '127.0.0.1:10921', topics: [topic('T1', 4)] }),
    );
    const slave = routes.register(
      reg({
        broker_id: 1,
        broker_addr: '127.0.0.1:10941',
        broker_role: 'SLAVE',
        topics: [topic('T1', 8)],
      }),
    );
    expect(slave.masterAddr).toBe('127.0.0.1:10911');

    const route = routes.topicRoute('T1');
    expect(route.status).toEqual({ code: Code.OK, message: 'OK', reason: '' });
    expect(route.queue_datas).toEqual([
      {
        broker_name: 'broker-a',
        read_queue_nums: 8,
        write_queue_nums: 8,
        perm: 6,
        message_type: 'NORMAL',
      },
      {
        broker_name: 'broker-b',
        read_queue_nums: 4,
        write_queue_nums: 4,
        perm: 6,
        message_type: 'NORMAL',
      },
    ]);
    expect(route.broker_datas).toEqual([
      {
        cluster: 'DefaultCluster',
        broker_name: 'broker-a',
        broker_addrs: { 0: '127.0.0.1:10911', 1: '127.0.0.1:10941' },
      },
      {
        cluster: 'DefaultCluster',
        broker_name: 'broker-b',
        broker_addrs: { 0: '127.0.0.1:10921' },
      },
    ]);
    expect(routes.topicList()).toEqual(['T1']);
    expect(routes.brokerNamesOfCluster('DefaultCluster')).toEqual(['broker-a', 'broker-b']);
  });

  it('answers TOPIC_NOT_FOUND in the route entry of an unknown topic', () => {
    const routes = new RouteTable({ defaultExpireMs: 120_000 });
    routes.register(reg({ topics: [topic('T1')] }));
    const route = routes.topicRoute('nope');
    expect(route.status?.code).toBe(Code.TOPIC_NOT_FOUND);
    expect(route.queue_datas).toEqual([]);
  });

  it('treats a master registration as the full topic set', () => {
    const routes = new RouteTable({ defaultExpireMs: 120_000 });
    routes.register(reg({ topics: [topic('T1'), topic('T2')] }));
    routes.register(reg({ topics: [topic('T2')], data_version: 2 }));
    expect(routes.topicList()).toEqual(['T2']);
  });

  it('ignores slave topics while a master is registered, uses them read-only without one', () => {
    const routes = new RouteTable({ defaultExpireMs: 120_000 });
    routes.register(
      reg({
        broker_id: 1,
        broker_addr: '127.0.0.1:10941',
        broker_role: 'SLAVE',
        topics: [topic('T1')],
      }),
    );
    expect(routes.topicRoute('T1').queue_datas[0]?.perm).toBe(Perm.READ);
    routes.register(reg({ topics: [topic('T2')] }));
    expect(routes.topicList()).toEqual(['T2']);
    expect(routes.topicRoute('T2').queue_datas[0]?.perm).toBe(Perm.READ_WRITE);
    routes.register(
      reg({
        broker_id: 1,
        broker_addr: '127.0.0.1:10941',
        broker_role: 'SLAVE',
        topics: [topic('T1')],
      }),
    );
    expect(routes.topicList()).toEqual(['T2']);
  });

  it('expires a silent broker after its own heartbeat timeout, else the default', () => {
    const c = clock();
    const routes = new RouteTable({ defaultExpireMs: 10_000, now: c.now });
    routes.register(reg({ topics: [topic('T1')], heartbeat_timeout_ms: 3_000 }));
    routes.register(
      reg({ broker_name: 'broker-b', broker_addr: '127.0.0.1:10921', topics: [topic('T1')] }),
    );

    c.t += 3_000;
    expect(routes.scanNotActiveBrokers()).toEqual([]);
    c.t += 1;
    expect(routes.scanNotActiveBrokers().map((b) => b.brokerName)).toEqual(['broker-a']);
    expect(routes.topicRoute('T1').queue_datas.map((q) => q.broker_name)).toEqual(['broker-b']);
    expect(routes.clusterInfo().broker_addr_table).not.toHaveProperty('broker-a');

    // A heartbeat keeps broker-b alive past the default.
    c.t += 9_000;
    routes.register(
      reg({ broker_name: 'broker-b', broker_addr: '127.0.0.1:10921', topics: [topic('T1')] }),
    );
    c.t += 9_000;
    expect(routes.scanNotActiveBrokers()).toEqual([]);
    c.t += 1_001;
    expect(routes.scanNotActiveBrokers().map((b) => b.brokerName)).toEqual(['broker-b']);
    expect(routes.topicRoute('T1').status?.code).toBe(Code.TOPIC_NOT_FOUND);
    expect(routes.clusterInfo()).toEqual({
      broker_addr_table: {},
      cluster_addr_table: {},
      live: {},
    });
  });

  it('keeps a group and its queue data while a slave survives its master', () => {
    const c = clock();
    const routes = new RouteTable({ defaultExpireMs: 10_000, now: c.now });
    routes.register(reg({ topics: [topic('T1')] }));
    routes.register(
      reg({
        broker_id: 1,
        broker_addr: '127.0.0.1:10941',
        broker_role: 'SLAVE',
        topics: [topic('T1')],
      }),
    );
    c.t += 6_000;
    routes.register(
      reg({
        broker_id: 1,
        broker_addr: '127.0.0.1:10941',
        broker_role: 'SLAVE',
        topics: [topic('T1')],
      }),
    );
    c.t += 6_000;
    expect(routes.scanNotActiveBrokers().map((b) => b.addr)).toEqual(['127.0.0.1:10911']);
    const route = routes.topicRoute('T1');
    expect(route.queue_datas).toHaveLength(1);
    expect(route.broker_datas[0]?.broker_addrs).toEqual({ 1: '127.0.0.1:10941' });
    expect(routes.masterAddrOf('broker-a')).toBeUndefined();
  });

  it('unregisters only the exact broker that asks', () => {
    const routes = new RouteTable({ defaultExpireMs: 120_000 });
    routes.register(reg({ topics: [topic('T1')] }));
    const req = { cluster_name: 'DefaultCluster', broker_name: 'broker-a', broker_id: 0 };
    expect(routes.unregister({ ...req, broker_addr: '127.0.0.1:1' })).toBe(false);
    expect(routes.unregister({ ...req, broker_addr: '127.0.0.1:10911' })).toBe(true);
    expect(routes.topicList()).toEqual([]);
  });

  it('replaces the address of a broker restarted on another port', () => {
    const routes = new RouteTable({ defaultExpireMs: 120_000 });
    routes.register(reg());
    routes.register(reg({ broker_addr: '127.0.0.1:20000' }));
    expect(Object.keys(routes.clusterInfo().live)).toEqual(['127.0.0.1:20000']);
    expect(routes.masterAddrOf('broker-a')).toBe('127.0.0.1:20000');
  });

  it('wipes and adds write permission across every topic of a group', () => {
    const routes = new RouteTable({ defaultExpireMs: 120_000 });
    routes.register(reg({ topics: [topic('T1'), topic('T2'), topic('RO', 4, Perm.READ)] }));
    routes.register(
      reg({ broker_name: 'broker-b', broker_addr: '127.0.0.1:10921', topics: [topic('T1')] }),
    );

    expect(routes.wipeWritePerm('broker-a')).toBe(3); // every topic of the group, as RocketMQ counts
    expect(routes.brokerPerm('broker-a')).toBe(Perm.READ);
    const perms = () => routes.topicRoute('T1').queue_datas.map((q) => [q.broker_name, q.perm]);
    expect(perms()).toEqual([
      ['broker-a', Perm.READ],
      ['broker-b', Perm.READ_WRITE],
    ]);
    // A heartbeat already in flight with the old perm does not undo the wipe…
    routes.register(
      reg({ topics: [topic('T1'), topic('T2'), topic('RO', 4, Perm.READ)], perm: 6 }),
    );
    expect(perms()[0]).toEqual(['broker-a', Perm.READ]);
    // …and once the broker confirms, its own perm rules again.
    routes.register(
      reg({ topics: [topic('T1'), topic('T2'), topic('RO', 4, Perm.READ)], perm: 4 }),
    );
    expect(perms()[0]).toEqual(['broker-a', Perm.READ]);

    expect(routes.addWritePerm('broker-a')).toBe(3);
    expect(perms()[0]).toEqual(['broker-a', Perm.READ_WRITE]);
    expect(routes.topicRoute('RO').queue_datas[0]?.perm).toBe(Perm.READ);
    expect(routes.wipeWritePerm('nope')).toBeUndefined();
  });

  it('shows admin topic changes at once and keeps them until the broker confirms', () => {
    const routes = new RouteTable({ defaultExpireMs: 120_000 });
    routes.register(reg({ topics: [topic('OLD')], data_version: 5 }));
    routes.upsertTopic('broker-a', topic('NEW', 8));
    routes.deleteTopic('broker-a', 'OLD');
    expect(routes.topicList()).toEqual(['NEW']);
    // Stale heartbeat (same data version): the admin changes stay.
    routes.register(reg({ topics: [topic('OLD')], data_version: 5 }));
    expect(routes.topicList()).toEqual(['NEW']);
    // The broker's next version is authoritative.
    routes.register(reg({ topics: [topic('NEW', 16)], data_version: 6 }));
    expect(routes.topicRoute('NEW').queue_datas[0]?.read_queue_nums).toBe(16);
    routes.register(reg({ topics: [], data_version: 7 }));
    expect(routes.topicList()).toEqual([]);
  });

  it('drops admin overlays when the master comes back with a wiped store (data version down)', () => {
    const routes = new RouteTable({ defaultExpireMs: 120_000 });
    routes.register(reg({ topics: [topic('KEPT'), topic('OLD')], data_version: 40 }));
    routes.upsertTopic('broker-a', topic('GHOST', 8));
    routes.deleteTopic('broker-a', 'OLD');
    expect(routes.topicList()).toEqual(['GHOST', 'KEPT']);
    // Same address (SIGKILL, restarted before expiry), store wiped: version 1.
    routes.register(reg({ topics: [topic('OLD')], data_version: 1 }));
    expect(routes.topicList()).toEqual(['OLD']);
    expect(routes.topicRoute('GHOST').status?.code).toBe(Code.TOPIC_NOT_FOUND);
    // Its next beats, still below the old version 40, keep showing what it has.
    routes.register(reg({ topics: [topic('OLD'), topic('NEXT')], data_version: 2 }));
    expect(routes.topicList()).toEqual(['NEXT', 'OLD']);
  });

  it('drops admin overlays when the master registers as new (restarted on another port)', () => {
    const routes = new RouteTable({ defaultExpireMs: 120_000 });
    routes.register(reg({ topics: [topic('OLD')], data_version: 3 }));
    routes.upsertTopic('broker-a', topic('GHOST'));
    routes.deleteTopic('broker-a', 'OLD');
    // A wiped store whose version already climbed back past the overlays' tag.
    routes.register(
      reg({ broker_addr: '127.0.0.1:20911', topics: [topic('OLD')], data_version: 3 }),
    );
    expect(routes.topicList()).toEqual(['OLD']);
    // Once known again, a new overlay waits for its next version as usual.
    routes.upsertTopic('broker-a', topic('MADE'));
    routes.register(
      reg({ broker_addr: '127.0.0.1:20911', topics: [topic('OLD')], data_version: 3 }),
    );
    expect(routes.topicList()).toEqual(['MADE', 'OLD']);
  });

  it('reports cluster membership and liveness', () => {
    const c = clock(5_000);
    const routes = new RouteTable({ defaultExpireMs: 120_000, now: c.now });
    routes.register(reg({ max_physical_offset: 42 }));
    routes.register(
      reg({ cluster_name: 'Other', broker_name: 'broker-x', broker_addr: '127.0.0.1:1' }),
    );
    const info = routes.clusterInfo();
    expect(info.cluster_addr_table).toEqual({
      DefaultCluster: { broker_names: ['broker-a'] },
      Other: { broker_names: ['broker-x'] },
    });
    expect(info.live?.['127.0.0.1:10911']).toEqual({
      broker_addr: '127.0.0.1:10911',
      broker_role: 'ASYNC_MASTER',
      last_update_timestamp_ms: 5_000,
      max_physical_offset: 42,
    });
  });
});
