/** Thin typed gRPC clients for tests (internal sluice.v1 services). */
import { credentials } from '@grpc/grpc-js';
import type { BrokerClient } from '../../common/generated/sluice/v1/Broker.js';
import type { BrokerStatus__Output } from '../../common/generated/sluice/v1/BrokerStatus.js';
import type { Empty } from '../../common/generated/sluice/v1/Empty.js';
import type { NameServerClient } from '../../common/generated/sluice/v1/NameServer.js';
import { callUnary, GRPC_CHANNEL_OPTIONS } from '../../common/grpc.js';
import { sluiceProto } from '../../common/proto.js';

export function brokerClient(addr: string): BrokerClient {
  const Broker = sluiceProto().grpc.sluice.v1.Broker;
  return new Broker(addr, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
}

export function namesrvClient(addr: string): NameServerClient {
  const NameServer = sluiceProto().grpc.sluice.v1.NameServer;
  return new NameServer(addr, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
}

export async function brokerStats(addr: string): Promise<Record<string, string>> {
  const c = brokerClient(addr);
  try {
    const s = await callUnary<Empty, BrokerStatus__Output>(c, c.GetBrokerStatus, {});
    return s.stats;
  } finally {
    c.close();
  }
}
