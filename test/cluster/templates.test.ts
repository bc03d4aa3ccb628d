/**
 * deploy/conf templates: RocketMQ's layouts with RocketMQ's keys, loadable by
 * the broker's own config loader without warnings, and arranged so every
 * broker of a template runs on one machine at once.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BROKER_SCHEMA } from '../../broker/options.js';
import { readBrokerFiles } from '../../cli/cluster.js';
import { loadOptions } from '../../common/config/options.js';
import { NAMESRV_SCHEMA } from '../../namesrv/options.js';
import { ROOT } from '../namesrv/harness.js';

const CONF = join(ROOT, 'deploy', 'conf');
const RESERVED_PORTS = [8080, 8081, 9876];

const EXPECTED: Record<string, Record<string, [string, number, string]>> = {
  single: { 'broker-a': ['broker-a', 0, 'ASYNC_MASTER'] },
  '2m-noslave': {
    'broker-a': ['broker-a', 0, 'ASYNC_MASTER'],
    'broker-b': ['broker-b', 0, 'ASYNC_MASTER'],
  },
  '2m-2s-async': {
    'broker-a': ['broker-a', 0, 'ASYNC_MASTER'],
    'broker-b': ['broker-b', 0, 'ASYNC_MASTER'],
    'broker-a-s': ['broker-a', 1, 'SLAVE'],
    'broker-b-s': ['broker-b', 1, 'SLAVE'],
  },
  '2m-2s-sync': {
    'broker-a': ['broker-a', 0, 'SYNC_MASTER'],
    'broker-b': ['broker-b', 0, 'SYNC_MASTER'],
    'broker-a-s': ['broker-a', 1, 'SLAVE'],
    'broker-b-s': ['broker-b', 1, 'SLAVE'],
  },
};

describe('deploy/conf templates', () => {
  it('no two broker files of any templates share a store directory', () => {
    const roots = Object.entries(EXPECTED).flatMap(([template, expected]) =>
      Object.keys(expected).map(
        (name) =>
          loadOptions(BROKER_SCHEMA, { file: join(CONF, template, `${name}.properties`) }).options
            .storePathRootDir,
      ),
    );
    expect(new Set(roots).size).toBe(roots.length);
  });

  it("shows RocketMQ's store path keys (commented out, under the root)", () => {
    for (const [template, expected] of Object.entries(EXPECTED)) {
      for (const name of Object.keys(expected)) {
        const text = readFileSync(join(CONF, template, `${name}.properties`), 'utf8');
        const root = `~/store/${template}/${name}`;
        expect(text).toContain(`\n#storePathCommitLog=${root}/commitlog\n`);
        expect(text).toContain(`\n#storePathConsumeQueue=${root}/consumequeue\n`);
        expect(text).toContain(`\n#storePathIndex=${root}/index\n`);
      }
    }
  });

  it('has the four RocketMQ layouts', () => {
    expect(
      readdirSync(CONF, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort(),
    ).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [template, expected] of Object.entries(EXPECTED)) {
    describe(template, () => {
      const dir = join(CONF, template);
      const files = Object.keys(expected).map((name) => join(dir, `${name}.properties`));
      const loaded = files.map((file) => ({ file, ...loadOptions(BROKER_SCHEMA, { file }) }));

      it('loads with the broker schema, no unknown keys', () => {
        for (const l of loaded) expect(l.warnings, l.file).toEqual([]);
      });

      it("uses RocketMQ's keys and values", () => {
        for (const [i, [brokerName, brokerId, role]] of Object.values(expected).entries()) {
          const o = loaded[i]!.options;
          expect(o.brokerClusterName).toBe('DefaultCluster');
          expect([o.brokerName, o.brokerId, o.brokerRole]).toEqual([brokerName, brokerId, role]);
          expect(o.flushDiskType).toBe('ASYNC_FLUSH');
          expect(o.deleteWhen).toBe('04');
          expect(o.fileReservedTime).toBe(48);
          // Per template, so that switching templates never reuses a store.
          expect(o.storePathRootDir).toBe(`~/store/${template}/${Object.keys(expected)[i]}`);
          // Written out in the file, as RocketMQ's docs do, not left to defaults.
          for (const key of ['listenPort', 'storePathRootDir', 'brokerRole', 'flushDiskType']) {
            expect(loaded[i]!.sources, `${key} set in ${loaded[i]!.file}`).toHaveProperty(key);
          }
        }
      });

      it('can run every broker on one machine: distinct ports and store dirs, clear of namesrv and gateway', () => {
        const ports = loaded.map((l) => l.options.listenPort);
        const roots = loaded.map((l) => l.options.storePathRootDir);
        expect(new Set(ports).size).toBe(ports.length);
        expect(new Set(roots).size).toBe(roots.length);
        for (const p of ports) expect(RESERVED_PORTS).not.toContain(p);
        const ids = loaded.map((l) => `${l.options.brokerName}/${l.options.brokerId}`);
        expect(new Set(ids).size).toBe(ids.length);
      });

      it('has a namesrv.properties the name server loads', () => {
        const ns = loadOptions(NAMESRV_SCHEMA, { file: join(dir, 'namesrv.properties') });
        expect(ns.warnings).toEqual([]);
        expect(ns.options.listenPort).toBe(9876);
      });

      it('starts masters before slaves in sluice cluster, and maps stores under --data', () => {
        const brokers = readBrokerFiles(dir, '/data');
        const firstSlave = brokers.findIndex((b) => b.role === 'SLAVE');
        if (firstSlave >= 0)
          expect(brokers.slice(firstSlave).every((b) => b.role === 'SLAVE')).toBe(true);
        for (const b of brokers) expect(b.storeRoot).toBe(`/data/${b.brokerName}-${b.brokerId}`);
        expect(brokers.map((b) => b.name).sort()).toEqual(Object.keys(expected).sort());
      });
    });
  }
});
