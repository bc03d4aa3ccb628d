/**
 * In-process Idempotency-Key store: a Map in insertion order used as an LRU
 * with a hard bound. Every entry has the same TTL, so the oldest insertion is
 * also the first to expire and eviction from the front is correct.
 */
import type { IdempotencyClaim, IdempotencyStore } from './index.js';

export const DEFAULT_IDEMPOTENCY_MAX_KEYS = 100_000;

interface Entry {
  fingerprint: string;
  /** Undefined while pending. */
  result: string | undefined;
  expiresAt: number;
}

export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxKeys = DEFAULT_IDEMPOTENCY_MAX_KEYS,
    private readonly clock: () => number = Date.now,
  ) {}

  async claim(key: string, fingerprint: string, pendingTtlMs: number): Promise<IdempotencyClaim> {
    return this.claimSync(key, fingerprint, pendingTtlMs);
  }

  /** Synchronous so two claims in one process can never both win. */
  claimSync(key: string, fingerprint: string, pendingTtlMs: number): IdempotencyClaim {
    const now = this.clock();
    const e = this.entries.get(key);
    if (e && e.expiresAt > now) {
      return e.result === undefined
        ? { state: 'busy' }
        : { state: 'done', fingerprint: e.fingerprint, result: e.result };
    }
    this.put(key, { fingerprint, result: undefined, expiresAt: now + pendingTtlMs });
    return { state: 'claimed' };
  }

  async complete(key: string, fingerprint: string, result: string, ttlMs: number): Promise<void> {
    this.put(key, { fingerprint, result, expiresAt: this.clock() + ttlMs });
  }

  async release(key: string): Promise<void> {
    this.entries.delete(key);
  }

  private put(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxKeys) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}
