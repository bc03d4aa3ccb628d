/**
 * Helpers for the replication tests: a small typed broker client, commitlog
 * checksums, a continuous producer that records every acknowledged message,
 * and a reader that drains a topic from one broker.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { BrokerClient } from '../../common/generated/sluice/v1/Broker.js';
import type { Empty } from '../../common/generated/sluice/v1/Empty.js';
import type { PullMessagesResponse__Output } from '../../common/generated/sluice/v1/PullMessagesResponse.js';
import type { SendMessagesRequest } from '../../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse__Output } from '../../common/generated/sluice/v1/SendMessagesResponse.js';
import type { SendResult__Output } from '../../common/generated/sluice/v1/SendResult.js';
import type { TopicConfigList__Output } from '../../common/generated/sluice/v1/TopicConfigList.js';
import { callUnary } from '../../common/grpc.js';
import { brokerClient, brokerStats } from '../harness/clients.js';
import { waitFor } from '../harness/wait.js';

export const OK = 20000;

/** Settings every replication test uses on its brokers (fast heartbeats and expiry). */
export const HA_BROKER_CONFIG = {
  brokerNotActiveTimeoutMillis: 3_000,
  registerBrokerInterval: 500,
  haSyncMetadataInterval: 200,
  defaultTopicQueueNums: 4,
};

export class HaClient {
  readonly client: BrokerClient;

  constructor(readonly addr: string) {
    this.client = brokerClient(addr);
  }

  close(): void {
    this.client.close();
  }

  async send(topic: string, bodies: string[], timeoutMs = 10_000): Promise<SendResult__Output[]> {
    const res = await callUnary<SendMessagesRequest, SendMessagesResponse__Output>(
      this.client,
      this.client.SendMessages,
      {
        entries: bodies.map((b) => ({
          message: { topic, body: Buffer.from(b), keys: [b] },
          queue_id: -1,
        })),
      },
      timeoutMs,
    );
    return res.results;
  }

  pull(
    topic: string,
    queueId: number,
    offset: number,
    max = 32,
    group = '',
  ): Promise<PullMessagesResponse__Output> {
    return callUnary(this.client, this.client.PullMessages, {
      consumer_group: group,
      topic,
      queue_id: queueId,
      offset,
      max_messages: max,
      max_wait_ms: 0,
      commit_offset: -1,
    });
  }

  async topics(): Promise<string[]> {
    const res = await callUnary<Empty, TopicConfigList__Output>(
      this.client,
      this.client.GetAllTopicConfig,
      {},
    );
    return res.topics.map((t) => t.topic_name);
  }

  /** Every message body of a topic on this broker (queues 0..queues-1). */
  async readAll(topic: string, queues: number): Promise<string[]> {
    const out: string[] = [];
    for (let q = 0; q < queues; q++) {
      let offset = 0;
      for (;;) {
        const res = await this.pull(topic, q, offset, 32);
        for (const m of res.messages) out.push(m.message?.body.toString() ?? '');
        if (res.messages.length === 0 || res.next_offset <= offset) break;
        offset = res.next_offset;
      }
    }
    return out;
  }
}

export async function statsOf(addr: string): Promise<Record<string, string>> {
  return brokerStats(addr);
}

/** Waits until the slave's commitlog end equals the master's (and the master stands still). */
export async function waitCaughtUp(masterAddr: string, slaveAddr: string, timeoutMs = 30_000) {
  return waitFor(
    `slave ${slaveAddr} caught up with ${masterAddr}`,
    async () => {
      const m = await statsOf(masterAddr);
      const s = await statsOf(slaveAddr);
      return m.maxPhysicalOffset === s.maxPhysicalOffset && Number(m.maxPhysicalOffset) > 0
        ? Number(m.maxPhysicalOffset)
        : undefined;
    },
    timeoutMs,
    100,
  );
}

/** SHA-256 of commitlog bytes [from, to) read from a broker's segment files. */
export function commitlogChecksum(storeRoot: string, from: number, to: number): string {
  const dir = join(storeRoot, 'commitlog');
  const hash = createHash('sha256');
  const files = readdirSync(dir)
    .filter((f) => /^\d{20}$/.test(f))
    .sort();
  const buf = Buffer.allocUnsafe(1 << 20);
  let pos = from;
  for (const f of files) {
    const start = Number(f);
    const fd = openSync(join(dir, f), 'r');
    try {
      while (pos < to) {
        const at = pos - start;
        if (at < 0) break;
        const n = readSync(fd, buf, 0, Math.min(buf.length, to - pos), at);
        if (n <= 0) break;
        hash.update(buf.subarray(0, n));
        pos += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  if (pos !== to) throw new Error(`commitlog of ${storeRoot} ends at ${pos}, wanted ${to}`);
  return hash.digest('hex');
}

export interface ProducerStats {
  /** Body → commitlog offset of every message answered OK. */
  acked: Map<string, number>;
  failed: number;
  /** Error codes seen, with counts. */
  codes: Map<number, number>;
}

/**
 * Sends batches of unique bodies to `addr` until stopped, `concurrency` RPCs
 * at a time; remembers every body the broker answered OK.
 */
export function startProducer(
  addr: string,
  topic: string,
  opts: { batch?: number; concurrency?: number; prefix?: string; pauseMs?: number } = {},
): { stats: ProducerStats; stop: () => Promise<ProducerStats> } {
  const client = new HaClient(addr);
  const stats: ProducerStats = { acked: new Map(), failed: 0, codes: new Map() };
  const batch = opts.batch ?? 16;
  let running = true;
  let seq = 0;
  const prefix = opts.prefix ?? topic;
  const worker = async () => {
    while (running) {
      const bodies = Array.from({ length: batch }, () => `${prefix}-${seq++}`);
      try {
        const results = await client.send(topic, bodies, 5_000);
        results.forEach((r, i) => {
          const code = r.status?.code ?? 0;
          if (code === OK) stats.acked.set(bodies[i]!, r.physical_offset);
          else {
            stats.failed++;
            stats.codes.set(code, (stats.codes.get(code) ?? 0) + 1);
          }
        });
      } catch {
        stats.failed += bodies.length;
        stats.codes.set(-1, (stats.codes.get(-1) ?? 0) + bodies.length);
        await new Promise((r) => setTimeout(r, 20));
      }
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  };
  const workers = Array.from({ length: opts.concurrency ?? 4 }, worker);
  return {
    stats,
    stop: async () => {
      running = false;
      await Promise.all(workers);
      client.close();
      return stats;
    },
  };
}

/** A JSON call to the gateway's REST API; answers status and parsed body. */
export async function rest(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, json };
}
