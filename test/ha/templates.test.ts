/**
 * Every deploy/conf template runs with `sluice cluster --conf …` on one
 * machine (free ports, temp data) and does what its layout promises: sends
 * through the gateway are answered OK, and in 2m-2s-* every slave follows its
 * master to the same commitlog end.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClusterMember, type RunningCluster, startCluster } from '../../cli/cluster.js';
import { DEFAULT_READY_TIMEOUT_MS } from '../../cli/supervisor.js';
import { makeTempDir } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';
import { rest, statsOf } from './ha-helpers.js';

const CONF = join(import.meta.dirname, '..', '..', 'deploy', 'conf');

let running: { cluster: RunningCluster; remove: () => void } | undefined;
afterEach(async () => {
  await running?.cluster.stop();
  running?.remove();
  running = undefined;
});

const httpOf = (gw: ClusterMember) => `http://${/http=(\S+)/.exec(gw.address)![1]}`;

describe('deploy/conf templates under sluice cluster', () => {
  for (const [template, slaves] of [
    ['single', 0],
    ['2m-noslave', 0],
    ['2m-2s-async', 2],
    ['2m-2s-sync', 2],
  ] as const) {
    it(`${template}: sends answered OK${slaves ? ', slaves in step with their masters' : ''}`, async () => {
      const data = makeTempDir('sluice-ha-tpl-');
      const cluster = await startCluster({
        conf: join(CONF, template),
        namesrv: 1,
        data: data.path,
        gateway: true,
        freePorts: true,
        brokerArgs: [],
        gatewayArgs: [],
        readyTimeoutMs: DEFAULT_READY_TIMEOUT_MS * 2,
      });
      running = { cluster, remove: data.remove };
      const brokers = cluster.members.filter(
        (m) => m.role.endsWith('MASTER') || m.role === 'SLAVE',
      );
      const masters = brokers.filter((m) => m.role !== 'SLAVE');
      expect(brokers.length - masters.length).toBe(slaves);
      for (const s of brokers.filter((m) => m.role === 'SLAVE')) {
        await waitFor(
          `${s.name} connected to its master`,
          async () => {
            const st = await statsOf(s.address);
            return st.haConnected === 'true' || undefined;
          },
          40_000,
        );
      }
      const http = httpOf(cluster.members.find((m) => m.role === 'GATEWAY')!);
      const body = {
        messages: Array.from({ length: 16 }, (_, i) => ({ body: `${template}-${i}` })),
      };
      const sent = await waitFor(
        'gateway answers the send',
        async () => {
          const r = await rest(
            http,
            'POST',
            `/v1/topics/Tpl${template.replace(/-/g, '')}/messages`,
            body,
          );
          return r.status === 200 ? r : undefined;
        },
        20_000,
        200,
      );
      for (const r of sent.json.results) expect(r.status).toBe('OK');
      for (const s of brokers.filter((m) => m.role === 'SLAVE')) {
        const st = await statsOf(s.address);
        const master = masters.find((m) => m.name === s.name.replace(/-s$/, ''))!;
        expect(st.haMasterAddress).toBe(master.address);
        await waitFor(`${s.name} caught up`, async () => {
          const [m, sl] = [await statsOf(master.address), await statsOf(s.address)];
          return m.maxPhysicalOffset === sl.maxPhysicalOffset || undefined;
        });
      }
    });
  }
});
