/**
 * Where the gateway keeps topic routes. In-process by default; Redis when
 * configured so that every gateway replica shares them.
 */
import type { TopicRoute__Output } from '../../common/generated/sluice/v1/TopicRoute.js';

export type TopicRoute = TopicRoute__Output;

export interface CachedRoute {
  route: TopicRoute;
  /** Epoch ms after which the route must be refreshed. */
  expiresAt: number;
}

export interface RouteCache {
  get(topic: string): Promise<CachedRoute | undefined>;
  set(topic: string, route: TopicRoute, ttlMs: number): Promise<void>;
  invalidate(topic: string): Promise<void>;
  close(): Promise<void>;
}
