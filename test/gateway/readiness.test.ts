/**
 * A gateway that boots before any broker (as `npm start` boots its three
 * processes side by side) turns ready on the first /readyz after the name
 * server lists a broker: a not-ready answer is never reused from a cache.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterInfo__Output } from '../../common/generated/sluice/v1/ClusterInfo.js';
import type { Empty } from '../../common/generated/sluice/v1/Empty.js';
import { callUnary } from '../../common/grpc.js';
import { namesrvClient } from '../harness/clients.js';
import { type Cluster, Node, startCluster, TEST_BROKER_DEFAULTS } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';

describe('gateway readiness', () => {
  let c: Cluster;
  let broker: Node | undefined;
  beforeAll(async () => {
    c = await startCluster({ brokers: [], gateway: true });
  });
  afterAll(async () => {
    await broker?.stop();
    broker?.child.dispose();
    await c?.close();
  });

  it('is ready on the first probe after a broker registers', async () => {
    const readyz = async () => {
      const r = await fetch(`${c.http}/readyz`);
      return { status: r.status, body: (await r.json()) as unknown };
    };
    expect(await readyz()).toEqual({
      status: 503,
      body: { ready: false, namesrv: true, broker: false },
    });

    broker = new Node(
      'broker-a-0',
      'mqbroker',
      [
        '-n',
        c.namesrvAddr,
        'brokerName=broker-a',
        `storePathRootDir=${join(c.dir, 'broker-a')}`,
        `registerBrokerInterval=${TEST_BROKER_DEFAULTS.registerBrokerInterval}`,
      ],
      'listenPort',
      join(c.dir, 'broker-a.log'),
    );
    const booting = broker.start();
    const ns = namesrvClient(c.namesrvAddr);
    try {
      // Probe all along, as a load balancer would, so that a cached "not ready"
      // would still be fresh when the name server starts listing the broker.
      let notReady = 0;
      await waitFor(
        'the name server lists broker-a',
        async () => {
          if ((await readyz()).status === 503) notReady++;
          const info = await callUnary<Empty, ClusterInfo__Output>(ns, ns.GetClusterInfo, {});
          return Object.keys(info.broker_addr_table).includes('broker-a');
        },
        30_000,
        10,
      );
      expect(notReady).toBeGreaterThan(0);
      expect(await readyz()).toEqual({
        status: 200,
        body: { ready: true, namesrv: true, broker: true },
      });
    } finally {
      ns.close();
      await booting;
    }
  });
});
