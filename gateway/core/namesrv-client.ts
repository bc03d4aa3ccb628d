/**
 * Talks to the name servers, failing over between them: the last one that
 * answered is tried first.
 */
import { credentials } from '@grpc/grpc-js';
import { errors, isSluiceError } from '../../common/errors.js';
import type { ClusterInfo__Output } from '../../common/generated/sluice/v1/ClusterInfo.js';
import type { Empty } from '../../common/generated/sluice/v1/Empty.js';
import type { GetRouteInfoByTopicRequest } from '../../common/generated/sluice/v1/GetRouteInfoByTopicRequest.js';
import type { GetRouteInfoByTopicResponse__Output } from '../../common/generated/sluice/v1/GetRouteInfoByTopicResponse.js';
import type { NameServerClient } from '../../common/generated/sluice/v1/NameServer.js';
import type { TopicRoute__Output } from '../../common/generated/sluice/v1/TopicRoute.js';
import { callUnary, GRPC_CHANNEL_OPTIONS } from '../../common/grpc.js';
import { sluiceProto } from '../../common/proto.js';

export class NamesrvClient {
  private readonly clients: { addr: string; client: NameServerClient }[];
  private preferred = 0;

  constructor(
    addrs: readonly string[],
    private readonly timeoutMs: number,
  ) {
    if (addrs.length === 0) throw errors.badRequest('no name server address configured');
    const NameServer = sluiceProto().grpc.sluice.v1.NameServer;
    this.clients = addrs.map((addr) => ({
      addr,
      client: new NameServer(addr, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS),
    }));
  }

  /** Runs `fn` against each name server in turn until one answers. */
  private async any<T>(fn: (client: NameServerClient) => Promise<T>): Promise<T> {
    let last: unknown;
    for (let i = 0; i < this.clients.length; i++) {
      const idx = (this.preferred + i) % this.clients.length;
      try {
        const out = await fn(this.clients[idx]!.client);
        this.preferred = idx;
        return out;
      } catch (err) {
        // A server error (not a transport failure) is the answer.
        if (isSluiceError(err) && !err.retriable) throw err;
        last = err;
      }
    }
    throw errors.unavailable('no name server is reachable', last);
  }

  async routes(topics: readonly string[]): Promise<TopicRoute__Output[]> {
    const res = await this.any((c) =>
      callUnary<GetRouteInfoByTopicRequest, GetRouteInfoByTopicResponse__Output>(
        c,
        c.GetRouteInfoByTopic,
        { topics: [...topics] },
        this.timeoutMs,
      ),
    );
    return res.routes;
  }

  clusterInfo(): Promise<ClusterInfo__Output> {
    return this.any((c) =>
      callUnary<Empty, ClusterInfo__Output>(c, c.GetClusterInfo, {}, this.timeoutMs),
    );
  }

  /** True when at least one name server answers a cheap call. */
  async reachable(): Promise<boolean> {
    try {
      await this.clusterInfo();
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    for (const c of this.clients) c.client.close();
  }
}
