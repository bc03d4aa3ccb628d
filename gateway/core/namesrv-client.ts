/**
 * Talks to the name servers, failing over between them: the last one that
 * answered is tried first.
 */
import { credentials } from '@grpc/grpc-js';
import { errors, isSluiceError } from '../../common/errors.js';
import type { ClusterInfo__Output } from '../../common/generated/sluice/v1/ClusterInfo.js';
import type { DeleteTopicRequest } from '../../common/generated/sluice/v1/DeleteTopicRequest.js';
import type { Empty, Empty__Output } from '../../common/generated/sluice/v1/Empty.js';
import type { GetRouteInfoByTopicRequest } from '../../common/generated/sluice/v1/GetRouteInfoByTopicRequest.js';
import type { GetRouteInfoByTopicResponse__Output } from '../../common/generated/sluice/v1/GetRouteInfoByTopicResponse.js';
import type { NameServerClient } from '../../common/generated/sluice/v1/NameServer.js';
import type { TopicList__Output } from '../../common/generated/sluice/v1/TopicList.js';
import type { TopicRoute__Output } from '../../common/generated/sluice/v1/TopicRoute.js';
import type { UpdateTopicRequest } from '../../common/generated/sluice/v1/UpdateTopicRequest.js';
import type { UpdateTopicResponse__Output } from '../../common/generated/sluice/v1/UpdateTopicResponse.js';
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

  /** Every topic any name server's brokers registered. */
  async topicList(): Promise<string[]> {
    const res = await this.any((c) =>
      callUnary<Empty, TopicList__Output>(c, c.GetAllTopicList, {}, this.timeoutMs),
    );
    return res.topics;
  }

  /**
   * Creates or updates a topic on the brokers (every master of a cluster, or
   * one broker). Name servers are independent, so this goes to one of them;
   * the brokers then re-register with all.
   */
  async updateTopic(req: UpdateTopicRequest): Promise<string[]> {
    const res = await this.any((c) =>
      callUnary<UpdateTopicRequest, UpdateTopicResponse__Output>(
        c,
        c.UpdateTopic,
        req,
        this.timeoutMs,
      ),
    );
    return res.broker_names;
  }

  /**
   * Deletes a topic. Each name server keeps its own route table, so every
   * reachable one is told; fails only when none is reachable.
   */
  async deleteTopic(req: DeleteTopicRequest): Promise<void> {
    const outcomes = await Promise.allSettled(
      this.clients.map((c) =>
        callUnary<DeleteTopicRequest, Empty__Output>(
          c.client,
          c.client.DeleteTopic,
          req,
          this.timeoutMs,
        ),
      ),
    );
    const failures = outcomes.filter((o) => o.status === 'rejected');
    if (failures.length === outcomes.length) {
      const first = (failures[0] as PromiseRejectedResult).reason;
      if (isSluiceError(first) && !first.retriable) throw first;
      throw errors.unavailable('no name server is reachable', first);
    }
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
