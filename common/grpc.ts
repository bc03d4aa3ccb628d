/**
 * gRPC plumbing shared by every component: a server with health checking and
 * reflection, handler wrappers that map errors in one place, and promise-based
 * unary calls with deadlines.
 */

import type { Http2Server, ServerHttp2Session } from 'node:http2';
import {
  type CallOptions,
  type ChannelOptions,
  type Client,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type ServiceError,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { fromGrpcError, toGrpcError } from './errors-grpc.js';

/** Large batches (128 × 16 KiB and more) must fit in one call. */
export const DEFAULT_GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_RPC_TIMEOUT_MS = 5_000;
/**
 * HTTP/2 receive window, bytes, per stream and per connection, on both ends.
 * HTTP/2's default (64 KiB for the whole connection) lets only 64 KiB of a
 * 128-message batch travel per window update; with the receiver's event loop
 * busy, sends stall on it. Measured here with grpc-js, 128 × 1 KiB per call,
 * 4 calls in flight, client and server in two processes: 114k msgs/s at the
 * default, 169k at 4 MiB. Memory stays bounded by what grpc-js reads anyway
 * (whole messages, at most DEFAULT_GRPC_MAX_MESSAGE_BYTES each).
 */
export const DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES = 4 * 1024 * 1024;

export const GRPC_CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': DEFAULT_GRPC_MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': DEFAULT_GRPC_MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_permit_without_calls': 1,
  // Reconnect quickly after a peer restarts (tests and failover).
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2_000,
  'grpc-node.flow_control_window': DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES,
  // Nothing here serves channelz; its per-call counters, timestamps and trace
  // events are pure cost on every call and connection.
  'grpc.enable_channelz': 0,
};

/**
 * Widens the receive windows of a bound grpc-js server (see
 * DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES). grpc-js has no server option for
 * it, so this reaches its HTTP/2 servers; if a grpc-js release renames that
 * field, the server keeps HTTP/2's defaults (slower, not wrong).
 */
function widenReceiveWindows(server: Server): void {
  const http2Servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(http2Servers instanceof Map)) return;
  const bytes = DEFAULT_GRPC_FLOW_CONTROL_WINDOW_BYTES;
  for (const h2 of http2Servers.keys() as Iterable<Http2Server>) {
    h2.updateSettings({ initialWindowSize: bytes });
    h2.on('session', (session: ServerHttp2Session) => session.setLocalWindowSize(bytes));
  }
}

/** How often a server with a readiness check re-evaluates its health status, ms. */
export const DEFAULT_HEALTH_REFRESH_MS = 1_000;

export interface GrpcServerHandle {
  server: Server;
  health: HealthImplementation;
  /** The bound port (useful when asked for port 0). */
  port: number;
  /** Fully-qualified names of the services `register` added (health reports each). */
  services: readonly string[];
  close(graceMs?: number): Promise<void>;
}

export interface GrpcServerOptions {
  /**
   * When given, grpc.health.v1 reports SERVING only while this resolves true
   * (re-checked every `healthRefreshMs`; a rejection counts as not ready);
   * otherwise the server is SERVING from start to close.
   */
  ready?: () => Promise<boolean>;
  healthRefreshMs?: number;
}

/** "pkg.Service" of a service definition, from its methods' paths ("/pkg.Service/Method"). */
function serviceNameOf(service: ServiceDefinition): string | undefined {
  const first = Object.values(service)[0];
  return first ? /^\/([^/]+)\//.exec(first.path)?.[1] : undefined;
}

/** A Server that remembers the names of the services added to it. */
class NamingServer extends Server {
  readonly names: string[] = [];

  override addService(
    service: ServiceDefinition,
    implementation: UntypedServiceImplementation,
  ): void {
    const name = serviceNameOf(service);
    if (name && !this.names.includes(name)) this.names.push(name);
    super.addService(service, implementation);
  }
}

/**
 * Adds server reflection (v1 and v1alpha) whose index of the served files is
 * built on the first reflection call, not at boot: building it decodes every
 * file descriptor twice (~190 ms of CPU in a profile of the broker booting
 * here), which nobody needs unless they ask. The reflection services
 * themselves are registered now, from an index over nothing; their calls go
 * to the real one.
 */
function addLazyReflection(server: Server, definitions: () => PackageDefinition): void {
  const servicesOf = (r: ReflectionService) => {
    const added: [ServiceDefinition, UntypedServiceImplementation][] = [];
    r.addToServer({ addService: (def, impl) => added.push([def, impl]) });
    return added;
  };
  let real: Map<string, UntypedServiceImplementation> | undefined;
  for (const [def] of servicesOf(new ReflectionService({}))) {
    const name = serviceNameOf(def) ?? '';
    const lazy: UntypedServiceImplementation = {};
    for (const method of Object.keys(def)) {
      lazy[method] = (call: unknown) => {
        real ??= new Map(
          servicesOf(new ReflectionService(definitions())).map(([d, impl]) => [
            serviceNameOf(d) ?? '',
            impl,
          ]),
        );
        // Same library, same service names and methods as the placeholder's.
        (real.get(name)![method] as (call: unknown) => void)(call);
      };
    }
    server.addService(def, lazy);
  }
}

/**
 * Starts a gRPC server on host:port with grpc.health.v1 and reflection for the
 * given package definitions. `register` adds the component's services; health
 * reports the overall status (service '') and each registered service by name.
 */
export async function startGrpcServer(
  host: string,
  port: number,
  definitions: PackageDefinition[],
  register: (server: Server) => void,
  options: GrpcServerOptions = {},
): Promise<GrpcServerHandle> {
  const server = new NamingServer(GRPC_CHANNEL_OPTIONS);
  register(server);
  const services = [...server.names];
  const health = new HealthImplementation();
  const setAll = (status: 'SERVING' | 'NOT_SERVING') => {
    for (const name of ['', ...services]) health.setStatus(name, status);
  };
  let closed = false;
  let refresh: NodeJS.Timeout | undefined;
  const { ready } = options;
  if (ready) {
    // Not ready until the first check says so.
    setAll('NOT_SERVING');
    let checking = false;
    const check = () => {
      if (checking) return;
      checking = true;
      Promise.resolve()
        .then(ready)
        .catch(() => false)
        .then((ok) => {
          checking = false;
          if (!closed) setAll(ok ? 'SERVING' : 'NOT_SERVING');
        });
    };
    check();
    refresh = setInterval(check, options.healthRefreshMs ?? DEFAULT_HEALTH_REFRESH_MS);
    refresh.unref();
  } else {
    setAll('SERVING');
  }
  health.addToServer(server);
  // One reflection service (it may be added once) over the component's
  // services and grpc.health.v1.Health.
  addLazyReflection(server, () =>
    Object.assign({}, ...definitions, loadSync(healthProtoPath, { keepCase: true })),
  );
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  }).catch((err: unknown) => {
    clearInterval(refresh);
    throw err;
  });
  widenReceiveWindows(server);
  return {
    server,
    health,
    port: bound,
    services,
    close: (graceMs = 2_000) =>
      new Promise<void>((resolve) => {
        closed = true;
        clearInterval(refresh);
        setAll('NOT_SERVING');
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

/**
 * Adapts an async handler to grpc-js's callback style; any thrown error is
 * mapped to a gRPC status by errors-grpc (the one place that does it).
 */
export function unaryHandler<Req, Res>(
  fn: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toGrpcError(err) as ServiceError),
      );
  };
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: CallOptions,
  callback: (err: ServiceError | null, value?: Res) => void,
) => unknown;

/**
 * Calls a unary method and resolves with its answer; rejects with a
 * SluiceError (remote errors keep their code).
 *
 * @example const info = await callUnary<Empty, ClusterInfo__Output>(client, client.GetClusterInfo, {});
 */
export function callUnary<Req, Res>(
  client: Client,
  method: UnaryMethod<Req, Res>,
  request: Req,
  timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
  metadata = new Metadata(),
  /** Wait (within the deadline) for a connection instead of failing at once while reconnecting. */
  waitForReady = false,
): Promise<Res> {
  const target = client.getChannel().getTarget();
  if (waitForReady) metadata.setOptions({ waitForReady: true });
  return new Promise<Res>((resolve, reject) => {
    method.call(client, request, metadata, { deadline: Date.now() + timeoutMs }, (err, value) => {
      if (err) reject(fromGrpcError(err, target));
      else resolve(value as Res);
    });
  });
}

export const insecure = credentials.createInsecure;
