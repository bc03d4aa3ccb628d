/** One gRPC client per broker address, created on first use. */
import { connectivityState, credentials } from '@grpc/grpc-js';
import type { BrokerClient } from '../../common/generated/sluice/v1/Broker.js';
import { GRPC_CHANNEL_OPTIONS } from '../../common/grpc.js';
import { sluiceProto } from '../../common/proto.js';

export class BrokerPool {
  private readonly clients = new Map<string, BrokerClient>();

  get(addr: string): BrokerClient {
    let c = this.clients.get(addr);
    if (!c) {
      const Broker = sluiceProto().grpc.sluice.v1.Broker;
      c = new Broker(addr, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
      this.clients.set(addr, c);
    }
    return c;
  }

  /** True when the client for `addr` has a working connection now (asks it to connect if idle). */
  connected(addr: string): boolean {
    const c = this.clients.get(addr);
    return c?.getChannel().getConnectivityState(true) === connectivityState.READY;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
