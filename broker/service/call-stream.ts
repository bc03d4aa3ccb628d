/**
 * Calls: the broker's data calls (send, pop, ack, change-invisible) carried
 * on one long-lived stream.
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
 * Pops that wait (long polls) are outside that budget, or 64 of them would
 * stop every send behind them for up to their wait; they have their own cap,
 * CALL_STREAM_MAX_WAITING, past which they are refused (retriable). A pop
 * that waits on a stream cannot be cancelled by itself: the caller wakes it
 * with WakePops (the gateway never cancels a pop anyway, see its receive).
 * When the stream goes, its waiting pops are cancelled as a unary call's
 * would be when its client went.
 *
 * Why long polls ride the stream too: a unary call that waits holds ~8 KiB
 * of grpc-js objects at each end for its whole wait (and an HTTP/2 stream),
 * and creating it is most of the garbage a gateway makes per long poll.
 */
import { EventEmitter } from 'node:events';
import type { Metadata, ServerDuplexStream, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { errors } from '../../common/errors.js';
import { fromGrpcError } from '../../common/errors-grpc.js';
import type { BrokerHandlers } from '../../common/generated/sluice/v1/Broker.js';
import type { CallRequest__Output } from '../../common/generated/sluice/v1/CallRequest.js';
import type { CallResponse } from '../../common/generated/sluice/v1/CallResponse.js';

/** Unanswered requests per stream, not counting pops that wait, before the broker stops reading it. */
export const CALL_STREAM_MAX_IN_FLIGHT = 64;
/** Pops waiting at once per stream; more are refused (retriable). */
export const CALL_STREAM_MAX_WAITING = 10_000;

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
 * caller's metadata (the stream's), and `cancelled`, set and emitted when the
 * stream goes (or the broker stops) while the call waits.
 */
class StreamedCall extends EventEmitter {
  cancelled = false;
  constructor(
    readonly request: unknown,
    readonly metadata: Metadata,
  ) {
    super();
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled');
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
    return { run: handlers[METHOD_OF[kind]] as unknown as AnyUnary, request };
  }

  readonly handler = (stream: ServerDuplexStream<CallRequest__Output, CallResponse>): void => {
    /** Requests not yet answered that count against CALL_STREAM_MAX_IN_FLIGHT (all but waiting pops). */
    let budgeted = 0;
    /** Pops waiting now; cancelled when the stream goes or the broker stops. */
    const waiting = new Set<StreamedCall>();
    const unanswered = () => budgeted + waiting.size;
    let readEnded = false;
    const whenEnded: Array<() => void> = [];
    const cancelWaits = () => {
      for (const w of [...waiting]) w.cancel();
    };
    const finish = () => {
      if (!stream.writableEnded) stream.end();
      this.open.delete(endWhenIdle);
      for (const w of whenEnded.splice(0)) w();
    };
    // Ends the stream once nothing is in flight (now, or after the last
    // answer); waiting pops stop waiting and answer with what they have.
    const endWhenIdle = (done?: () => void) => {
      if (done) whenEnded.push(done);
      readEnded = true;
      cancelWaits();
      if (unanswered() === 0) finish();
    };
    this.open.add(endWhenIdle);
    const answer = (res: CallResponse, budget: boolean) => {
      if (budget) budgeted--;
      if (!stream.cancelled && !stream.destroyed && !stream.writableEnded) stream.write(res);
      if (budgeted < CALL_STREAM_MAX_IN_FLIGHT && stream.isPaused()) stream.resume();
      if (readEnded && unanswered() === 0) finish();
    };
    stream.on('data', (req: CallRequest__Output) => {
      const waits = req.call === 'pop' && (req.pop?.max_wait_ms ?? 0) > 0;
      if (!waits && ++budgeted >= CALL_STREAM_MAX_IN_FLIGHT) stream.pause();
      const id = req.id;
      const routed =
        waits && waiting.size >= CALL_STREAM_MAX_WAITING
          ? errors.tooManyRequests(
              `more than ${CALL_STREAM_MAX_WAITING} pops wait on this stream; retry, or wait less`,
            )
          : this.route(req);
      if (routed instanceof Error) {
        answer(errorAnswer(id, routed), !waits);
        return;
      }
      const kind = req.call!;
      const call = new StreamedCall(routed.request, stream.metadata);
      if (waits) waiting.add(call);
      const done = (res: CallResponse) => {
        if (waits) waiting.delete(call);
        answer(res, !waits);
      };
      try {
        routed.run(call as unknown as ServerUnaryCall<unknown, unknown>, (err, value) =>
          done(err ? errorAnswer(id, err) : { id, [kind]: value ?? {} }),
        );
      } catch (err) {
        done(errorAnswer(id, err));
      }
    });
    stream.on('end', () => endWhenIdle());
    // A cancelled or broken stream: its answers have nowhere to go.
    stream.on('error', () => undefined);
    stream.on('close', () => {
      cancelWaits();
      this.open.delete(endWhenIdle);
      for (const w of whenEnded.splice(0)) w();
    });
  };
}
