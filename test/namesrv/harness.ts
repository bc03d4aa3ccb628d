/**
 * Test helpers for name server, mqadmin and cluster tests: temp dirs, polling
 * with a deadline, real name server processes, mqadmin runs, raw NameServer
 * calls, and a fake broker (the Broker service's admin RPCs plus heartbeats)
 * for tests that must not depend on the real broker.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { REGISTRY_CHANNEL_OPTIONS } from '../../broker/registry/namesrv-registry.js';
import { ManagedChild } from '../../cli/supervisor.js';
import { brokerAddrMap } from '../../common/broker-addrs.js';
import type { BrokerClient, BrokerHandlers } from '../../common/generated/sluice/v1/Broker.js';
import type { ClusterInfo__Output } from '../../common/generated/sluice/v1/ClusterInfo.js';
import type { Empty, Empty__Output } from '../../common/generated/sluice/v1/Empty.js';
import type { GetRouteInfoByTopicRequest } from '../../common/generated/sluice/v1/GetRouteInfoByTopicRequest.js';
import type { GetRouteInfoByTopicResponse__Output } from '../../common/generated/sluice/v1/GetRouteInfoByTopicResponse.js';
import type { NameServerClient } from '../../common/generated/sluice/v1/NameServer.js';
import type { RegisterBrokerRequest } from '../../common/generated/sluice/v1/RegisterBrokerRequest.js';
import type { RegisterBrokerResponse__Output } from '../../common/generated/sluice/v1/RegisterBrokerResponse.js';
import type { SendMessagesRequest } from '../../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse__Output } from '../../common/generated/sluice/v1/SendMessagesResponse.js';
import type { TopicConfig__Output } from '../../common/generated/sluice/v1/TopicConfig.js';
import type { TopicRoute__Output } from '../../common/generated/sluice/v1/TopicRoute.js';
import type { UnregisterBrokerRequest } from '../../common/generated/sluice/v1/UnregisterBrokerRequest.js';
import {
  callUnary,
  GRPC_CHANNEL_OPTIONS,
  type GrpcServerHandle,
  startGrpcServer,
  unaryHandler,
} from '../../common/grpc.js';
import { PACKAGE_ROOT } from '../../common/paths.js';
import { sluiceProto } from '../../common/proto.js';
import { makeTempDir } from '../harness/tmp.js';

export const ROOT = PACKAGE_ROOT;

export function tempDir(prefix: string): { path: string; remove(): void } {
  return makeTempDir(`sluice-${prefix}-`);
}

export { waitFor } from '../harness/wait.js';

/**
 * How soon after a name server restarts a broker heartbeating every
 * `intervalMs` must be registered with it again: within one heartbeat. That
 * heartbeat waits (waitForReady) for the registry channel's next reconnect
 * attempt, at most grpc.max_reconnect_backoff_ms (+20% jitter) of
 * REGISTRY_CHANNEL_OPTIONS after the outage. Plus slack for two busy cores.
 */
export function reregisterBoundMs(intervalMs: number): number {
  const backoff = Number(REGISTRY_CHANNEL_OPTIONS['grpc.max_reconnect_backoff_ms']) * 1.2;
  return intervalMs + backoff + 800;
}

export { freePort } from '../harness/ports.js';

/** A name server child process; `addr` is 127.0.0.1:<bound port>. */
export class NamesrvProcess {
  readonly child: ManagedChild;
  addr = '';

  constructor(
    readonly home: string,
    readonly overrides: string[] = [],
    name = 'namesrv',
  ) {
    this.child = new ManagedChild({
      name,
      bin: 'mqnamesrv',
      args: ['listenPort=0', `kvConfigPath=${join(home, 'kvConfig.json')}`, ...overrides],
    });
  }

  async start(): Promise<string> {
    const m = await this.child.start();
    this.addr = `127.0.0.1:${m[2]}`;
    return this.addr;
  }
}

/** A real broker child process started from a properties file (ports and store overridden). */
export class BrokerProcess {
  readonly child: ManagedChild;
  addr = '';

  constructor(
    readonly name: string,
    file: string,
    namesrvAddrs: string[],
    readonly store: string,
    overrides: string[] = [],
  ) {
    this.child = new ManagedChild({
      name,
      bin: 'mqbroker',
      args: [
        '-n',
        namesrvAddrs.join(';'),
        '-c',
        file,
        'listenPort=0',
        // The templates bind fixed metrics ports; tests run side by side.
        'metricsPort=0',
        `storePathRootDir=${store}`,
        ...overrides,
      ],
    });
  }

  async start(): Promise<string> {
    const m = await this.child.start();
    this.addr = `${m[2]}:${m[3]}`;
    return this.addr;
  }
}

/** Sends `count` small messages to one broker (queue chosen by the broker). */
export async function sendTo(
  addr: string,
  topic: string,
  count: number,
  keys: string[] = [],
): Promise<SendMessagesResponse__Output> {
  const Broker = sluiceProto().grpc.sluice.v1.Broker;
  const client: BrokerClient = new Broker(addr, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
  try {
    return await callUnary<SendMessagesRequest, SendMessagesResponse__Output>(
      client,
      client.SendMessages,
      {
        entries: Array.from({ length: count }, (_, i) => ({
          message: { topic, body: Buffer.from(`message ${i}`), keys },
          queue_id: -1,
        })),
      },
      5_000,
    );
  } finally {
    client.close();
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a bin/ script to completion. */
export function runBin(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', bin), ...args], {
      cwd: ROOT,
      env: { ...process.env, NAMESRV_ADDR: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export const mqadmin = (args: string[], env?: NodeJS.ProcessEnv) => runBin('mqadmin', args, env);

/** Raw NameServer calls for tests. */
export class NamesrvRaw {
  readonly client: NameServerClient;

  /** `asBroker`: the channel and calls behave as the broker registry's do. */
  constructor(
    readonly addr: string,
    private readonly asBroker = false,
  ) {
    const NameServer = sluiceProto().grpc.sluice.v1.NameServer;
    this.client = new NameServer(
      addr,
      credentials.createInsecure(),
      asBroker ? REGISTRY_CHANNEL_OPTIONS : GRPC_CHANNEL_OPTIONS,
    );
  }

  register(req: RegisterBrokerRequest): Promise<RegisterBrokerResponse__Output> {
    return callUnary<RegisterBrokerRequest, RegisterBrokerResponse__Output>(
      this.client,
      this.client.RegisterBroker,
      req,
      2_000,
      undefined,
      this.asBroker,
    );
  }

  unregister(req: UnregisterBrokerRequest): Promise<Empty__Output> {
    return callUnary<UnregisterBrokerRequest, Empty__Output>(
      this.client,
      this.client.UnregisterBroker,
      req,
      2_000,
    );
  }

  async routes(topics: string[]): Promise<TopicRoute__Output[]> {
    const res = await callUnary<GetRouteInfoByTopicRequest, GetRouteInfoByTopicResponse__Output>(
      this.client,
      this.client.GetRouteInfoByTopic,
      { topics },
      2_000,
    );
    return res.routes;
  }

  async route(topic: string): Promise<TopicRoute__Output> {
    return (await this.routes([topic]))[0]!;
  }

  clusterInfo(): Promise<ClusterInfo__Output> {
    return callUnary<Empty, ClusterInfo__Output>(
      this.client,
      this.client.GetClusterInfo,
      {},
      2_000,
    );
  }

  close(): void {
    this.client.close();
  }
}

/** broker id → address of a BrokerData, whatever form protobufjs gave the 64-bit keys. */
export function addrsOf(addrs: Record<string | number, string>): Record<number, string> {
  return Object.fromEntries(brokerAddrMap(addrs));
}

/** Broker names in a route that are offered for writing (perm has the write bit). */
export function writableBrokers(route: TopicRoute__Output): string[] {
  return route.queue_datas
    .filter((q) => (q.perm & 2) === 2)
    .map((q) => q.broker_name)
    .sort();
}

export interface FakeBrokerSpec {
  brokerName: string;
  brokerId?: number;
  cluster?: string;
  role?: string;
  namesrvAddrs: string[];
  intervalMs?: number;
  heartbeatTimeoutMs?: number;
  topics?: TopicConfig__Output[];
}

/**
 * An in-process stand-in for a broker: serves the Broker admin RPCs the name
 * server and mqadmin use (topics, permission, status, config) and registers
 * with every name server every `intervalMs`, as the real one does.
 */
export class FakeBroker {
  readonly topics = new Map<string, TopicConfig__Output>();
  perm = 6;
  dataVersion = 1;
  addr = '';
  readonly permCalls: number[] = [];
  /** Heartbeats that reached every name server (tests wait for some instead of sleeping). */
  beats = 0;
  private server: GrpcServerHandle | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly clients: NamesrvRaw[];

  constructor(readonly spec: FakeBrokerSpec) {
    for (const t of spec.topics ?? []) this.topics.set(t.topic_name, t);
    this.clients = spec.namesrvAddrs.map((a) => new NamesrvRaw(a, true));
  }

  async start(): Promise<this> {
    const changed = () => {
      this.dataVersion++;
      void this.beat();
    };
    const handlers: Partial<BrokerHandlers> = {
      UpdateTopic: unaryHandler((req) => {
        this.topics.set(req.topic_name, {
          ...req,
          read_queue_nums: req.read_queue_nums || 4,
          write_queue_nums: req.write_queue_nums || 4,
          perm: req.perm || 6,
          message_type: req.message_type || 'NORMAL',
        });
        changed();
        return {};
      }),
      DeleteTopic: unaryHandler((req) => {
        this.topics.delete(req.topic);
        changed();
        return {};
      }),
      GetAllTopicConfig: unaryHandler(() => ({ topics: [...this.topics.values()] })),
      SetBrokerPermission: unaryHandler((req) => {
        this.perm = req.perm;
        this.permCalls.push(req.perm);
        void this.beat();
        return {};
      }),
      GetBrokerStatus: unaryHandler(() => ({
        stats: {
          brokerName: this.spec.brokerName,
          perm: String(this.perm),
          diskUsedRatio: '0.1000',
        },
      })),
      GetBrokerConfig: unaryHandler(() => ({
        config: { brokerName: this.spec.brokerName, brokerId: String(this.spec.brokerId ?? 0) },
      })),
    };
    const proto = sluiceProto();
    this.server = await startGrpcServer('127.0.0.1', 0, [], (s) =>
      s.addService(proto.grpc.sluice.v1.Broker.service, handlers as BrokerHandlers),
    );
    this.addr = `127.0.0.1:${this.server.port}`;
    await this.beat();
    this.resume();
    return this;
  }

  /** The registration body, as the real broker builds it. */
  request(): RegisterBrokerRequest {
    return {
      cluster_name: this.spec.cluster ?? 'DefaultCluster',
      broker_name: this.spec.brokerName,
      broker_id: this.spec.brokerId ?? 0,
      broker_addr: this.addr,
      broker_role: this.spec.role ?? ((this.spec.brokerId ?? 0) > 0 ? 'SLAVE' : 'ASYNC_MASTER'),
      topics: [...this.topics.values()],
      data_version: this.dataVersion,
      heartbeat_timeout_ms: this.spec.heartbeatTimeoutMs ?? 0,
      perm: this.perm,
    };
  }

  /** Registers with every name server once (failures ignored, as the broker does). */
  async beat(): Promise<void> {
    const body = this.request();
    const answered = await Promise.all(
      this.clients.map((c) =>
        c.register(body).then(
          () => true,
          () => false,
        ),
      ),
    );
    if (answered.every(Boolean)) this.beats++;
  }

  /** Stops heartbeating (like SIGSTOP) without unregistering. */
  pause(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  resume(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.beat(), this.spec.intervalMs ?? 500);
  }

  async close(unregister = true): Promise<void> {
    this.pause();
    if (unregister) {
      const req = this.request();
      await Promise.all(this.clients.map((c) => c.unregister(req).catch(() => undefined)));
    }
    for (const c of this.clients) c.close();
    await this.server?.close(200);
  }
}
