/**
 * Messages the gateway popped but could not hand to the receive that asked
 * for them: a sibling long poll that answered after the receive had returned,
 * more messages than the receive's `max`, or a client that went away.
 *
 * No popped message may be dropped (it would stay invisible for its whole
 * invisible time) and none may cost a delivery attempt. So a stashed message
 * goes to the next receive of the same (topic, group, filter) on this
 * gateway, and if none comes within `holdMs` it is handed back to its broker
 * with ChangeInvisibleTime `release` (visible again at once, attempt not
 * counted), where any consumer on any replica gets it.
 *
 * Bounded: at most `maxMessages` are held; more are handed back at once.
 * A message is never held past its invisible time minus RELEASE_MARGIN_MS.
 */
import type { StoredMessage__Output } from '../../common/generated/sluice/v1/StoredMessage.js';
import { decodeReceiptHandle, visibleAt } from '../../common/receipt-handle.js';

/** How long a stashed message waits for a receive on this gateway before it is handed back. */
export const DEFAULT_STASH_HOLD_MS = 1_000;
/** Messages held at most, over all groups. */
export const DEFAULT_STASH_MAX_MESSAGES = 4_096;
/** A stashed message is handed back at least this long before its invisible time runs out. */
const RELEASE_MARGIN_MS = 2_000;
/** Period of the hand-back sweep while something is held. */
const SWEEP_INTERVAL_MS = 100;

export interface Stashed {
  topic: string;
  group: string;
  message: StoredMessage__Output;
  /** Epoch ms after which it is handed back to its broker. */
  releaseAt: number;
}

/** Hands messages back to their brokers (visible now, attempt not counted). */
export type ReleaseFn = (
  topic: string,
  group: string,
  msgs: StoredMessage__Output[],
) => Promise<void>;

export class ReceiveStash {
  private readonly byKey = new Map<string, Stashed[]>();
  private readonly listeners = new Map<string, Set<() => void>>();
  private readonly releasing = new Set<Promise<void>>();
  private held = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Counters for tests and /metrics: stashed, handed to a later receive, handed back. */
  readonly stats = { stashed: 0, reused: 0, released: 0 };

  constructor(
    private readonly release: ReleaseFn,
    private readonly holdMs = DEFAULT_STASH_HOLD_MS,
    private readonly maxMessages = DEFAULT_STASH_MAX_MESSAGES,
    private readonly clock: () => number = Date.now,
  ) {}

  static keyOf(topic: string, group: string, filter: string): string {
    return `${topic}\u0000${group}\u0000${filter}`;
  }

  /** Messages held now. */
  get size(): number {
    return this.held;
  }

  /** Holds messages for the next receive of `key`; wakes receives waiting on it. */
  put(key: string, topic: string, group: string, msgs: readonly StoredMessage__Output[]): void {
    if (msgs.length === 0) return;
    const now = this.clock();
    const room = Math.max(0, this.maxMessages - this.held);
    if (msgs.length > room) this.handBack(topic, group, msgs.slice(room));
    const keep = msgs.slice(0, room);
    if (keep.length === 0) return;
    let list = this.byKey.get(key);
    if (!list) {
      list = [];
      this.byKey.set(key, list);
    }
    for (const message of keep) {
      list.push({ topic, group, message, releaseAt: releaseAtOf(message, now + this.holdMs) });
    }
    this.held += keep.length;
    this.stats.stashed += keep.length;
    this.timer ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
    for (const cb of [...(this.listeners.get(key) ?? [])]) cb();
  }

  /** Takes up to `max` held messages of `key`, oldest first. */
  take(key: string, max: number): Stashed[] {
    const list = this.byKey.get(key);
    if (!list || max <= 0) return [];
    const out = list.splice(0, max);
    if (list.length === 0) this.byKey.delete(key);
    this.held -= out.length;
    this.stats.reused += out.length;
    this.stopIfEmpty();
    return out;
  }

  /** Calls `cb` whenever messages for `key` are put; answers the unsubscribe. */
  onPut(key: string, cb: () => void): () => void {
    let set = this.listeners.get(key);
    if (!set) {
      set = new Set();
      this.listeners.set(key, set);
    }
    set.add(cb);
    return () => {
      set.delete(cb);
      if (set.size === 0 && this.listeners.get(key) === set) this.listeners.delete(key);
    };
  }

  /** Hands everything back now and waits for the brokers' answers (shutdown). */
  async drain(): Promise<void> {
    for (const [key, list] of [...this.byKey]) {
      this.byKey.delete(key);
      this.held -= list.length;
      this.handBackAll(list);
    }
    this.stopIfEmpty();
    await Promise.all([...this.releasing]);
  }

  private sweep(): void {
    const now = this.clock();
    for (const [key, list] of [...this.byKey]) {
      const due = list.filter((s) => s.releaseAt <= now);
      if (due.length === 0) continue;
      const rest = list.filter((s) => s.releaseAt > now);
      if (rest.length === 0) this.byKey.delete(key);
      else this.byKey.set(key, rest);
      this.held -= due.length;
      this.handBackAll(due);
    }
    this.stopIfEmpty();
  }

  private handBackAll(list: readonly Stashed[]): void {
    const byGroup = new Map<string, Stashed[]>();
    for (const s of list) {
      const k = `${s.topic}\u0000${s.group}`;
      const g = byGroup.get(k);
      if (g) g.push(s);
      else byGroup.set(k, [s]);
    }
    for (const g of byGroup.values()) {
      this.handBack(
        g[0]!.topic,
        g[0]!.group,
        g.map((s) => s.message),
      );
    }
  }

  private handBack(topic: string, group: string, msgs: StoredMessage__Output[]): void {
    this.stats.released += msgs.length;
    const p = this.release(topic, group, msgs).catch(() => undefined);
    this.releasing.add(p);
    void p.finally(() => this.releasing.delete(p));
  }

  private stopIfEmpty(): void {
    if (this.held === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** When a message must be handed back: after the hold, and well before its handle expires. */
function releaseAtOf(m: StoredMessage__Output, afterHold: number): number {
  try {
    return Math.min(
      afterHold,
      visibleAt(decodeReceiptHandle(m.receipt_handle)) - RELEASE_MARGIN_MS,
    );
  } catch {
    return afterHold;
  }
}
