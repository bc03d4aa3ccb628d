/**
 * The gateway's end of the broker's Calls stream: SendMessages, PopMessages
 * (long polls too), AckMessages and ChangeInvisibleTime requests to one
 * broker over one long-lived stream, matched to their answers by id. A pop
 * that waits is ended early by WakePops, never cancelled.
 *
 * Why: a unary grpc-js call costs the caller ~34 KB of objects that live
 * long enough to be promoted, which made the gateway's young-generation GC
 * pauses (6–10 ms every ~160 ms at 2k calls/s) its send latency tail; a
 * stream message costs ~8 KB and almost nothing survives. Both ends also do
 * far less per call, which is what bounds pops and acks of small batches.
 *
 * Semantics are the unary calls': each request gets its answer or the
 * SluiceError the unary call would have failed with; one that gets no answer
 * within its timeout fails with PROXY_TIMEOUT (a late answer is dropped).
 * When the stream breaks, every request in flight on it fails as UNAVAILABLE
 * (retriable) and the next call opens a new stream. A broker that predates
 * the stream answers UNIMPLEMENTED: `unsupported` is then set and the
 * requests in flight fail with NOT_IMPLEMENTED; that broker did none of
 * them, so `overCalls` makes them again as unary calls.
 */
import { type ClientDuplexStream, status } from '@grpc/grpc-js';
import { Code, errors, isSluiceError, SluiceError } from '../../common/errors.js';
import { fromGrpcError } from '../../common/errors-grpc.js';
import type { AckMessagesRequest } from '../../common/generated/sluice/v1/AckMessagesRequest.js';
import type { AckMessagesResponse__Output } from '../../common/generated/sluice/v1/AckMessagesResponse.js';
import type { BrokerClient } from '../../common/generated/sluice/v1/Broker.js';
import type { CallRequest } from '../../common/generated/sluice/v1/CallRequest.js';
import type { CallResponse__Output } from '../../common/generated/sluice/v1/CallResponse.js';
import type { ChangeInvisibleTimeRequest } from '../../common/generated/sluice/v1/ChangeInvisibleTimeRequest.js';
import type { ChangeInvisibleTimeResponse__Output } from '../../common/generated/sluice/v1/ChangeInvisibleTimeResponse.js';
import type { PopMessagesRequest } from '../../common/generated/sluice/v1/PopMessagesRequest.js';
import type { PopMessagesResponse__Output } from '../../common/generated/sluice/v1/PopMessagesResponse.js';
import type { SendMessagesRequest } from '../../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse__Output } from '../../common/generated/sluice/v1/SendMessagesResponse.js';

/** Request and answer types of each kind of call the stream carries. */
export interface CallTypes {
  send: { req: SendMessagesRequest; res: SendMessagesResponse__Output };
  pop: { req: PopMessagesRequest; res: PopMessagesResponse__Output };
  ack: { req: AckMessagesRequest; res: AckMessagesResponse__Output };
  change_invisible: { req: ChangeInvisibleTimeRequest; res: ChangeInvisibleTimeResponse__Output };
}

export type CallKind = keyof CallTypes;

interface Pending {
  kind: CallKind;
  resolve: (res: CallResponse__Output) => void;
  reject: (err: SluiceError) => void;
  timer: NodeJS.Timeout;
}

type Stream = ClientDuplexStream<CallRequest, CallResponse__Output>;

export class BrokerCalls {
  private stream: Stream | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** The broker has no Calls stream (it answered UNIMPLEMENTED): call unary. */
  unsupported = false;

  constructor(
    private readonly client: BrokerClient,
    private readonly target: string,
  ) {}

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * One call of `kind` on the stream.
   *
   * @example const res = await calls.call('ack', { consumer_group, topic, receipt_handles }, 5_000);
   */
  call<K extends CallKind>(
    kind: K,
    request: CallTypes[K]['req'],
    timeoutMs: number,
  ): Promise<CallTypes[K]['res']> {
    const stream = this.open();
    const id = this.nextId++;
    return new Promise<CallResponse__Output>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) {
          reject(errors.timeout(`broker ${this.target} did not answer in ${timeoutMs} ms`));
        }
      }, timeoutMs);
      this.pending.set(id, { kind, resolve, reject, timer });
      stream.write({ id, [kind]: request });
    }).then((res) => res[kind] as CallTypes[K]['res']);
  }

  /** Ends the stream; requests still in flight fail as UNAVAILABLE. */
  close(): void {
    const stream = this.stream;
    if (!stream) return;
    this.fail(stream, { code: status.CANCELLED, details: 'call stream closed' });
    stream.cancel();
  }

  private open(): Stream {
    if (this.stream) return this.stream;
    const stream = this.client.Calls();
    stream.on('data', (res: CallResponse__Output) => {
      const p = this.pending.get(res.id);
      if (!p) return; // timed out already
      this.pending.delete(res.id);
      clearTimeout(p.timer);
      if (res.error) {
        p.reject(
          new SluiceError(res.error.code, res.error.message, {
            reason: (res.error.reason || undefined) as SluiceError['reason'],
            retriable: res.retriable,
          }),
        );
      } else if (res.result !== p.kind || !res[p.kind]) {
        p.reject(
          errors.internal(
            `broker ${this.target} answered a ${p.kind} call with no answer of its kind`,
          ),
        );
      } else {
        p.resolve(res);
      }
    });
    stream.on('error', (err) => this.fail(stream, err));
    stream.on('end', () =>
      this.fail(stream, { code: status.UNAVAILABLE, details: 'call stream ended' }),
    );
    this.stream = stream;
    return stream;
  }

  /** The stream is over: fail what is in flight on it; the next call opens another. */
  private fail(stream: Stream, err: unknown): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    const e = fromGrpcError(err, this.target);
    if (e.code === Code.NOT_IMPLEMENTED) this.unsupported = true;
    const failed = [...this.pending.values()];
    this.pending.clear();
    for (const p of failed) {
      clearTimeout(p.timer);
      p.reject(e);
    }
  }
}

/**
 * One call on `calls`, or through `unary` when the broker predates the
 * stream (also for the calls its refusal failed: that broker did none of them).
 */
export async function overCalls<K extends CallKind>(
  calls: BrokerCalls,
  kind: K,
  unary: (req: CallTypes[K]['req']) => Promise<CallTypes[K]['res']>,
  req: CallTypes[K]['req'],
  timeoutMs: number,
): Promise<CallTypes[K]['res']> {
  if (calls.unsupported) return unary(req);
  try {
    return await calls.call(kind, req, timeoutMs);
  } catch (err) {
    if (calls.unsupported && isSluiceError(err, Code.NOT_IMPLEMENTED)) return unary(req);
    throw err;
  }
}
