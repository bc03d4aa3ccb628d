/**
 * Idempotency-Keys in Redis, shared by every replica. A claim is one
 * `SET key pending NX PX` (atomic: of two concurrent duplicates, on any
 * replicas, exactly one wins); completion overwrites it with the result.
 *
 * While Redis is unreachable the keys go to an in-process store instead:
 * sends keep succeeding and repeats that reach the same replica are still
 * recognised (a weaker guarantee, for the length of the outage only).
 */
import type { Redis } from 'ioredis';
import { redisReady } from '../route-cache/redis.js';
import type { IdempotencyClaim, IdempotencyStore } from './index.js';
import type { MemoryIdempotencyStore } from './memory.js';

interface Stored {
  /** 'p' = pending, 'd' = done. */
  s: 'p' | 'd';
  f: string;
  r?: string;
}

export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly prefix: string;
  /** Keys claimed in the fallback store; they complete there too. */
  private readonly local = new Set<string>();

  constructor(
    private readonly client: Redis,
    private readonly fallback: MemoryIdempotencyStore,
    prefix = 'sluice:',
  ) {
    this.prefix = `${prefix}idem:`;
  }

  async claim(key: string, fingerprint: string, pendingTtlMs: number): Promise<IdempotencyClaim> {
    if (redisReady(this.client)) {
      try {
        const k = this.prefix + key;
        const pending: Stored = { s: 'p', f: fingerprint };
        for (let attempt = 0; attempt < 2; attempt++) {
          const ok = await this.client.set(k, JSON.stringify(pending), 'PX', pendingTtlMs, 'NX');
          if (ok === 'OK') return { state: 'claimed' };
          const text = await this.client.get(k);
          if (text === null) continue; // expired in between: claim again
          const stored = JSON.parse(text) as Stored;
          return stored.s === 'd'
            ? { state: 'done', fingerprint: stored.f, result: stored.r ?? '' }
            : { state: 'busy' };
        }
      } catch {
        // Redis failed mid-command: fall through to the in-process store.
      }
    }
    const claim = this.fallback.claimSync(key, fingerprint, pendingTtlMs);
    if (claim.state === 'claimed') this.local.add(key);
    return claim;
  }

  async complete(key: string, fingerprint: string, result: string, ttlMs: number): Promise<void> {
    if (this.local.delete(key)) return this.fallback.complete(key, fingerprint, result, ttlMs);
    const value: Stored = { s: 'd', f: fingerprint, r: result };
    try {
      if (!redisReady(this.client)) throw new Error('redis not ready');
      await this.client.set(this.prefix + key, JSON.stringify(value), 'PX', ttlMs);
    } catch {
      await this.fallback.complete(key, fingerprint, result, ttlMs);
    }
  }

  async release(key: string): Promise<void> {
    if (this.local.delete(key)) return this.fallback.release(key);
    try {
      if (redisReady(this.client)) await this.client.del(this.prefix + key);
    } catch {
      // The pending claim expires by itself.
    }
  }

  async close(): Promise<void> {
    await this.fallback.close();
  }
}
