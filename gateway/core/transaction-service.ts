/**
 * Transaction bookkeeping the gRPC protocol needs on top of
 * GatewayService.endTransaction: which broker holds which transaction (the
 * public protocol's EndTransaction names only topic, message id and
 * transaction id), and the orphaned transactions brokers want producers to
 * decide.
 *
 * The broker hint is remembered from send results and check-backs; it is
 * bounded, in memory, and lost on restart or on another gateway replica, in
 * which case GatewayService asks every master of the topic.
 */
import { Code, isSluiceError } from '../../common/errors.js';
import type { EndTransactionInput, GatewayService, OrphanOutcome } from './gateway-service.js';

/** Transaction id → broker name hints kept; the oldest are dropped first. */
export const DEFAULT_TRANSACTION_HINTS = 100_000;

export interface TransactionServiceDeps {
  service: GatewayService;
  maxHints?: number;
}

export class TransactionService {
  /** Insertion-ordered, so the first key is the oldest. */
  private readonly hints = new Map<string, string>();

  constructor(private readonly deps: TransactionServiceDeps) {}

  /** Notes which broker holds a transaction's half message. */
  remember(transactionId: string, brokerName: string): void {
    if (!transactionId || !brokerName) return;
    this.hints.delete(transactionId);
    this.hints.set(transactionId, brokerName);
    const max = this.deps.maxHints ?? DEFAULT_TRANSACTION_HINTS;
    while (this.hints.size > max) this.hints.delete(this.hints.keys().next().value!);
  }

  /** Commits or rolls back, at the remembered broker first; throws the broker's error. */
  async end(input: Omit<EndTransactionInput, 'broker'>): Promise<void> {
    const hinted = this.hints.get(input.transactionId);
    try {
      await this.deps.service.endTransaction(hinted ? { ...input, broker: hinted } : input);
    } catch (err) {
      // A stale hint: let every master of the topic answer.
      if (!hinted || !isSluiceError(err, Code.INVALID_TRANSACTION_ID)) throw err;
      await this.deps.service.endTransaction(input);
    }
    this.hints.delete(input.transactionId);
  }

  /**
   * Half messages of `topic` its brokers want a producer to decide on, up to
   * `max` per master. Each one answered counts as a check-back at its broker
   * (at most transactionCheckMax, then it is discarded), so ask only for
   * topics whose producers can be asked: those of other topics keep their
   * checks for their own producers (REST producers poll GET
   * /v1/transactions/orphans).
   */
  orphans(topic: string, max: number): Promise<OrphanOutcome[]> {
    return this.deps.service.orphans(topic, max);
  }
}
