/**
 * The one mapping from errors to the public protocol's Status. Every answer
 * of apache.rocketmq.v2.MessagingService carries a Status and travels with
 * gRPC status OK: clients (the official SDKs) read the Status, not the
 * transport code. Our Code numbers are the protocol's, so the mapping keeps
 * the number and the message.
 *
 * Not-supported answers follow one rule:
 *  - a feature Sluice lacks inside an RPC it serves (SQL92 filters, lite
 *    topics, message priority, LITE/PRIORITY message types) is UNSUPPORTED
 *    (50500), thrown as `errors.unsupported(…)`;
 *  - an RPC of our service.proto that Sluice does not implement
 *    (RecallMessage) is NOT_IMPLEMENTED (50100), thrown as
 *    `errors.notImplemented(…)`, in the Status like every other answer;
 *  - a method absent from our service.proto (SyncLiteSubscription …) gets
 *    gRPC status UNIMPLEMENTED from grpc-js, as there is no Status to carry.
 */
import { Code } from '../../common/errors.js';
import { fromGrpcError } from '../../common/errors-grpc.js';
import type { Code as PublicCode } from '../../common/generated/apache/rocketmq/v2/Code.js';

export interface PublicStatus {
  code: PublicCode;
  message: string;
}

/** A Status from one of our numeric codes (they are the protocol's Code values). */
export function publicStatus(code: number, message: string): PublicStatus {
  return { code: code as PublicCode, message };
}

export const OK_STATUS: PublicStatus = Object.freeze(publicStatus(Code.OK, 'OK'));

/** The Status for anything thrown (a SluiceError, a broker's gRPC error, a bug). */
export function toPublicStatus(err: unknown): PublicStatus {
  const e = fromGrpcError(err, 'broker');
  return publicStatus(e.code, e.message);
}

/** True for failures of the server rather than of the request (worth a log line). */
export function isServerFault(status: PublicStatus): boolean {
  return Number(status.code) >= 50000;
}

/**
 * One status for a batch: OK when every entry is OK, the shared status when
 * every entry ended the same way, MULTIPLE_RESULTS otherwise.
 */
export function summarize(
  statuses: readonly { code: number | PublicCode; message: string }[],
): PublicStatus {
  if (statuses.length === 0) return OK_STATUS;
  const first = statuses[0]!;
  if (statuses.every((s) => s.code === first.code)) {
    return first.code === Code.OK ? OK_STATUS : publicStatus(Number(first.code), first.message);
  }
  return publicStatus(Code.MULTIPLE_RESULTS, 'entries ended differently; see each entry');
}
