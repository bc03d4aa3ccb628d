/**
 * Registers this broker with every name server in namesrvAddr and keeps
 * heartbeating. A name server that is down is retried on the next beat; the
 * broker keeps serving meanwhile. Topic changes trigger an immediate
 * re-registration so routes follow without waiting a full interval.
 */
import { credentials } from '@grpc/grpc-js';
import type { Empty__Output } from '../../common/generated/sluice/v1/Empty.js';
import type { NameServerClient } from '../../common/generated/sluice/v1/NameServer.js';
import type { RegisterBrokerRequest } from '../../common/generated/sluice/v1/RegisterBrokerRequest.js';
import type { RegisterBrokerResponse__Output } from '../../common/generated/sluice/v1/RegisterBrokerResponse.js';
import type { UnregisterBrokerRequest } from '../../common/generated/sluice/v1/UnregisterBrokerRequest.js';
import { callUnary, GRPC_CHANNEL_OPTIONS } from '../../common/grpc.js';
import type { Logger } from '../../common/logger.js';
import { sluiceProto } from '../../common/proto.js';

export const DEFAULT_REGISTER_TIMEOUT_MS = 3_000;

export interface RegistryDeps {
  namesrvAddrs: readonly string[];
  intervalMs: number;
  logger: Logger;
  /** Builds the registration body (topics, role, offsets) at each beat. */
  request: () => RegisterBrokerRequest;
  /** Told the group's master address whenever a name server answers. */
  onMasterAddr?: (addr: string) => void;
}

export class NamesrvRegistry {
  private readonly clients: { addr: string; client: NameServerClient; ok: boolean }[];
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private again = false;

  constructor(private readonly deps: RegistryDeps) {
    const NameServer = sluiceProto().grpc.sluice.v1.NameServer;
    this.clients = deps.namesrvAddrs.map((addr) => ({
      addr,
      client: new NameServer(addr, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS),
      ok: false,
    }));
  }

  start(): void {
    void this.registerNow();
    this.timer = setInterval(() => void this.registerNow(), this.deps.intervalMs);
    this.timer.unref();
  }

  /** Registers with every name server now; concurrent calls coalesce. */
  registerNow(): Promise<void> {
    if (this.inflight) {
      this.again = true;
      return this.inflight;
    }
    this.inflight = this.registerAll().finally(() => {
      this.inflight = undefined;
      if (this.again) {
        this.again = false;
        void this.registerNow();
      }
    });
    return this.inflight;
  }

  private async registerAll(): Promise<void> {
    const body = this.deps.request();
    await Promise.all(
      this.clients.map(async (c) => {
        try {
          const res = await callUnary<RegisterBrokerRequest, RegisterBrokerResponse__Output>(
            c.client,
            c.client.RegisterBroker,
            body,
            DEFAULT_REGISTER_TIMEOUT_MS,
            undefined,
            // A name server that just came back is reached on this beat, not after backoff.
            true,
          );
          if (!c.ok) this.deps.logger.info({ namesrv: c.addr }, 'registered with name server');
          c.ok = true;
          if (res.master_addr) this.deps.onMasterAddr?.(res.master_addr);
        } catch (err) {
          if (c.ok) {
            this.deps.logger.warn(
              { namesrv: c.addr, err: (err as Error).message },
              'name server unreachable',
            );
          }
          c.ok = false;
        }
      }),
    );
  }

  /** Names of name servers that answered the last registration. */
  get reachable(): string[] {
    return this.clients.filter((c) => c.ok).map((c) => c.addr);
  }

  async close(unregister: UnregisterBrokerRequest): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.inflight;
    await Promise.all(
      this.clients.map((c) =>
        callUnary<UnregisterBrokerRequest, Empty__Output>(
          c.client,
          c.client.UnregisterBroker,
          unregister,
          1_000,
        ).catch(() => undefined),
      ),
    );
    for (const c of this.clients) c.client.close();
  }
}
