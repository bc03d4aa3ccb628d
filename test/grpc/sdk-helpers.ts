/**
 * Helpers for driving the official rocketmq-client-nodejs SDK (unmodified)
 * against a test cluster's gateway.
 */
import { createRequire } from 'node:module';
import {
  type MessageView,
  Producer,
  type ProducerOptions,
  SimpleConsumer,
  type SimpleConsumerOptions,
} from 'rocketmq-client-nodejs';
import type { Cluster } from '../harness/cluster.js';

const require = createRequire(import.meta.url);
/** The SDK's protocol enums (TransactionResolution …), from its compiled protocol classes. */
export const sdkDefinition = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb.js');

/** Collects what the SDK logs; errors are kept for failure messages. */
export class SdkLog {
  readonly errors: string[] = [];
  readonly logger = {
    info: () => undefined,
    debug: () => undefined,
    warn: () => undefined,
    error: (...args: unknown[]) => {
      this.errors.push(args.map(String).join(' '));
    },
    close: () => undefined,
  };
}

export function endpointsOf(c: Cluster): string {
  return `127.0.0.1:${c.gateway!.grpcPort}`;
}

type Shutdownable = { shutdown(): Promise<void> };

/** Starts SDK clients and shuts every one down at the end. */
export class SdkClients {
  private readonly started: Shutdownable[] = [];
  readonly log = new SdkLog();

  constructor(private readonly cluster: Cluster) {}

  async producer(options: Partial<ProducerOptions> = {}): Promise<Producer> {
    const p = new Producer({
      endpoints: endpointsOf(this.cluster),
      namespace: '',
      logger: this.log.logger as never,
      ...options,
    });
    await p.startup();
    this.started.push(p);
    return p;
  }

  async consumer(
    group: string,
    subscriptions: Record<string, string>,
    options: Partial<SimpleConsumerOptions> = {},
  ): Promise<SimpleConsumer> {
    const c = new SimpleConsumer({
      endpoints: endpointsOf(this.cluster),
      namespace: '',
      consumerGroup: group,
      subscriptions: new Map(Object.entries(subscriptions)),
      awaitDuration: 2_000,
      logger: this.log.logger as never,
      ...options,
    });
    await c.startup();
    this.started.push(c);
    return c;
  }

  async shutdownAll(): Promise<void> {
    for (const c of this.started.splice(0).reverse()) await c.shutdown().catch(() => undefined);
  }
}

/**
 * Receives until `count` messages arrived (acking none) or the time runs out;
 * returns what arrived.
 */
export async function receiveN(
  consumer: SimpleConsumer,
  count: number,
  timeoutMs = 15_000,
  invisibleMs = 30_000,
): Promise<MessageView[]> {
  const out: MessageView[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) {
    out.push(...(await consumer.receive(Math.min(32, count - out.length), invisibleMs)));
  }
  return out;
}

export function bodies(msgs: readonly MessageView[]): string[] {
  return msgs.map((m) => m.body.toString('utf8'));
}
