/**
 * Runs one admin action on several broker groups at once and reports which
 * succeeded; a partial failure becomes one error that names every group.
 */
import { errors, type SluiceError, toSluiceError } from '../common/errors.js';

export interface FanOutResult<T> {
  done: { brokerName: string; value: T }[];
  failed: { brokerName: string; error: SluiceError }[];
}

/** Calls `action` for every broker name concurrently; never rejects. */
export async function fanOut<T>(
  brokerNames: readonly string[],
  action: (brokerName: string) => Promise<T>,
): Promise<FanOutResult<T>> {
  const settled = await Promise.allSettled(brokerNames.map((name) => action(name)));
  const result: FanOutResult<T> = { done: [], failed: [] };
  settled.forEach((s, i) => {
    const brokerName = brokerNames[i]!;
    if (s.status === 'fulfilled') result.done.push({ brokerName, value: s.value });
    else result.failed.push({ brokerName, error: toSluiceError(s.reason) });
  });
  return result;
}

/**
 * The error for a fan-out with failures: the first failure's code, its
 * reason when every failure agrees on it, retriable when all are.
 *
 * @example fanOutFailed('create topic T1', result) // "create topic T1 failed on broker-b (…); done on broker-a"
 */
export function fanOutFailed(action: string, result: FanOutResult<unknown>): SluiceError {
  const first = result.failed[0]!.error;
  const sameReason = result.failed.every((f) => f.error.reason === first.reason);
  const failures = result.failed.map((f) => `${f.brokerName} (${f.error.message})`).join(', ');
  const done =
    result.done.length > 0 ? `; done on ${result.done.map((d) => d.brokerName).join(', ')}` : '';
  return errors.partialFailure(first, `${action} failed on ${failures}${done}`, {
    retriable: result.failed.every((f) => f.error.retriable),
    reason: sameReason ? first.reason : undefined,
    details: {
      failed: result.failed.map((f) => f.brokerName),
      done: result.done.map((d) => d.brokerName),
    },
  });
}
