/**
 * Coalesces concurrent acks of one (topic, group) into one
 * GatewayService.ack call, which sends one AckMessages RPC per broker.
 *
 * The official RocketMQ SDKs ack one message per request, so without this a
 * consumer that acks a received batch of 32 costs 32 broker RPCs. Acks
 * arriving together leave together at the end of the event-loop turn (or
 * after `lingerMs`); while `maxInFlight` calls of a lane are outstanding,
 * newer acks queue and leave together when one returns, so batches grow with
 * load and an idle gateway adds no delay (as SendBatcher does for sends).
 *
 * Each caller gets back exactly the statuses of its own handles, in order.
 */
import type { Status__Output } from '../../common/generated/sluice/v1/Status.js';

export const DEFAULT_ACK_MAX_BATCH = 256;
export const DEFAULT_ACK_MAX_IN_FLIGHT = 2;

export type AckCall = (
  topic: string,
  group: string,
  handles: readonly string[],
) => Promise<Status__Output[]>;

export interface AckCoalescerOptions {
  /** 0 = flush at the end of the current event-loop turn (setImmediate). */
  lingerMs?: number;
  maxBatch?: number;
  maxInFlight?: number;
}

interface Pending {
  handles: readonly string[];
  resolve: (statuses: Status__Output[]) => void;
  reject: (err: unknown) => void;
}

interface Lane {
  topic: string;
  group: string;
  queue: Pending[];
  queued: number;
  inFlight: number;
  scheduled: boolean;
}

export class AckCoalescer {
  private readonly lanes = new Map<string, Lane>();
  private readonly lingerMs: number;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;

  constructor(
    private readonly call: AckCall,
    opts: AckCoalescerOptions = {},
  ) {
    this.lingerMs = opts.lingerMs ?? 0;
    this.maxBatch = opts.maxBatch ?? DEFAULT_ACK_MAX_BATCH;
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_ACK_MAX_IN_FLIGHT;
  }

  /** Acks handles of one topic and group; answers per handle, in order. */
  ack(topic: string, group: string, handles: readonly string[]): Promise<Status__Output[]> {
    if (handles.length === 0) return Promise.resolve([]);
    const key = `${topic}\u0000${group}`;
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { topic, group, queue: [], queued: 0, inFlight: 0, scheduled: false };
      this.lanes.set(key, lane);
    }
    const l = lane;
    return new Promise<Status__Output[]>((resolve, reject) => {
      l.queue.push({ handles, resolve, reject });
      l.queued += handles.length;
      this.schedule(key, l);
    });
  }

  private schedule(key: string, lane: Lane): void {
    if (lane.scheduled || lane.inFlight >= this.maxInFlight) return;
    if (lane.queued >= this.maxBatch) {
      this.flush(key, lane);
      return;
    }
    lane.scheduled = true;
    const run = () => {
      lane.scheduled = false;
      this.flush(key, lane);
    };
    if (this.lingerMs > 0) setTimeout(run, this.lingerMs);
    else setImmediate(run);
  }

  private flush(key: string, lane: Lane): void {
    while (lane.queue.length > 0 && lane.inFlight < this.maxInFlight) {
      const batch: Pending[] = [];
      let n = 0;
      while (
        lane.queue.length > 0 &&
        (batch.length === 0 || n + lane.queue[0]!.handles.length <= this.maxBatch)
      ) {
        const p = lane.queue.shift()!;
        batch.push(p);
        n += p.handles.length;
      }
      lane.queued -= n;
      lane.inFlight++;
      this.call(
        lane.topic,
        lane.group,
        batch.flatMap((p) => p.handles),
      )
        .then(
          (statuses) => {
            let at = 0;
            for (const p of batch) {
              p.resolve(statuses.slice(at, at + p.handles.length));
              at += p.handles.length;
            }
          },
          (err: unknown) => {
            for (const p of batch) p.reject(err);
          },
        )
        .finally(() => {
          lane.inFlight--;
          if (lane.queue.length > 0) this.schedule(key, lane);
          else if (lane.inFlight === 0 && !lane.scheduled) this.lanes.delete(key);
        });
    }
  }
}
