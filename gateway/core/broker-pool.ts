/** One gRPC client per broker address, created on first use. */
import { connectivityState, credentials } from '@grpc/grpc-js';
import type { BrokerClient } from '../../common/generated/sluice/v1/Broker.js';
import { GRPC_CHANNEL_OPTIONS } from '../../common/grpc.js';
import { sluiceProto } from '../../common/proto.js';
import { BrokerCalls } from './broker-calls.js';

export class BrokerPool {
  private readonly clients = new Map<string, BrokerClient>();
  private readonly streams = new Map<string, BrokerCalls>();

  get(addr: string): BrokerClient {
    let c = this.clients.get(addr);
    if (!c) {
      const Broker = sluiceProto().grpc.sluice.v1.Broker;
      c = new Broker(addr, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
      this.clients.set(addr, c);
    }
    return c;
  }

  /** The Calls stream to `addr` (on the same channel as get(addr)). */
  calls(addr: string): BrokerCalls {
    let s = this.streams.get(addr);
    if (!s) {
      s = new BrokerCalls(this.get(addr), addr);
      this.streams.set(addr, s);
    }
    return s;
  }

  /** True when the client for `addr` has a working connection now (asks it to connect if idle). */
  connected(addr: string): boolean {
    const c = this.clients.get(addr);
    return c?.getChannel().getConnectivityState(true) === connectivityState.READY;
  }

  close(): void {
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
