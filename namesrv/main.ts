/**
 * Name server entry: wires the route table, the KV config store, the gRPC
 * service and the expiry scan, then prints RocketMQ's boot line (after the
 * port is bound, so a supervisor can trust it as the readiness signal).
 */
import type { ComponentSpec, Running } from '../common/cli.js';
import { startGrpcServer } from '../common/grpc.js';
import type { Logger } from '../common/logger.js';
import { instrumentService } from '../common/metrics/instrument-service.js';
import { startMetricsServer } from '../common/metrics/metrics-server.js';
import { expandHome } from '../common/paths.js';
import { sluiceProto } from '../common/proto.js';
import { withTelemetry } from '../common/telemetry/sdk.js';
import { type BrokerAdmin, GrpcBrokerAdmin } from './broker-admin.js';
import { KvConfigStore } from './kv-config.js';
import { createNamesrvMetrics } from './namesrv-metrics.js';
import { NAMESRV_SCHEMA, type NamesrvOptions } from './options.js';
import { RouteTable } from './route-table.js';
import { nameServerHandlers } from './service.js';

export interface StartedNamesrv extends Running {
  /** The bound port (the real one when listenPort is 0). */
  port: number;
  host: string;
  routes: RouteTable;
}

export interface NamesrvSeams {
  now?: () => number;
  brokers?: BrokerAdmin;
}

/**
 * Starts a name server in this process.
 *
 * @example
 *   const ns = await startNamesrv(loadOptions(NAMESRV_SCHEMA, { overrides: ['listenPort=0'] }).options, logger);
 *   // … ns.port …
 *   await ns.close();
 */
export async function startNamesrv(
  options: NamesrvOptions,
  logger: Logger,
  seams: NamesrvSeams = {},
): Promise<StartedNamesrv> {
  const kvPath = expandHome(options.kvConfigPath);
  const kv = new KvConfigStore(kvPath);
  const routes = new RouteTable({ defaultExpireMs: options.brokerExpireMillis, now: seams.now });
  const brokers = seams.brokers ?? new GrpcBrokerAdmin();
  const proto = sluiceProto();
  const metrics = options.metricsPort > 0 ? createNamesrvMetrics(routes) : undefined;
  const service = proto.grpc.sluice.v1.NameServer.service;
  const handlers = nameServerHandlers({ routes, kv, brokers, logger });
  const server = await startGrpcServer(
    options.bindAddress,
    options.listenPort,
    [proto.definition],
    (s) =>
      s.addService(service, metrics ? instrumentService(service, handlers, metrics.rpc) : handlers),
  );
  const metricsServer = metrics
    ? await startMetricsServer(metrics.registry, options.metricsPort, options.bindAddress, logger)
    : undefined;

  const scan = setInterval(() => {
    for (const b of routes.scanNotActiveBrokers()) {
      brokers.forget(b.addr);
      logger.warn(
        {
          brokerName: b.brokerName,
          brokerId: b.brokerId,
          addr: b.addr,
          silentMs: Date.now() - b.lastUpdateMs,
        },
        'broker expired: no heartbeat',
      );
    }
  }, options.scanNotActiveBrokerInterval);
  scan.unref();

  logger.info(
    { bindAddress: options.bindAddress, port: server.port, kvConfigPath: kvPath },
    'name server started',
  );
  return {
    port: server.port,
    host: options.bindAddress,
    routes,
    close: async () => {
      clearInterval(scan);
      await metricsServer?.close();
      await server.close();
      brokers.close();
      logger.info('name server stopped');
    },
  };
}

export const namesrvComponent: ComponentSpec<typeof NAMESRV_SCHEMA> = {
  name: 'mqnamesrv',
  description: 'Sluice name server: the routing registry brokers register with',
  schema: NAMESRV_SCHEMA,
  examples: `
Examples:
  mqnamesrv                                   listen on 0.0.0.0:9876
  mqnamesrv -c deploy/conf/2m-2s-async/namesrv.properties
  mqnamesrv listenPort=9877 kvConfigPath=./data/namesrv/kvConfig.json
  mqnamesrv -p                                print the effective config
`,
  async start(options, logger) {
    const ns = await withTelemetry('sluice-namesrv', logger, () => startNamesrv(options, logger));
    process.stdout.write(
      `The Name Server boot success. serializeType=JSON, address ${ns.host}:${ns.port}\n`,
    );
    return ns;
  },
};
