/**
 * Starts real Sluice processes on free ports (each binds port 0 and reports
 * the port in its boot line) and waits for their boot lines. Every node can
 * be killed with any signal and restarted on the same port and data.
 *
 * @example
 *   const c = await startCluster({ brokers: [{ name: 'broker-a' }], gateway: true });
 *   await fetch(`${c.http}/v1/topics/t/messages`, …);
 *   await c.close();
 */
import { join } from 'node:path';
import { type BinaryName, ManagedChild } from '../../cli/supervisor.js';
import { makeTempDir } from './tmp.js';

export class Node {
  readonly child: ManagedChild;
  /** Port bound at the first start; restarts reuse it. */
  port = 0;
  host = '127.0.0.1';
  /** Gateway only: the gRPC port. */
  grpcPort = 0;

  constructor(
    readonly name: string,
    readonly bin: BinaryName,
    private readonly baseArgs: string[],
    private readonly portKey: string,
    logFile: string,
  ) {
    this.child = new ManagedChild({ name, bin, args: [...baseArgs, `${portKey}=0`], logFile });
  }

  get addr(): string {
    return `${this.host}:${this.port}`;
  }

  async start(): Promise<void> {
    const m = await this.child.start();
    if (this.bin === 'mqbroker') {
      this.host = m[2]!;
      this.port = Number(m[3]);
    } else if (this.bin === 'mqgateway') {
      this.port = Number(m[2]);
      this.grpcPort = Number(m[4]);
    } else {
      this.port = Number(m[2]);
    }
    // Later starts keep the same ports so peers and clients find the node again.
    const extra = this.bin === 'mqgateway' ? [`grpcPort=${this.grpcPort}`] : [];
    this.child.spec.args = [...this.baseArgs, `${this.portKey}=${this.port}`, ...extra];
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.child.kill(signal);
  }

  async stop(): Promise<void> {
    await this.child.stop();
  }

  async restart(): Promise<void> {
    await this.child.stop();
    await this.start();
  }

  /** Output lines so far (for assertions on log lines). */
  get lines(): string[] {
    return this.child.lines;
  }
}

export interface BrokerSpec {
  name?: string;
  id?: number;
  role?: 'ASYNC_MASTER' | 'SYNC_MASTER' | 'SLAVE';
  /** Extra key=value settings. */
  config?: Record<string, string | number | boolean>;
}

export interface ClusterOptions {
  namesrvs?: number;
  brokers?: BrokerSpec[];
  gateway?: boolean | { config?: Record<string, string | number | boolean> };
  namesrvConfig?: Record<string, string | number | boolean>;
}

export interface Cluster {
  dir: string;
  namesrvs: Node[];
  brokers: Node[];
  gateway: Node | undefined;
  /** `a;b` list of name server addresses. */
  namesrvAddr: string;
  /** Gateway REST base URL, e.g. http://127.0.0.1:40123 */
  http: string;
  close(): Promise<void>;
}

const kv = (o: Record<string, string | number | boolean> = {}) =>
  Object.entries(o).map(([k, v]) => `${k}=${String(v)}`);

/** Short intervals so tests see registration and expiry quickly. */
export const TEST_BROKER_DEFAULTS = {
  registerBrokerInterval: 1000,
  mapedFileSizeCommitLog: 16 * 1024 * 1024,
  mapedFileSizeConsumeQueue: 60_000,
};

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const tmp = makeTempDir();
  const dir = tmp.path;
  const all: Node[] = [];
  const cluster: Cluster = {
    dir,
    namesrvs: [],
    brokers: [],
    gateway: undefined,
    namesrvAddr: '',
    http: '',
    close: async () => {
      for (const n of [...all].reverse()) await n.stop();
      for (const n of all) n.child.dispose();
      tmp.remove();
    },
  };
  try {
    for (let i = 0; i < (opts.namesrvs ?? 1); i++) {
      const n = new Node(
        `namesrv-${i}`,
        'mqnamesrv',
        [`kvConfigPath=${join(dir, `namesrv-${i}`, 'kvConfig.json')}`, ...kv(opts.namesrvConfig)],
        'listenPort',
        join(dir, `namesrv-${i}.log`),
      );
      all.push(n);
      await n.start();
      cluster.namesrvs.push(n);
    }
    cluster.namesrvAddr = cluster.namesrvs.map((n) => n.addr).join(';');
    const brokers = opts.brokers ?? [{}];
    await Promise.all(
      brokers.map(async (b, i) => {
        const name = b.name ?? `broker-${String.fromCharCode(97 + i)}`;
        const id = b.id ?? 0;
        const label = `${name}-${id}`;
        const n = new Node(
          label,
          'mqbroker',
          [
            '-n',
            cluster.namesrvAddr,
            `brokerName=${name}`,
            `brokerId=${id}`,
            `brokerRole=${b.role ?? (id === 0 ? 'ASYNC_MASTER' : 'SLAVE')}`,
            `storePathRootDir=${join(dir, label)}`,
            ...kv({ ...TEST_BROKER_DEFAULTS, ...b.config }),
          ],
          'listenPort',
          join(dir, `${label}.log`),
        );
        all.push(n);
        await n.start();
        cluster.brokers[i] = n;
      }),
    );
    if (opts.gateway) {
      const extra = typeof opts.gateway === 'object' ? kv(opts.gateway.config) : [];
      const g = new Node(
        'gateway',
        'mqgateway',
        // No readiness drain on stop (tests that check it set shutdownDrainMs).
        [
          '-n',
          cluster.namesrvAddr,
          'grpcPort=0',
          'bindAddress=127.0.0.1',
          'shutdownDrainMs=0',
          ...extra,
        ],
        'httpPort',
        join(dir, 'gateway.log'),
      );
      all.push(g);
      await g.start();
      cluster.gateway = g;
      cluster.http = `http://127.0.0.1:${g.port}`;
    }
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}
