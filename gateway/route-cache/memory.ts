/** In-process route cache (the default). Bounded: old entries are evicted first. */
import type { CachedRoute, RouteCache, TopicRoute } from './index.js';

export const DEFAULT_MEMORY_ROUTE_CACHE_ENTRIES = 10_000;

export class MemoryRouteCache implements RouteCache {
  private readonly entries = new Map<string, CachedRoute>();

  constructor(
    private readonly clock: () => number = Date.now,
    private readonly maxEntries = DEFAULT_MEMORY_ROUTE_CACHE_ENTRIES,
  ) {}

  async get(topic: string): Promise<CachedRoute | undefined> {
    return this.entries.get(topic);
  }

  async set(topic: string, route: TopicRoute, ttlMs: number): Promise<void> {
    this.entries.delete(topic);
    this.entries.set(topic, { route, expiresAt: this.clock() + ttlMs });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  async invalidate(topic: string): Promise<void> {
    this.entries.delete(topic);
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}
