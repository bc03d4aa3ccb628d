/**
 * mqadmin's channels to brokers, one per address, for the admin RPCs of the
 * Broker service. Brokers are found through the name server first.
 */
import { type CallOptions, credentials, type Metadata, type ServiceError } from '@grpc/grpc-js';
import type { BrokerClient } from '../../common/generated/sluice/v1/Broker.js';
import type { BrokerConfig__Output } from '../../common/generated/sluice/v1/BrokerConfig.js';
import type { BrokerStatus__Output } from '../../common/generated/sluice/v1/BrokerStatus.js';
import type { DeleteSubscriptionGroupRequest } from '../../common/generated/sluice/v1/DeleteSubscriptionGroupRequest.js';
import type { Empty, Empty__Output } from '../../common/generated/sluice/v1/Empty.js';
import type { GetConsumerOffsetsRequest } from '../../common/generated/sluice/v1/GetConsumerOffsetsRequest.js';
import type { GetConsumerOffsetsResponse__Output } from '../../common/generated/sluice/v1/GetConsumerOffsetsResponse.js';
import type { GetConsumerProgressRequest } from '../../common/generated/sluice/v1/GetConsumerProgressRequest.js';
import type { GetConsumerProgressResponse__Output } from '../../common/generated/sluice/v1/GetConsumerProgressResponse.js';
import type { GetTopicStatusRequest } from '../../common/generated/sluice/v1/GetTopicStatusRequest.js';
import type { GetTopicStatusResponse__Output } from '../../common/generated/sluice/v1/GetTopicStatusResponse.js';
import type { QueryMessageByIdRequest } from '../../common/generated/sluice/v1/QueryMessageByIdRequest.js';
import type { QueryMessageByKeyRequest } from '../../common/generated/sluice/v1/QueryMessageByKeyRequest.js';
import type { QueryMessageResponse__Output } from '../../common/generated/sluice/v1/QueryMessageResponse.js';
import type { ResetOffsetByTimeRequest } from '../../common/generated/sluice/v1/ResetOffsetByTimeRequest.js';
import type { ResetOffsetByTimeResponse__Output } from '../../common/generated/sluice/v1/ResetOffsetByTimeResponse.js';
import type { SearchOffsetByTimeRequest } from '../../common/generated/sluice/v1/SearchOffsetByTimeRequest.js';
import type { SearchOffsetByTimeResponse__Output } from '../../common/generated/sluice/v1/SearchOffsetByTimeResponse.js';
import type {
  SubscriptionGroupConfig,
  SubscriptionGroupConfig__Output,
} from '../../common/generated/sluice/v1/SubscriptionGroupConfig.js';
import type { SubscriptionGroupList__Output } from '../../common/generated/sluice/v1/SubscriptionGroupList.js';
import type { UpdateConsumerOffsetsRequest } from '../../common/generated/sluice/v1/UpdateConsumerOffsetsRequest.js';
import type { UpdateConsumerOffsetsResponse__Output } from '../../common/generated/sluice/v1/UpdateConsumerOffsetsResponse.js';
import { callUnary, GRPC_CHANNEL_OPTIONS } from '../../common/grpc.js';
import { sluiceProto } from '../../common/proto.js';

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: CallOptions,
  callback: (err: ServiceError | null, value?: Res) => void,
) => unknown;

export class BrokerClients {
  private readonly clients = new Map<string, BrokerClient>();

  constructor(private readonly timeoutMs: number) {}

  private call<Req, Res>(
    addr: string,
    pick: (c: BrokerClient) => Unary<Req, Res>,
    req: Req,
  ): Promise<Res> {
    let client = this.clients.get(addr);
    if (!client) {
      const Broker = sluiceProto().grpc.sluice.v1.Broker;
      client = new Broker(addr, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
      this.clients.set(addr, client);
    }
    return callUnary<Req, Res>(client, pick(client), req, this.timeoutMs);
  }

  status(addr: string): Promise<Record<string, string>> {
    return this.call<Empty, BrokerStatus__Output>(addr, (c) => c.GetBrokerStatus, {}).then(
      (r) => r.stats,
    );
  }

  config(addr: string): Promise<Record<string, string>> {
    return this.call<Empty, BrokerConfig__Output>(addr, (c) => c.GetBrokerConfig, {}).then(
      (r) => r.config,
    );
  }

  topicStatus(addr: string, topic: string): Promise<GetTopicStatusResponse__Output> {
    return this.call<GetTopicStatusRequest, GetTopicStatusResponse__Output>(
      addr,
      (c) => c.GetTopicStatus,
      {
        topic,
      },
    );
  }

  subscriptionGroups(addr: string): Promise<SubscriptionGroupConfig__Output[]> {
    return this.call<Empty, SubscriptionGroupList__Output>(
      addr,
      (c) => c.GetAllSubscriptionGroups,
      {},
    ).then((r) => r.groups);
  }

  async updateSubscriptionGroup(addr: string, config: SubscriptionGroupConfig): Promise<void> {
    await this.call<SubscriptionGroupConfig, Empty__Output>(
      addr,
      (c) => c.UpdateSubscriptionGroup,
      config,
    );
  }

  async deleteSubscriptionGroup(addr: string, group: string): Promise<void> {
    await this.call<DeleteSubscriptionGroupRequest, Empty__Output>(
      addr,
      (c) => c.DeleteSubscriptionGroup,
      {
        group_name: group,
      },
    );
  }

  consumerProgress(
    addr: string,
    req: GetConsumerProgressRequest,
  ): Promise<GetConsumerProgressResponse__Output> {
    return this.call<GetConsumerProgressRequest, GetConsumerProgressResponse__Output>(
      addr,
      (c) => c.GetConsumerProgress,
      req,
    );
  }

  queryById(addr: string, req: QueryMessageByIdRequest): Promise<QueryMessageResponse__Output> {
    return this.call<QueryMessageByIdRequest, QueryMessageResponse__Output>(
      addr,
      (c) => c.QueryMessageById,
      req,
    );
  }

  queryByKey(addr: string, req: QueryMessageByKeyRequest): Promise<QueryMessageResponse__Output> {
    return this.call<QueryMessageByKeyRequest, QueryMessageResponse__Output>(
      addr,
      (c) => c.QueryMessageByKey,
      req,
    );
  }

  resetOffsetByTime(
    addr: string,
    req: ResetOffsetByTimeRequest,
  ): Promise<ResetOffsetByTimeResponse__Output> {
    return this.call<ResetOffsetByTimeRequest, ResetOffsetByTimeResponse__Output>(
      addr,
      (c) => c.ResetOffsetByTime,
      req,
    );
  }

  searchOffsetByTime(addr: string, req: SearchOffsetByTimeRequest): Promise<number> {
    return this.call<SearchOffsetByTimeRequest, SearchOffsetByTimeResponse__Output>(
      addr,
      (c) => c.SearchOffsetByTime,
      req,
    ).then((r) => Number(r.offset));
  }

  consumerOffsets(
    addr: string,
    req: GetConsumerOffsetsRequest,
  ): Promise<GetConsumerOffsetsResponse__Output> {
    return this.call<GetConsumerOffsetsRequest, GetConsumerOffsetsResponse__Output>(
      addr,
      (c) => c.GetConsumerOffsets,
      req,
    );
  }

  updateConsumerOffsets(
    addr: string,
    req: UpdateConsumerOffsetsRequest,
  ): Promise<UpdateConsumerOffsetsResponse__Output> {
    return this.call<UpdateConsumerOffsetsRequest, UpdateConsumerOffsetsResponse__Output>(
      addr,
      (c) => c.UpdateConsumerOffsets,
      req,
    );
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
