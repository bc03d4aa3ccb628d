/**
 * Where the gateway remembers Idempotency-Keys: in Redis when configured (so
 * a repeat reaching another replica is recognised) and in a bounded
 * in-process LRU otherwise. One interface, two implementations beside it.
 *
 * A key is first *claimed* (pending) by the request that will do the work;
 * a concurrent duplicate sees it busy and waits; the worker then *completes*
 * it with the result to replay, or *releases* it when nothing was stored so
 * that a retry may try again.
 */

export type IdempotencyClaim =
  | { state: 'claimed' }
  /** A finished request: its fingerprint and the result to replay. */
  | { state: 'done'; fingerprint: string; result: string }
  /** Another request with this key is still running. */
  | { state: 'busy' };

export interface IdempotencyStore {
  /** Claims `key` unless it is pending or done. `pendingTtlMs` bounds a claim whose owner died. */
  claim(key: string, fingerprint: string, pendingTtlMs: number): Promise<IdempotencyClaim>;
  /** Records the result of a claimed key for `ttlMs`. */
  complete(key: string, fingerprint: string, result: string, ttlMs: number): Promise<void>;
  /** Forgets a claimed key (the work stored nothing). */
  release(key: string): Promise<void>;
  close(): Promise<void>;
}
