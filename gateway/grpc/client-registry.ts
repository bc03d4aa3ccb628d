/**
 * Clients connected to this gateway over a Telemetry stream, and the topics
 * each has shown interest in (declared in its Settings or used since). Used
 * to find a producer that can decide an orphaned transaction: the one that
 * sent it when it is connected here (the gateway stamps the client id as the
 * message's producer group), else another producer of the topic (as in
 * RocketMQ 5, where the producers of a topic stand for its producer group: a
 * restarted SDK comes back with a new client id). A transaction without a
 * producer group was not sent over gRPC (REST sends none) and is never
 * offered here: its producer polls for it.
 *
 * Per gateway replica and in memory only: a producer connected to another
 * replica is found by that replica.
 */
import type { TelemetryCommand } from '../../common/generated/apache/rocketmq/v2/TelemetryCommand.js';

/** Clients whose topics are remembered without an open stream; the oldest are dropped first. */
export const MAX_REMEMBERED_CLIENTS = 10_000;

/** The writing end of a Telemetry stream. */
export interface TelemetrySink {
  /** False once the stream is closed. */
  write(command: TelemetryCommand): boolean;
  end(): void;
}

export interface ClientSession {
  clientId: string;
  /** apache.rocketmq.v2.ClientType name: PRODUCER, SIMPLE_CONSUMER … */
  clientType: string;
  /** Broker-side group name, consumers only. */
  group: string;
  namespace: string;
  sink: TelemetrySink;
}

export class ClientRegistry {
  private readonly sessions = new Map<string, ClientSession>();
  /** Insertion-ordered so the first key is the least recently noted client. */
  private readonly topics = new Map<string, Set<string>>();
  private rr = 0;

  /** Registers (or replaces) the session of a client. */
  open(session: ClientSession): void {
    this.sessions.set(session.clientId, session);
  }

  /** Forgets a session, unless the client has opened a newer stream since. */
  close(clientId: string, sink: TelemetrySink): void {
    if (this.sessions.get(clientId)?.sink === sink) this.sessions.delete(clientId);
  }

  /** The client terminated: forget it entirely. */
  forget(clientId: string): void {
    this.sessions.delete(clientId);
    this.topics.delete(clientId);
  }

  /** Remembers that a client publishes to or reads from a topic (broker-side name). */
  noteTopic(clientId: string, topic: string): void {
    if (!clientId) return;
    let set = this.topics.get(clientId);
    if (set) {
      if (set.has(topic)) return;
      this.topics.delete(clientId);
    } else {
      set = new Set();
    }
    set.add(topic);
    this.topics.set(clientId, set);
    while (this.topics.size > MAX_REMEMBERED_CLIENTS)
      this.topics.delete(this.topics.keys().next().value!);
  }

  get producerCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.clientType === 'PRODUCER') n++;
    return n;
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * Topics (broker-side names) the connected producers publish to: the only
   * ones whose orphaned transactions this gateway may take from the brokers.
   */
  producerTopics(): Set<string> {
    const out = new Set<string>();
    for (const s of this.sessions.values()) {
      if (s.clientType !== 'PRODUCER') continue;
      for (const t of this.topics.get(s.clientId) ?? []) out.add(t);
    }
    return out;
  }

  /**
   * A connected producer for a transaction of `topic` sent by `producerGroup`
   * (a client id): that client if connected, else producers of the topic in
   * turn; none when the transaction has no producer group (not a gRPC send).
   */
  producerFor(producerGroup: string, topic: string): ClientSession | undefined {
    if (!producerGroup) return undefined;
    const own = this.sessions.get(producerGroup);
    if (own?.clientType === 'PRODUCER') return own;
    const candidates = [...this.sessions.values()].filter(
      (s) => s.clientType === 'PRODUCER' && this.topics.get(s.clientId)?.has(topic),
    );
    if (candidates.length === 0) return undefined;
    return candidates[this.rr++ % candidates.length];
  }

  /** Ends every stream (gateway shutdown). */
  closeAll(): void {
    for (const s of this.sessions.values()) s.sink.end();
    this.sessions.clear();
  }
}
