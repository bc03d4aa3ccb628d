/**
 * The deploy/ examples agree with each other: every broker and name server
 * of the deploy/conf templates serves metrics on a port of its own
 * (metricsPort set, distinct, clear of every other port of the layout), and
 * deploy/observability/prometheus.yml scrapes exactly those ports and the
 * gateway's REST port.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BROKER_SCHEMA } from '../../broker/options.js';
import { loadOptions } from '../../common/config/options.js';
import { GATEWAY_SCHEMA } from '../../gateway/options.js';
import { NAMESRV_SCHEMA } from '../../namesrv/options.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CONF = join(ROOT, 'deploy', 'conf');

/** `job_name` → target ports, read from prometheus.yml's static configs. */
function scrapePorts(): Map<string, number[]> {
  const text = readFileSync(join(ROOT, 'deploy', 'observability', 'prometheus.yml'), 'utf8');
  const jobs = new Map<string, number[]>();
  let job = '';
  for (const line of text.split('\n')) {
    const name = /^\s*- job_name:\s*(\S+)/.exec(line);
    if (name) job = name[1]!;
    const targets = /^\s*- targets:\s*\[(.*)\]/.exec(line);
    if (targets) {
      const ports = [...targets[1]!.matchAll(/:(\d+)'/g)].map((m) => Number(m[1]));
      jobs.set(job, [...(jobs.get(job) ?? []), ...ports]);
    }
  }
  return jobs;
}

const templates = readdirSync(CONF, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

describe('deploy/observability agrees with deploy/conf', () => {
  const jobs = scrapePorts();

  it('prometheus.yml names a job for each component', () => {
    expect([...jobs.keys()]).toEqual(
      expect.arrayContaining(['sluice-gateway', 'sluice-broker', 'sluice-namesrv']),
    );
  });

  for (const template of templates) {
    it(`${template}: every broker and name server has its own metrics port, and Prometheus scrapes it`, () => {
      const dir = join(CONF, template);
      const brokerFiles = readdirSync(dir).filter((f) => f.startsWith('broker-'));
      expect(brokerFiles.length).toBeGreaterThan(0);
      const brokers = brokerFiles.map((f) => {
        const l = loadOptions(BROKER_SCHEMA, { file: join(dir, f) });
        expect(l.warnings, f).toEqual([]);
        return l.options;
      });
      const ns = loadOptions(NAMESRV_SCHEMA, { file: join(dir, 'namesrv.properties') }).options;
      const gw = loadOptions(GATEWAY_SCHEMA, { file: join(dir, 'gateway.properties') }).options;
      const brokerPorts = brokers.map((b) => b.metricsPort);
      for (const p of [...brokerPorts, ns.metricsPort]) expect(p).toBeGreaterThan(0);
      // Up to four name servers under `sluice cluster` take metricsPort, +1, +2, +3.
      const nsPorts = [0, 1, 2, 3].map((i) => ns.metricsPort + i);
      const every = [
        ...brokerPorts,
        ...nsPorts,
        ...brokers.map((b) => b.listenPort),
        ns.listenPort,
        gw.httpPort,
        gw.grpcPort,
      ];
      expect(new Set(every).size).toBe(every.length);
      expect(jobs.get('sluice-broker')).toEqual(expect.arrayContaining(brokerPorts));
      expect(jobs.get('sluice-namesrv')).toContain(ns.metricsPort);
      expect(jobs.get('sluice-gateway')).toContain(gw.httpPort);
    });
  }
});
