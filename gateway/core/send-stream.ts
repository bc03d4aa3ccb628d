/**
 * The gateway's end of SendMessagesStream: SendMessages requests to one
 * broker over one long-lived stream, matched to their answers by id.
 *
 * Why: a unary grpc-js call costs the caller ~34 KB of objects that live
 * long enough to be promoted, which made the gateway's young-generation GC
 * pauses (6–10 ms every ~160 ms at 2k calls/s) its send latency tail; a
 * stream message costs ~8 KB and almost nothing survives.
 *
 * Semantics are the unary call's: each request gets its results or the
 * SluiceError SendMessages would have failed with; one that gets no answer
 * within its timeout fails with PROXY_TIMEOUT (a late answer is dropped).
 * When the stream breaks, every request in flight on it fails as UNAVAILABLE
 * (retriable) and the next send opens a new stream. A broker that predates
 * the stream answers UNIMPLEMENTED: `unsupported` is then set and the
 * requests in flight fail with NOT_IMPLEMENTED; that broker stored none of
 * them, so the caller sends them again as unary calls.
 */
import { type ClientDuplexStream, status } from '@grpc/grpc-js';
import { Code, errors, isSluiceError, SluiceError } from '../../common/errors.js';
import { fromGrpcError } from '../../common/errors-grpc.js';
import type { BrokerClient } from '../../common/generated/sluice/v1/Broker.js';
import type { SendMessagesRequest } from '../../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse__Output } from '../../common/generated/sluice/v1/SendMessagesResponse.js';
import type { SendStreamRequest } from '../../common/generated/sluice/v1/SendStreamRequest.js';
import type { SendStreamResponse__Output } from '../../common/generated/sluice/v1/SendStreamResponse.js';

interface Pending {
  resolve: (res: SendMessagesResponse__Output) => void;
  reject: (err: SluiceError) => void;
  timer: NodeJS.Timeout;
}

type Stream = ClientDuplexStream<SendStreamRequest, SendStreamResponse__Output>;

export class SendStream {
  private stream: Stream | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** The broker has no SendMessagesStream (it answered UNIMPLEMENTED): send unary. */
  unsupported = false;

  constructor(
    private readonly client: BrokerClient,
    private readonly target: string,
  ) {}

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  send(request: SendMessagesRequest, timeoutMs: number): Promise<SendMessagesResponse__Output> {
    const stream = this.open();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) {
          reject(errors.timeout(`broker ${this.target} did not answer in ${timeoutMs} ms`));
        }
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      stream.write({ id, request });
    });
  }

  /** Ends the stream; requests still in flight fail as UNAVAILABLE. */
  close(): void {
    const stream = this.stream;
    if (!stream) return;
    this.fail(stream, { code: status.CANCELLED, details: 'send stream closed' });
    stream.cancel();
  }

  private open(): Stream {
    if (this.stream) return this.stream;
    const stream = this.client.SendMessagesStream();
    stream.on('data', (res: SendStreamResponse__Output) => {
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
      } else {
        p.resolve(res.response ?? { results: [], compact: null });
      }
    });
    stream.on('error', (err) => this.fail(stream, err));
    stream.on('end', () =>
      this.fail(stream, { code: status.UNAVAILABLE, details: 'send stream ended' }),
    );
    this.stream = stream;
    return stream;
  }

  /** The stream is over: fail what is in flight on it; the next send opens another. */
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
 * One SendMessages request on `stream`, or through `unary` when the broker
 * predates the stream (also for the requests its refusal failed: that broker
 * stored none of them).
 */
export async function sendOverStream(
  stream: SendStream,
  unary: (req: SendMessagesRequest) => Promise<SendMessagesResponse__Output>,
  req: SendMessagesRequest,
  timeoutMs: number,
): Promise<SendMessagesResponse__Output> {
  if (stream.unsupported) return unary(req);
  try {
    return await stream.send(req, timeoutMs);
  } catch (err) {
    if (stream.unsupported && isSluiceError(err, Code.NOT_IMPLEMENTED)) return unary(req);
    throw err;
  }
}
