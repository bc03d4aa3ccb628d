/**
 * Calls: the broker's data calls (send, pop without waiting, ack,
 * change-invisible) carried on one long-lived stream.
 *
 * Each request runs through the broker's unary handler of its kind as served
 * (tracing and metrics wrappers included), as if it were a unary call, and
 * its answer — the response, or the error the unary call would have failed
 * with — goes back with the request's id. The stream ends when the caller
 * ends it or the broker stops (each after the answers in flight), or when
 * the connection goes.
 *
 * Memory stays bounded: past CALL_STREAM_MAX_IN_FLIGHT unanswered requests
 * the stream stops reading, so HTTP/2 flow control holds the caller back.
 * That is also why long polls are refused: a pop waiting 30 s would hold its
 * place in the budget (and a caller could not cancel it alone).
 */
import { EventEmitter } from 'node:events';
import type { Metadata, ServerDuplexStream, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { errors } from '../../common/errors.js';
import { fromGrpcError } from '../../common/errors-grpc.js';
import type { BrokerHandlers } from '../../common/generated/sluice/v1/Broker.js';
import type { CallRequest__Output } from '../../common/generated/sluice/v1/CallRequest.js';
import type { CallResponse } from '../../common/generated/sluice/v1/CallResponse.js';

/** Unanswered requests per stream before the broker stops reading it. */
export const CALL_STREAM_MAX_IN_FLIGHT = 64;

/** The unary handlers a stream's requests go through, by request kind. */
export type StreamedHandlers = Pick<
  BrokerHandlers,
  'SendMessages' | 'PopMessages' | 'AckMessages' | 'ChangeInvisibleTime'
>;

type Kind = NonNullable<CallRequest__Output['call']>;

const METHOD_OF: Record<Kind, keyof StreamedHandlers> = {
  send: 'SendMessages',
  pop: 'PopMessages',
  ack: 'AckMessages',
  change_invisible: 'ChangeInvisibleTime',
};

type AnyUnary = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;

/**
 * What a unary handler and its wrappers read of a call: the request, the
 * caller's metadata (the stream's), and `cancelled` (never emitted: a
 * streamed call does not wait, so there is nothing to stop).
 */
class StreamedCall extends EventEmitter {
  readonly cancelled = false;
  constructor(
    readonly request: unknown,
    readonly metadata: Metadata,
  ) {
    super();
  }
}

/** The answer carrying a failure, as the unary call's caller would have rebuilt it. */
function errorAnswer(id: number, err: unknown): CallResponse {
  const e = fromGrpcError(err);
  return {
    id,
    error: { code: e.code, message: e.message, reason: e.reason ?? '' },
    retriable: e.retriable,
  };
}

/**
 * The Calls handler over `served()`, the unary handlers as served (undefined
 * while the broker is starting: requests then get UNAVAILABLE), and the
 * broker's way to end its streams when it stops.
 */
export class CallStreams {
  /** Per open stream: ends it once idle, then calls `done`. */
  private readonly open = new Set<(done?: () => void) => void>();
  private draining = false;

  constructor(private readonly served: () => StreamedHandlers | undefined) {}

  /**
   * Stops taking requests: those still arriving are answered UNAVAILABLE
   * (retriable; nothing done), each stream ends once its answers in flight
   * are out, so the server's graceful shutdown is not held up by them.
   * Resolves when every stream has ended.
   */
  drain(timeoutMs = 2_000): Promise<void> {
    this.draining = true;
    const ended = [...this.open].map((end) => new Promise<void>((resolve) => end(resolve)));
    return Promise.race([
      Promise.all(ended).then(() => undefined),
      new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
    ]);
  }

  /** The handler's verdict on a request before it runs: an error, or the unary handler to run. */
  private route(req: CallRequest__Output): { run: AnyUnary; request: unknown } | Error {
    if (this.draining) return errors.unavailable('broker is stopping');
    const handlers = this.served();
    if (!handlers) return errors.unavailable('broker is starting');
    const kind = req.call;
    const request = kind ? req[kind] : undefined;
    if (!kind || !request) return errors.badRequest('stream request carries no call');
    if (kind === 'pop' && req.pop!.max_wait_ms > 0) {
      return errors.badRequest('a pop that waits (max_wait_ms > 0) goes as a unary PopMessages');
    }
    return { run: handlers[METHOD_OF[kind]] as unknown as AnyUnary, request };
  }

  readonly handler = (stream: ServerDuplexStream<CallRequest__Output, CallResponse>): void => {
    let inFlight = 0;
    let readEnded = false;
    const whenEnded: Array<() => void> = [];
    const finish = () => {
      if (!stream.writableEnded) stream.end();
      this.open.delete(endWhenIdle);
      for (const w of whenEnded.splice(0)) w();
    };
    // Ends the stream once nothing is in flight (now, or after the last answer).
    const endWhenIdle = (done?: () => void) => {
      if (done) whenEnded.push(done);
      readEnded = true;
      if (inFlight === 0) finish();
    };
    this.open.add(endWhenIdle);
    const answer = (res: CallResponse) => {
      inFlight--;
      if (!stream.cancelled && !stream.destroyed && !stream.writableEnded) stream.write(res);
      if (inFlight < CALL_STREAM_MAX_IN_FLIGHT && stream.isPaused()) stream.resume();
      if (readEnded && inFlight === 0) finish();
    };
    stream.on('data', (req: CallRequest__Output) => {
      inFlight++;
      if (inFlight >= CALL_STREAM_MAX_IN_FLIGHT) stream.pause();
      const id = req.id;
      const routed = this.route(req);
      if (routed instanceof Error) {
        answer(errorAnswer(id, routed));
        return;
      }
      const kind = req.call!;
      const call = new StreamedCall(routed.request, stream.metadata);
      try {
        routed.run(call as unknown as ServerUnaryCall<unknown, unknown>, (err, value) =>
          answer(err ? errorAnswer(id, err) : { id, [kind]: value ?? {} }),
        );
      } catch (err) {
        answer(errorAnswer(id, err));
      }
    });
    stream.on('end', () => endWhenIdle());
    // A cancelled or broken stream: its answers have nowhere to go.
    stream.on('error', () => undefined);
    stream.on('close', () => {
      this.open.delete(endWhenIdle);
      for (const w of whenEnded.splice(0)) w();
    });
  };
}
