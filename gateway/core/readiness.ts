/**
 * Readiness: a name server answers and at least one master broker it lists
 * answers too. A broker the name servers still list after it died (they
 * notice within their expiry window) does not count. A ready result is reused
 * for a short while so that frequent probes cost nothing; a not-ready one is
 * not, so a gateway that booted before its brokers turns ready on the first
 * probe after they answer (concurrent probes still share one check).
 */

import { masterAddrOf } from '../../common/broker-addrs.js';
import type { BrokerStatus__Output } from '../../common/generated/sluice/v1/BrokerStatus.js';
import type { Empty } from '../../common/generated/sluice/v1/Empty.js';
import { callUnary } from '../../common/grpc.js';
import type { BrokerPool } from './broker-pool.js';
import type { NamesrvClient } from './namesrv-client.js';

export const DEFAULT_READINESS_CACHE_MS = 1_000;
export const DEFAULT_READINESS_TIMEOUT_MS = 1_000;

export interface ReadinessState {
  ready: boolean;
  namesrv: boolean;
  broker: boolean;
}

export class ReadinessProbe {
  private last: { at: number; state: ReadinessState } | undefined;
  private running: Promise<ReadinessState> | undefined;

  constructor(
    private readonly namesrv: NamesrvClient,
    private readonly brokers: BrokerPool,
    private readonly cacheMs = DEFAULT_READINESS_CACHE_MS,
    private readonly timeoutMs = DEFAULT_READINESS_TIMEOUT_MS,
    private readonly clock: () => number = Date.now,
  ) {}

  check(): Promise<ReadinessState> {
    if (this.last?.state.ready && this.clock() - this.last.at < this.cacheMs)
      return Promise.resolve(this.last.state);
    this.running ??= this.probe()
      .then((state) => {
        this.last = { at: this.clock(), state };
        return state;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async probe(): Promise<ReadinessState> {
    let masters: string[];
    try {
      const info = await this.namesrv.clusterInfo();
      masters = Object.values(info.broker_addr_table).flatMap((b) => {
        const m = masterAddrOf(b.broker_addrs);
        return m ? [m] : [];
      });
    } catch {
      return { ready: false, namesrv: false, broker: false };
    }
    const answers = await Promise.allSettled(
      masters.map((addr) => {
        const c = this.brokers.get(addr);
        return callUnary<Empty, BrokerStatus__Output>(c, c.GetBrokerStatus, {}, this.timeoutMs);
      }),
    );
    const broker = answers.some((a) => a.status === 'fulfilled');
    return { ready: broker, namesrv: true, broker };
  }
}
