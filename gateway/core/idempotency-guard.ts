/**
 * Runs a send at most once per Idempotency-Key within the window: the first
 * request claims the key and does the work; a repeat gets the first result
 * back (flagged as a replay) without storing again; a concurrent duplicate
 * waits for the first to finish. A key reused for a different request is
 * refused.
 *
 * Only results that stored something are remembered: when nothing was
 * stored (the whole send failed) the key is released so a retry can succeed.
 */
import { createHash } from 'node:crypto';
import { Code, errors, SluiceError } from '../../common/errors.js';
import type { IdempotencyStore } from '../idempotency/index.js';
import { DEFAULT_IDEMPOTENCY_TTL_MS } from '../options.js';

export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** How long a duplicate waits for the request that holds the key. */
export const DEFAULT_IDEMPOTENCY_WAIT_MS = 15_000;

export interface IdempotentResult<T> {
  value: T;
  /** True when this is the stored answer of an earlier request. */
  replayed: boolean;
}

/** A stable digest of what a request asks for, to tell a true repeat from a reused key. */
export function fingerprintOf(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(p);
    h.update('\u0000');
  }
  return h.digest('base64url');
}

export class IdempotencyGuard {
  constructor(
    private readonly store: IdempotencyStore,
    private readonly ttlMs = DEFAULT_IDEMPOTENCY_TTL_MS,
    private readonly waitMs = DEFAULT_IDEMPOTENCY_WAIT_MS,
    private readonly sleep: (ms: number) => Promise<void> = (ms) =>
      new Promise((r) => setTimeout(r, ms)),
  ) {}

  /** Counters for /metrics. */
  readonly stats = { replays: 0, conflicts: 0 };

  static checkKey(key: string): string {
    if (
      key.length === 0 ||
      key.length > MAX_IDEMPOTENCY_KEY_LENGTH ||
      !/^[\x21-\x7e]+$/.test(key)
    ) {
      throw errors.badRequest(
        `Idempotency-Key must be 1..${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters`,
        { field: 'Idempotency-Key' },
      );
    }
    return key;
  }

  /**
   * @param keep whether a result is to be remembered (it stored something).
   * @example
   *   const { value, replayed } = await guard.run(`${topic}:${key}`, fp, () => service.send(topic, msgs),
   *     (r) => r.some((x) => x.status.code === Code.OK));
   */
  async run<T>(
    key: string,
    fingerprint: string,
    work: () => Promise<T>,
    keep: (value: T) => boolean,
  ): Promise<IdempotentResult<T>> {
    const deadline = Date.now() + this.waitMs;
    for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
      const claim = await this.store.claim(key, fingerprint, this.waitMs * 2);
      if (claim.state === 'done') {
        if (claim.fingerprint !== fingerprint) {
          this.stats.conflicts++;
          throw errors.badRequest(
            'Idempotency-Key was already used for a different request within the idempotency window',
            { field: 'Idempotency-Key' },
          );
        }
        this.stats.replays++;
        return { value: JSON.parse(claim.result) as T, replayed: true };
      }
      if (claim.state === 'claimed') break;
      if (Date.now() >= deadline) {
        throw new SluiceError(
          Code.TOO_MANY_REQUESTS,
          'a request with this Idempotency-Key is still in progress; retry later',
          { retriable: true },
        );
      }
      await this.sleep(pause);
    }
    let value: T;
    try {
      value = await work();
    } catch (err) {
      await this.store.release(key);
      throw err;
    }
    if (keep(value)) await this.store.complete(key, fingerprint, JSON.stringify(value), this.ttlMs);
    else await this.store.release(key);
    return { value, replayed: false };
  }
}
