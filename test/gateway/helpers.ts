/**
 * Helpers for gateway tests: a tiny HTTP client that returns status, headers
 * and parsed body, and extra gateway replicas on a running cluster.
 */
import { join } from 'node:path';
import { type Cluster, Node } from '../harness/cluster.js';

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
