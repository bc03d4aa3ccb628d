/**
 * In-process Idempotency-Key store: a Map in insertion order used as an LRU
 * with a hard bound on both the number of keys and their total size. Every
 * entry has the same TTL, so the oldest insertion is also the first to
 * expire and eviction from the front is correct.
 *
 * Size is counted in string characters (key + fingerprint + stored answer):
 * the stored answers are ASCII JSON, so characters are bytes on the wire and
 * at most twice that in the V8 heap.
 */
import { DEFAULT_IDEMPOTENCY_MAX_BYTES, DEFAULT_IDEMPOTENCY_MAX_KEYS } from '../options.js';
import type { IdempotencyClaim, IdempotencyStore } from './index.js';

/** Fixed cost charged per entry besides its strings (Map slot, object), bytes. */
const ENTRY_OVERHEAD_BYTES = 64;

interface Entry {
  fingerprint: string;
  /** Undefined while pending. */
  result: string | undefined;
  expiresAt: number;
  /** What this entry counts against maxBytes. */
  bytes: number;
}

export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private totalBytes = 0;

  constructor(
    private readonly maxKeys = DEFAULT_IDEMPOTENCY_MAX_KEYS,
    private readonly clock: () => number = Date.now,
    private readonly maxBytes = DEFAULT_IDEMPOTENCY_MAX_BYTES,
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
    this.put(key, fingerprint, undefined, now + pendingTtlMs);
    return { state: 'claimed' };
  }

  async complete(key: string, fingerprint: string, result: string, ttlMs: number): Promise<void> {
    this.put(key, fingerprint, result, this.clock() + ttlMs);
  }

  async release(key: string): Promise<void> {
    this.remove(key);
  }

  private remove(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.totalBytes -= e.bytes;
  }

  private put(
    key: string,
    fingerprint: string,
    result: string | undefined,
    expiresAt: number,
  ): void {
    this.remove(key);
    const bytes = ENTRY_OVERHEAD_BYTES + key.length + fingerprint.length + (result?.length ?? 0);
    // An answer larger than the whole budget is not remembered (a repeat stores again).
    if (bytes > this.maxBytes) return;
    this.entries.set(key, { fingerprint, result, expiresAt, bytes });
    this.totalBytes += bytes;
    while (this.entries.size > this.maxKeys || this.totalBytes > this.maxBytes) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.remove(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** What the entries count against maxBytes. */
  get bytes(): number {
    return this.totalBytes;
  }

  async close(): Promise<void> {
    this.entries.clear();
    this.totalBytes = 0;
  }
}
