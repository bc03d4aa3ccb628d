import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { Code, errors } from '../../common/errors.js';
import { fromGrpcError, toGrpcError } from '../../common/errors-grpc.js';
import {
  DEFAULT_RETRY_AFTER_S,
  httpStatusOf,
  retryAfterSecondsOf,
  toProblem,
} from '../../common/errors-http.js';

describe('error mapping', () => {
  it('maps codes to HTTP statuses', () => {
    expect(httpStatusOf(errors.topicNotFound('t'))).toBe(404);
    expect(httpStatusOf(errors.bodyTooLarge(10, 5))).toBe(413);
    expect(httpStatusOf(errors.invalidReceiptHandle('x'))).toBe(400);
    expect(httpStatusOf(errors.receiptHandleExpired())).toBe(409);
    expect(httpStatusOf(errors.tooManyRequests('busy'))).toBe(429);
    expect(httpStatusOf(errors.noWritableBroker('t'))).toBe(503);
    expect(httpStatusOf(errors.illegalTopic('a b', 'bad'))).toBe(400);
    expect(httpStatusOf(errors.internal('boom'))).toBe(500);
    expect(httpStatusOf(errors.notImplemented('EndTransaction'))).toBe(501);
    expect(httpStatusOf(errors.unsupported('SQL92 filters'))).toBe(501);
  });

  it('takes Retry-After from the error when it carries a hint, else the default', () => {
    expect(retryAfterSecondsOf(errors.tooManyRequests('busy'))).toBe(DEFAULT_RETRY_AFTER_S);
    expect(retryAfterSecondsOf(errors.tooManyRequests('busy', 2_500))).toBe(3);
    expect(retryAfterSecondsOf(errors.tooManyRequests('busy', 10))).toBe(1);
    const relayed = errors.fromStatus(Code.TOO_MANY_REQUESTS, 'busy', 'BROKER_BUSY', {
      retryAfterMs: 7_000,
    });
    expect(retryAfterSecondsOf(relayed)).toBe(7);
    expect(relayed.retriable).toBe(true);
    expect(toProblem(relayed).retryAfterMs).toBe(7_000);
  });

  it('renders RFC 9457 problems with our numeric code', () => {
    const p = toProblem(errors.topicNotFound('orders'), '/v1/topics/orders/messages');
    expect(p).toMatchObject({
      title: 'TOPIC_NOT_FOUND',
      status: 404,
      code: 40402,
      detail: "topic 'orders' does not exist",
      instance: '/v1/topics/orders/messages',
      topic: 'orders',
    });
  });

  it('round-trips through gRPC status and metadata', () => {
    const wire = toGrpcError(errors.receiptHandleExpired());
    expect(wire.code).toBe(status.FAILED_PRECONDITION);
    const back = fromGrpcError(wire);
    expect(back.code).toBe(Code.INVALID_RECEIPT_HANDLE);
    expect(back.reason).toBe('RECEIPT_HANDLE_EXPIRED');
  });

  it('turns transport failures into retriable unavailability', () => {
    const e = fromGrpcError({
      code: status.UNAVAILABLE,
      details: 'connect refused',
      metadata: new Metadata(),
    });
    expect(e.code).toBe(Code.HA_NOT_AVAILABLE);
    expect(e.retriable).toBe(true);
  });
});
