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
 */
import type { SendEntry } from '../../common/generated/sluice/v1/SendEntry.js';
import type { SendResult__Output } from '../../common/generated/sluice/v1/SendResult.js';

export const DEFAULT_SEND_MAX_BATCH = 256;
export const DEFAULT_SEND_MAX_IN_FLIGHT = 4;
/** Keep a coalesced RPC well under the gRPC message limit. */
export const DEFAULT_SEND_MAX_BATCH_BYTES = 16 * 1024 * 1024;

export type SendRpc = (addr: string, entries: SendEntry[]) => Promise<SendResult__Output[]>;

export interface SendBatcherOptions {
  /** 0 = flush at the end of the current event-loop turn (setImmediate). */
  lingerMs?: number;
  maxBatch?: number;
  maxInFlight?: number;
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
}

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
  private readonly maxBatchBytes: number;

  constructor(
    private readonly rpc: SendRpc,
    private readonly opts: SendBatcherOptions = {},
  ) {
    this.lingerMs = opts.lingerMs ?? 0;
    this.maxBatch = opts.maxBatch ?? DEFAULT_SEND_MAX_BATCH;
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_SEND_MAX_IN_FLIGHT;
    this.maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_SEND_MAX_BATCH_BYTES;
  }

  /** Sends entries to a broker, sharing an RPC with concurrent callers; answers per entry. */
  send(addr: string, entries: SendEntry[]): Promise<SendResult__Output[]> {
    let lane = this.lanes.get(addr);
    if (!lane) {
      lane = { queue: [], queuedEntries: 0, inFlight: 0, scheduled: false };
      this.lanes.set(addr, lane);
    }
    const l = lane;
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
