/**
 * Helpers for gateway tests: a tiny HTTP client that returns status, headers
 * and parsed body, extra gateway replicas on a running cluster, and a cluster
 * of real name server + gateway processes in front of in-process fake
 * brokers (for API behaviour that must not wait on the real broker).
 */
import { join } from 'node:path';
import { type Cluster, Node, startCluster } from '../harness/cluster.js';
import { waitFor } from '../harness/wait.js';
import { FakeBroker } from './fake-broker.js';

export interface Reply {
  status: number;
  headers: Headers;
  json: any;
  text: string;
}

export async function http(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const raw = typeof body === 'string' || body instanceof Uint8Array;
  const res = await fetch(`${base}${path}`, {
    method,
    headers:
      body === undefined || raw ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: raw ? (body as string) : JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

export const api = (base: string) => ({
  get: (path: string, headers?: Record<string, string>) =>
    http(base, 'GET', path, undefined, headers),
  post: (path: string, body?: unknown, headers?: Record<string, string>) =>
    http(base, 'POST', path, body, headers),
  put: (path: string, body?: unknown, headers?: Record<string, string>) =>
    http(base, 'PUT', path, body, headers),
  del: (path: string, headers?: Record<string, string>) =>
    http(base, 'DELETE', path, undefined, headers),
});

/** Starts another gateway process on the cluster's name servers. */
export async function startGatewayReplica(
  c: Cluster,
  name: string,
  config: Record<string, string | number | boolean> = {},
): Promise<{ node: Node; http: string }> {
  const node = new Node(
    name,
    'mqgateway',
    [
      '-n',
      c.namesrvAddr,
      'grpcPort=0',
      'bindAddress=127.0.0.1',
      'shutdownDrainMs=0',
      ...Object.entries(config).map(([k, v]) => `${k}=${String(v)}`),
    ],
    'httpPort',
    join(c.dir, `${name}.log`),
  );
  await node.start();
  return { node, http: `http://127.0.0.1:${node.port}` };
}

export interface FakeCluster {
  cluster: Cluster;
  brokers: FakeBroker[];
  http: string;
  close(): Promise<void>;
}

/** Real name server and gateway processes; brokers are in-process fakes. */
export async function startFakeCluster(opts: {
  brokers: string[];
  autoCreate?: boolean;
  gateway?: Record<string, string | number | boolean>;
}): Promise<FakeCluster> {
  const cluster = await startCluster({ brokers: [], gateway: { config: opts.gateway ?? {} } });
  const brokers: FakeBroker[] = [];
  try {
    for (const name of opts.brokers) {
      const b = new FakeBroker({
        name,
        namesrvAddrs: cluster.namesrvAddr.split(';'),
        autoCreate: opts.autoCreate ?? true,
      });
      await b.start();
      brokers.push(b);
    }
    await waitFor(
      'gateway ready',
      async () => (await http(cluster.http, 'GET', '/readyz')).status === 200,
    );
  } catch (err) {
    for (const b of brokers) await b.stop();
    await cluster.close();
    throw err;
  }
  return {
    cluster,
    brokers,
    http: cluster.http,
    close: async () => {
      await cluster.close();
      for (const b of brokers) await b.stop();
    },
  };
}
