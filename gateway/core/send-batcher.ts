/**
 * Coalesces concurrent sends to one broker into batch RPCs.
 *
 * grpc-js manages ~7k unary calls/s here but ~170k messages/s when a call
 * carries a hundred or more, so one HTTP request per RPC would cap REST
 * throughput. Each broker address has a lane: sends queue there and leave
 * together after a short linger (by default the rest of the current
 * event-loop turn, which costs an idle gateway nothing) or at once when a
 * full batch is waiting. At most `maxInFlight` RPCs per broker are
 * outstanding; sends arriving meanwhile queue and leave together when one
 * returns, so batches grow with load and latency stays low when idle
 * (Nagle-style, like Kafka's linger.ms with max.in.flight).
 *
 * Each caller's entries travel contiguously in one RPC and get back exactly
 * their own per-entry results, in order. A failed RPC fails every caller in
 * it; callers decide whether to retry elsewhere.
 *
 * Memory stays flat: at most `maxQueued` entries wait per broker. A send
 * that would go past it is refused at once with TOO_MANY_REQUESTS (HTTP 429)
 * carrying a Retry-After hint: the time the queue ahead of it needs to drain
 * at the lane's recent RPC latency.
 */
import { errors } from '../../common/errors.js';
import type { SendEntry } from '../../common/generated/sluice/v1/SendEntry.js';
import type { SendResult__Output } from '../../common/generated/sluice/v1/SendResult.js';
import {
  DEFAULT_SEND_MAX_BATCH,
  DEFAULT_SEND_MAX_IN_FLIGHT,
  DEFAULT_SEND_MAX_QUEUED,
} from '../options.js';

/** Keep a coalesced RPC well under the gRPC message limit. */
export const DEFAULT_SEND_MAX_BATCH_BYTES = 16 * 1024 * 1024;

export type SendRpc = (addr: string, entries: SendEntry[]) => Promise<SendResult__Output[]>;

export interface SendBatcherOptions {
  /** 0 = flush at the end of the current event-loop turn (setImmediate). */
  lingerMs?: number;
  maxBatch?: number;
  maxInFlight?: number;
  /** Entries that may wait for an RPC slot per broker; more are refused (429). */
  maxQueued?: number;
  maxBatchBytes?: number;
  /** Observes each RPC's size, for metrics. */
  onBatch?: (addr: string, entries: number) => void;
}

interface Pending {
  entries: SendEntry[];
  bytes: number;
  resolve: (results: SendResult__Output[]) => void;
  reject: (err: unknown) => void;
}

interface Lane {
  queue: Pending[];
  queuedEntries: number;
  inFlight: number;
  scheduled: boolean;
  /** Moving average of this lane's RPC latency, ms (for the Retry-After hint). */
  rpcMs: number;
}

/** Weight of the newest RPC in the lane's latency average. */
const RPC_MS_WEIGHT = 0.2;

function bytesOf(entries: readonly SendEntry[]): number {
  let n = 0;
  for (const e of entries) n += (e.message?.body as Buffer | undefined)?.length ?? 0;
  return n;
}

export class SendBatcher {
  private readonly lanes = new Map<string, Lane>();
  private readonly lingerMs: number;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private readonly maxBatchBytes: number;

  constructor(
    private readonly rpc: SendRpc,
    private readonly opts: SendBatcherOptions = {},
  ) {
    this.lingerMs = opts.lingerMs ?? 0;
    this.maxBatch = opts.maxBatch ?? DEFAULT_SEND_MAX_BATCH;
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_SEND_MAX_IN_FLIGHT;
    this.maxQueued = opts.maxQueued ?? DEFAULT_SEND_MAX_QUEUED;
    this.maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_SEND_MAX_BATCH_BYTES;
  }

  /**
   * Sends entries to a broker, sharing an RPC with concurrent callers; answers
   * per entry. Rejects with TOO_MANY_REQUESTS (details.retryAfterMs) when the
   * broker's queue is full.
   */
  send(addr: string, entries: SendEntry[]): Promise<SendResult__Output[]> {
    let lane = this.lanes.get(addr);
    if (!lane) {
      lane = { queue: [], queuedEntries: 0, inFlight: 0, scheduled: false, rpcMs: 0 };
      this.lanes.set(addr, lane);
    }
    const l = lane;
    // An empty queue always takes a send, however large: it leaves in its own RPC.
    if (l.queuedEntries > 0 && l.queuedEntries + entries.length > this.maxQueued) {
      // RPCs needed to drain the queue ahead, at maxInFlight in parallel.
      const rounds = Math.ceil(l.queuedEntries / (this.maxBatch * this.maxInFlight)) + 1;
      return Promise.reject(
        errors.tooManyRequests(
          `the send queue to broker ${addr} is full (${l.queuedEntries} messages waiting)`,
          Math.ceil(rounds * Math.max(l.rpcMs, 1)),
        ),
      );
    }
    return new Promise<SendResult__Output[]>((resolve, reject) => {
      l.queue.push({ entries, bytes: bytesOf(entries), resolve, reject });
      l.queuedEntries += entries.length;
      if (l.queuedEntries >= this.maxBatch) this.flush(addr, l);
      else if (!l.scheduled) {
        l.scheduled = true;
        const fire = () => {
          l.scheduled = false;
          this.flush(addr, l);
        };
        if (this.lingerMs > 0) setTimeout(fire, this.lingerMs);
        else setImmediate(fire);
      }
    });
  }

  /** Sends queued entries while the lane has room for another RPC. */
  private flush(addr: string, lane: Lane): void {
    while (lane.queue.length > 0 && lane.inFlight < this.maxInFlight) {
      const batch: Pending[] = [];
      let count = 0;
      let bytes = 0;
      while (lane.queue.length > 0) {
        const next = lane.queue[0]!;
        if (
          batch.length > 0 &&
          (count + next.entries.length > this.maxBatch || bytes + next.bytes > this.maxBatchBytes)
        ) {
          break;
        }
        lane.queue.shift();
        batch.push(next);
        count += next.entries.length;
        bytes += next.bytes;
      }
      lane.queuedEntries -= count;
      lane.inFlight++;
      this.opts.onBatch?.(addr, count);
      const entries = batch.length === 1 ? batch[0]!.entries : batch.flatMap((p) => p.entries);
      const started = performance.now();
      this.rpc(addr, entries)
        .then(
          (results) => {
            let at = 0;
            for (const p of batch) {
              p.resolve(results.slice(at, at + p.entries.length));
              at += p.entries.length;
            }
          },
          (err: unknown) => {
            for (const p of batch) p.reject(err);
          },
        )
        .finally(() => {
          const ms = performance.now() - started;
          lane.rpcMs = lane.rpcMs === 0 ? ms : lane.rpcMs + RPC_MS_WEIGHT * (ms - lane.rpcMs);
          lane.inFlight--;
          if (lane.queue.length > 0) this.flush(addr, lane);
        });
    }
  }

  /** Entries waiting for an RPC slot, over all brokers. */
  get queued(): number {
    let n = 0;
    for (const l of this.lanes.values()) n += l.queuedEntries;
    return n;
  }
}
