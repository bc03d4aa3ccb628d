/**
 * Registers this broker with every name server in namesrvAddr and keeps
 * heartbeating. Each name server is tracked on its own: a name server that
 * is down never delays heartbeats to the others, and the broker keeps
 * serving meanwhile. Topic changes trigger an immediate re-registration so
 * routes follow without waiting a full interval.
 *
 * A name server that has never answered (the broker booted first, as a
 * by-hand start often does) is retried every DEFAULT_REGISTER_RETRY_MS
 * instead of every registerBrokerInterval (30 s by default); once it has
 * answered it gets the normal heartbeat.
 */
import { type ChannelOptions, credentials } from '@grpc/grpc-js';
import type { Empty__Output } from '../../common/generated/sluice/v1/Empty.js';
import type { NameServerClient } from '../../common/generated/sluice/v1/NameServer.js';
import type { RegisterBrokerRequest } from '../../common/generated/sluice/v1/RegisterBrokerRequest.js';
import type { RegisterBrokerResponse__Output } from '../../common/generated/sluice/v1/RegisterBrokerResponse.js';
import type { UnregisterBrokerRequest } from '../../common/generated/sluice/v1/UnregisterBrokerRequest.js';
import { callUnary, GRPC_CHANNEL_OPTIONS } from '../../common/grpc.js';
import type { Logger } from '../../common/logger.js';
import { sluiceProto } from '../../common/proto.js';

export const DEFAULT_REGISTER_TIMEOUT_MS = 3_000;
/**
 * How long the broker's boot waits for its first registration (ms). RocketMQ
 * registers before it prints its boot line, so a script that waits for the
 * line finds the broker listed; a name server that is down holds the boot up
 * no longer than this.
 */
export const DEFAULT_BOOT_REGISTER_WAIT_MS = 1_000;
/** Retry period for a name server that has not answered yet (ms). */
export const DEFAULT_REGISTER_RETRY_MS = 1_000;

/**
 * Channel options of the registry's name server channels: a short reconnect
 * backoff, so that a name server that restarts is reached by the very next
 * heartbeat (which waits for the connection within its deadline) instead of
 * after the channel's backoff from the outage.
 */
export const REGISTRY_CHANNEL_OPTIONS: ChannelOptions = {
  ...GRPC_CHANNEL_OPTIONS,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 500,
};

export interface RegistryDeps {
  namesrvAddrs: readonly string[];
  intervalMs: number;
  logger: Logger;
  /** Builds the registration body (topics, role, offsets) at each beat. */
  request: () => RegisterBrokerRequest;
  /** Told the group's master address whenever a name server answers. */
  onMasterAddr?: (addr: string) => void;
  /** Retry period before a name server first answers (ms); default DEFAULT_REGISTER_RETRY_MS. */
  retryMs?: number;
}

interface NamesrvChannel {
  addr: string;
  client: NameServerClient;
  /** The last registration succeeded. */
  ok: boolean;
  /** Some registration has ever succeeded (fast retry stops then). */
  answered: boolean;
  inflight: Promise<void> | undefined;
  /** A registration queued behind the one in flight (its content may be newer). */
  queued: Promise<void> | undefined;
}

export class NamesrvRegistry {
  private readonly channels: NamesrvChannel[];
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly deps: RegistryDeps) {
    const NameServer = sluiceProto().grpc.sluice.v1.NameServer;
    this.channels = deps.namesrvAddrs.map((addr) => ({
      addr,
      client: new NameServer(addr, credentials.createInsecure(), REGISTRY_CHANNEL_OPTIONS),
      ok: false,
      answered: false,
      inflight: undefined,
      queued: undefined,
    }));
  }

  /**
   * Starts heartbeating. Resolves when the first registration has been
   * attempted with every name server, or after `bootWaitMs`, whichever comes
   * first; the attempts go on in the background either way.
   */
  async start(bootWaitMs = DEFAULT_BOOT_REGISTER_WAIT_MS): Promise<void> {
    const first = this.registerNow();
    this.timer = setInterval(() => void this.registerNow(), this.deps.intervalMs);
    this.timer.unref();
    const retryMs = this.deps.retryMs ?? DEFAULT_REGISTER_RETRY_MS;
    if (retryMs < this.deps.intervalMs) {
      this.retryTimer = setInterval(() => this.retryUnanswered(), retryMs);
      this.retryTimer.unref();
    }
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([
      first,
      new Promise<void>((resolve) => {
        waited = setTimeout(resolve, bootWaitMs);
      }),
    ]);
    clearTimeout(waited);
  }

  /**
   * Registers with every name server now. A name server with a registration
   * in flight gets one more right after it (concurrent calls coalesce into
   * that one), so the promise resolves only after a registration built now
   * was attempted everywhere.
   */
  async registerNow(): Promise<void> {
    await Promise.all(this.channels.map((c) => this.registerWith(c)));
  }

  private retryUnanswered(): void {
    const pending = this.channels.filter((c) => !c.answered);
    if (pending.length === 0) {
      clearInterval(this.retryTimer);
      this.retryTimer = undefined;
      return;
    }
    // A call already in flight waits for the connection itself (waitForReady).
    for (const c of pending) if (!c.inflight) void this.registerWith(c);
  }

  private registerWith(c: NamesrvChannel): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (c.queued) return c.queued;
    if (c.inflight) {
      c.queued = c.inflight.then(() => {
        c.queued = undefined;
        return this.registerWith(c);
      });
      return c.queued;
    }
    c.inflight = this.callRegister(c).finally(() => {
      c.inflight = undefined;
    });
    return c.inflight;
  }

  private async callRegister(c: NamesrvChannel): Promise<void> {
    try {
      const res = await callUnary<RegisterBrokerRequest, RegisterBrokerResponse__Output>(
        c.client,
        c.client.RegisterBroker,
        this.deps.request(),
        DEFAULT_REGISTER_TIMEOUT_MS,
        undefined,
        // A name server that just came back is reached on this beat, not after backoff.
        true,
      );
      if (!c.ok) this.deps.logger.info({ namesrv: c.addr }, 'registered with name server');
      c.ok = true;
      c.answered = true;
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
  }

  /** Names of name servers that answered the last registration. */
  get reachable(): string[] {
    return this.channels.filter((c) => c.ok).map((c) => c.addr);
  }

  async close(unregister: UnregisterBrokerRequest): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearInterval(this.retryTimer);
    // A registration still in flight to a reachable name server must land
    // before the unregistration; one waiting for an unreachable name server
    // (up to DEFAULT_REGISTER_TIMEOUT_MS) would only delay shutdown and is
    // cancelled by closing its channel below.
    const reachable = this.channels.filter((c) => c.ok);
    await Promise.all(reachable.map((c) => c.queued ?? c.inflight));
    await Promise.all(
      reachable.map((c) =>
        callUnary<UnregisterBrokerRequest, Empty__Output>(
          c.client,
          c.client.UnregisterBroker,
          unregister,
          1_000,
        ).catch(() => undefined),
      ),
    );
    for (const c of this.channels) c.client.close();
  }
}
