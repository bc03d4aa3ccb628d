/**
 * Prometheus metrics of a name server (served on `metricsPort`): gRPC calls
 * and latency by method (`sluice_namesrv_rpc_requests_total{method="RegisterBroker"}`
 * counts registrations and heartbeats), and the route table's size read at
 * scrape time.
 */
import type { Registry } from 'prom-client';
import { type RpcMetrics, rpcMetrics } from '../common/metrics/grpc-handlers.js';
import { createRegistry, gaugeOf } from '../common/metrics/registry.js';
import type { RouteTable } from './route-table.js';

export interface NamesrvMetrics {
  registry: Registry;
  rpc: RpcMetrics;
}

export function createNamesrvMetrics(routes: RouteTable): NamesrvMetrics {
  const registry = createRegistry('sluice_namesrv_');
  gaugeOf(
    registry,
    'sluice_namesrv_brokers_registered',
    'live broker instances (masters and slaves)',
    () => routes.liveBrokers().length,
  );
  gaugeOf(
    registry,
    'sluice_namesrv_broker_groups',
    'broker groups (brokerName) known',
    () => routes.brokerNames().length,
  );
  gaugeOf(
    registry,
    'sluice_namesrv_topics',
    'topics with a route',
    () => routes.topicList().length,
  );
  return { registry, rpc: rpcMetrics(registry, 'sluice_namesrv_') };
}
