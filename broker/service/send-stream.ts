/**
 * SendMessagesStream: SendMessages calls carried on one long-lived stream.
 *
 * Each request runs through the broker's SendMessages handler as served
 * (tracing and metrics wrappers included), as if it were a unary call, and
 * its answer — results, or the error the unary call would have failed with —
 * goes back with the request's id. The stream ends when the caller ends it
 * or the broker stops (each after the answers in flight), or when the
 * connection goes.
 *
 * Memory stays bounded: past MAX_IN_FLIGHT unanswered requests the stream
 * stops reading, so HTTP/2 flow control holds the caller back.
 */
import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { errors } from '../../common/errors.js';
import { fromGrpcError } from '../../common/errors-grpc.js';
import type { SendMessagesRequest__Output } from '../../common/generated/sluice/v1/SendMessagesRequest.js';
import type { SendMessagesResponse } from '../../common/generated/sluice/v1/SendMessagesResponse.js';
import type { SendStreamRequest__Output } from '../../common/generated/sluice/v1/SendStreamRequest.js';
import type { SendStreamResponse } from '../../common/generated/sluice/v1/SendStreamResponse.js';

/** Unanswered requests per stream before the broker stops reading it. */
export const SEND_STREAM_MAX_IN_FLIGHT = 64;

type SendHandler = (
  call: ServerUnaryCall<SendMessagesRequest__Output, SendMessagesResponse>,
  callback: sendUnaryData<SendMessagesResponse>,
) => void;

/** The answer carrying a failure, as SendMessages' caller would have rebuilt it. */
function errorAnswer(id: number, err: unknown): SendStreamResponse {
  const e = fromGrpcError(err);
  return {
    id,
    error: { code: e.code, message: e.message, reason: e.reason ?? '' },
    retriable: e.retriable,
  };
}

/**
 * The SendMessagesStream handler over `unary()`, the SendMessages handler as
 * served (undefined while the broker is starting: requests then get
 * UNAVAILABLE), and the broker's way to end its streams when it stops.
 */
export class SendStreams {
  /** Per open stream: ends it once idle, then calls `done`. */
  private readonly open = new Set<(done?: () => void) => void>();
  private draining = false;

  constructor(private readonly unary: () => SendHandler | undefined) {}

  /**
   * Stops taking requests: those still arriving are answered UNAVAILABLE
   * (retriable; nothing stored), each stream ends once its answers in flight
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

  readonly handler = (
    stream: ServerDuplexStream<SendStreamRequest__Output, SendStreamResponse>,
  ): void => {
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
    const answer = (res: SendStreamResponse) => {
      inFlight--;
      if (!stream.cancelled && !stream.destroyed && !stream.writableEnded) stream.write(res);
      if (inFlight < SEND_STREAM_MAX_IN_FLIGHT && stream.isPaused()) stream.resume();
      if (readEnded && inFlight === 0) finish();
    };
    stream.on('data', (req: SendStreamRequest__Output) => {
      inFlight++;
      if (inFlight >= SEND_STREAM_MAX_IN_FLIGHT) stream.pause();
      const id = req.id;
      const handler = this.unary();
      if (this.draining) {
        answer(errorAnswer(id, errors.unavailable('broker is stopping')));
        return;
      }
      if (!handler) {
        answer(errorAnswer(id, errors.unavailable('broker is starting')));
        return;
      }
      if (!req.request) {
        answer(errorAnswer(id, errors.badRequest('stream request carries no SendMessagesRequest')));
        return;
      }
      // What the unary handler and its wrappers read of a call: the request
      // and the caller's metadata (the stream's).
      const call = {
        request: req.request,
        metadata: stream.metadata,
      } as unknown as ServerUnaryCall<SendMessagesRequest__Output, SendMessagesResponse>;
      try {
        handler(call, (err, value) =>
          answer(err ? errorAnswer(id, err) : { id, response: value ?? {} }),
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
