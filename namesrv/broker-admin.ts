/**
 * What the name server asks of brokers when an admin changes a topic or a
 * broker's permission through it: the seam the service depends on, and its
 * gRPC implementation (one cached channel per broker address).
 */
import { credentials } from '@grpc/grpc-js';
import type { BrokerClient } from '../common/generated/sluice/v1/Broker.js';
import type { DeleteBrokerTopicRequest } from '../common/generated/sluice/v1/DeleteBrokerTopicRequest.js';
import type { Empty, Empty__Output } from '../common/generated/sluice/v1/Empty.js';
import type { SetBrokerPermissionRequest } from '../common/generated/sluice/v1/SetBrokerPermissionRequest.js';
import type {
  TopicConfig,
  TopicConfig__Output,
} from '../common/generated/sluice/v1/TopicConfig.js';
import type { TopicConfigList__Output } from '../common/generated/sluice/v1/TopicConfigList.js';
import { callUnary, DEFAULT_RPC_TIMEOUT_MS, GRPC_CHANNEL_OPTIONS } from '../common/grpc.js';
import { sluiceProto } from '../common/proto.js';

export interface BrokerAdmin {
  /** Creates or updates a topic on the broker at `addr`. */
  updateTopic(addr: string, config: TopicConfig): Promise<void>;
  /** The broker's config of one topic (with its defaults filled); undefined when unknown. */
  topicConfig(addr: string, topic: string): Promise<TopicConfig__Output | undefined>;
  deleteTopic(addr: string, topic: string): Promise<void>;
  /** Sets and persists the broker-wide permission (4 read, 2 write). */
  setPermission(addr: string, perm: number): Promise<void>;
  /** Closes the channel to a broker that left. */
  forget(addr: string): void;
  close(): void;
}

export class GrpcBrokerAdmin implements BrokerAdmin {
  private readonly clients = new Map<string, BrokerClient>();

  constructor(private readonly timeoutMs = DEFAULT_RPC_TIMEOUT_MS) {}

  private client(addr: string): BrokerClient {
    let client = this.clients.get(addr);
    if (!client) {
      const Broker = sluiceProto().grpc.sluice.v1.Broker;
      client = new Broker(addr, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
      this.clients.set(addr, client);
    }
    return client;
  }

  async updateTopic(addr: string, config: TopicConfig): Promise<void> {
    const c = this.client(addr);
    await callUnary<TopicConfig, Empty__Output>(c, c.UpdateTopic, config, this.timeoutMs);
  }

  async topicConfig(addr: string, topic: string): Promise<TopicConfig__Output | undefined> {
    const c = this.client(addr);
    const list = await callUnary<Empty, TopicConfigList__Output>(
      c,
      c.GetAllTopicConfig,
      {},
      this.timeoutMs,
    );
    return list.topics.find((t) => t.topic_name === topic);
  }

  async deleteTopic(addr: string, topic: string): Promise<void> {
    const c = this.client(addr);
    await callUnary<DeleteBrokerTopicRequest, Empty__Output>(
      c,
      c.DeleteTopic,
      { topic },
      this.timeoutMs,
    );
  }

  async setPermission(addr: string, perm: number): Promise<void> {
    const c = this.client(addr);
    await callUnary<SetBrokerPermissionRequest, Empty__Output>(
      c,
      c.SetBrokerPermission,
      { perm },
      this.timeoutMs,
    );
  }

  forget(addr: string): void {
    this.clients.get(addr)?.close();
    this.clients.delete(addr);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
