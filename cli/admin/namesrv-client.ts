/**
 * mqadmin's view of the name servers: one channel per address of the
 * `;`-separated list. A read goes to the first that answers (the last good
 * one first); a write that RocketMQ applies to every name server (write
 * permission, KV config) goes to each.
 */
import { type CallOptions, credentials, type Metadata, type ServiceError } from '@grpc/grpc-js';
import { errors, isSluiceError, SluiceError } from '../../common/errors.js';
import type { BrokerPermRequest } from '../../common/generated/sluice/v1/BrokerPermRequest.js';
import type { BrokerPermResponse__Output } from '../../common/generated/sluice/v1/BrokerPermResponse.js';
import type { ClusterInfo__Output } from '../../common/generated/sluice/v1/ClusterInfo.js';
import type { DeleteTopicRequest } from '../../common/generated/sluice/v1/DeleteTopicRequest.js';
import type { Empty, Empty__Output } from '../../common/generated/sluice/v1/Empty.js';
import type { GetRouteInfoByTopicRequest } from '../../common/generated/sluice/v1/GetRouteInfoByTopicRequest.js';
import type { GetRouteInfoByTopicResponse__Output } from '../../common/generated/sluice/v1/GetRouteInfoByTopicResponse.js';
import type { KVConfig, KVConfig__Output } from '../../common/generated/sluice/v1/KVConfig.js';
import type { KVConfigKey } from '../../common/generated/sluice/v1/KVConfigKey.js';
import type { KVList__Output } from '../../common/generated/sluice/v1/KVList.js';
import type { KVNamespace } from '../../common/generated/sluice/v1/KVNamespace.js';
import type { NameServerClient } from '../../common/generated/sluice/v1/NameServer.js';
import type { TopicList__Output } from '../../common/generated/sluice/v1/TopicList.js';
import type { TopicRoute__Output } from '../../common/generated/sluice/v1/TopicRoute.js';
import type { UpdateTopicRequest } from '../../common/generated/sluice/v1/UpdateTopicRequest.js';
import type { UpdateTopicResponse__Output } from '../../common/generated/sluice/v1/UpdateTopicResponse.js';
import { callUnary, GRPC_CHANNEL_OPTIONS } from '../../common/grpc.js';
import { checkTopicName } from '../../common/names.js';
import { sluiceProto } from '../../common/proto.js';

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: CallOptions,
  callback: (err: ServiceError | null, value?: Res) => void,
) => unknown;

/**
 * A failure of the name server itself (transport, or an answer that did not
 * come from a Sluice server): the next one may answer. Errors a name server
 * raised — even retriable ones such as "broker unreachable" during a fan-out
 * — are its answer and final. fromGrpcError keeps the raw gRPC error as
 * `cause` only for the former.
 */
function isUnreachable(err: unknown): boolean {
  return isSluiceError(err) && err.cause !== undefined;
}

/**
 * The short cause of a transport failure: grpc-js says "dns:h:p unavailable:
 * No connection established. Last error: Error: connect ECONNREFUSED h:p.
 * Resolution note: …"; people need "connect ECONNREFUSED h:p".
 */
export function shortReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const m = /Last error: (?:Error: )?(.+?)(?:\.?\s*Resolution note:.*)?$/s.exec(message);
  return (m ? m[1]! : message).replace(/\s+/g, ' ').trim();
}

/** The outcome of a call made on every name server. */
export interface EachResult<T> {
  addr: string;
  value?: T;
  error?: SluiceError;
}

export class NamesrvClient {
  private readonly clients: { addr: string; client: NameServerClient }[];
  private preferred = 0;

  constructor(
    readonly addrs: readonly string[],
    private readonly timeoutMs: number,
  ) {
    if (addrs.length === 0) throw errors.badRequest('no name server address');
    const NameServer = sluiceProto().grpc.sluice.v1.NameServer;
    this.clients = addrs.map((addr) => ({
      addr,
      client: new NameServer(addr, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS),
    }));
  }

  /** Calls the first name server that answers; app errors (not found …) are final. */
  private async any<Req, Res>(
    pick: (c: NameServerClient) => Unary<Req, Res>,
    req: Req,
  ): Promise<Res> {
    let last: unknown;
    for (let i = 0; i < this.clients.length; i++) {
      const index = (this.preferred + i) % this.clients.length;
      const { client } = this.clients[index]!;
      try {
        const res = await callUnary<Req, Res>(client, pick(client), req, this.timeoutMs);
        this.preferred = index;
        return res;
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        last = err;
      }
    }
    throw errors.unavailable(
      `cannot reach any name server (${this.addrs.join(';')}): ${shortReason(last)}`,
      last,
    );
  }

  /** Calls every name server; one result per address, in list order. */
  private async each<Req, Res>(
    pick: (c: NameServerClient) => Unary<Req, Res>,
    req: Req,
  ): Promise<EachResult<Res>[]> {
    return Promise.all(
      this.clients.map(async ({ addr, client }) => {
        try {
          return {
            addr,
            value: await callUnary<Req, Res>(client, pick(client), req, this.timeoutMs),
          };
        } catch (err) {
          return {
            addr,
            error: err instanceof SluiceError ? err : errors.internal(String(err), err),
          };
        }
      }),
    );
  }

  clusterInfo(): Promise<ClusterInfo__Output> {
    return this.any<Empty, ClusterInfo__Output>((c) => c.GetClusterInfo, {});
  }

  topicList(): Promise<string[]> {
    return this.any<Empty, TopicList__Output>((c) => c.GetAllTopicList, {}).then((r) => r.topics);
  }

  /** Routes of several topics in one call; unknown topics carry status 40402. */
  routes(topics: string[]): Promise<TopicRoute__Output[]> {
    return this.any<GetRouteInfoByTopicRequest, GetRouteInfoByTopicResponse__Output>(
      (c) => c.GetRouteInfoByTopic,
      { topics },
    ).then((r) => r.routes);
  }

  /** The route of one topic; rejects with ILLEGAL_TOPIC for a bad name, TOPIC_NOT_FOUND when there is none. */
  async route(topic: string): Promise<TopicRoute__Output> {
    const [route] = await this.routes([checkTopicName(topic)]);
    if (!route || (route.status && route.status.code !== 20000)) throw errors.topicNotFound(topic);
    return route;
  }

  updateTopic(req: UpdateTopicRequest): Promise<UpdateTopicResponse__Output> {
    return this.any<UpdateTopicRequest, UpdateTopicResponse__Output>((c) => c.UpdateTopic, req);
  }

  async deleteTopic(req: DeleteTopicRequest): Promise<void> {
    await this.any<DeleteTopicRequest, Empty__Output>((c) => c.DeleteTopic, req);
  }

  wipeWritePerm(brokerName: string): Promise<EachResult<BrokerPermResponse__Output>[]> {
    return this.each<BrokerPermRequest, BrokerPermResponse__Output>(
      (c) => c.WipeWritePermOfBroker,
      {
        broker_name: brokerName,
      },
    );
  }

  addWritePerm(brokerName: string): Promise<EachResult<BrokerPermResponse__Output>[]> {
    return this.each<BrokerPermRequest, BrokerPermResponse__Output>((c) => c.AddWritePermOfBroker, {
      broker_name: brokerName,
    });
  }

  putKvConfig(req: KVConfig): Promise<EachResult<Empty__Output>[]> {
    return this.each<KVConfig, Empty__Output>((c) => c.PutKVConfig, req);
  }

  deleteKvConfig(req: KVConfigKey): Promise<EachResult<Empty__Output>[]> {
    return this.each<KVConfigKey, Empty__Output>((c) => c.DeleteKVConfig, req);
  }

  getKvConfig(req: KVConfigKey): Promise<KVConfig__Output> {
    return this.any<KVConfigKey, KVConfig__Output>((c) => c.GetKVConfig, req);
  }

  kvList(namespace: string): Promise<Record<string, string>> {
    return this.any<KVNamespace, KVList__Output>((c) => c.GetKVListByNamespace, { namespace }).then(
      (r) => r.table,
    );
  }

  close(): void {
    for (const { client } of this.clients) client.close();
  }
}
