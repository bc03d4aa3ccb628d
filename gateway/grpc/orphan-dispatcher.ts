/**
 * Transaction check-back over gRPC: while producers are connected to this
 * gateway, it asks the masters of each topic those producers publish to
 * (declared in their Telemetry Settings, or sent to since) for half messages
 * past their check time, and hands each to a producer as a
 * RecoverOrphanedTransactionCommand on its Telemetry stream. The producer's
 * checker decides and answers with EndTransaction (source
 * SOURCE_SERVER_CHECK), which reaches the broker as EndTransaction with
 * from_check.
 *
 * Scoped to those topics because every half a broker answers counts as one of
 * its transactionCheckMax check-backs: polling every topic would spend the
 * checks of transactions whose producers poll for them over REST (GET
 * /v1/transactions/orphans) and get them discarded unasked.
 *
 * A transaction no producer here can take (ClientRegistry.producerFor: none
 * of its topic, or one without a producer group, i.e. not sent over gRPC) is
 * skipped; the broker offers it again at its next check time (another gateway
 * replica may have its producer).
 */

import type { Logger } from '../../common/logger.js';
import type { OrphanOutcome } from '../core/gateway-service.js';
import type { TransactionService } from '../core/transaction-service.js';
import type { ClientRegistry } from './client-registry.js';
import { toPublicMessage } from './message-mapping.js';

export interface OrphanDispatcherDeps {
  registry: ClientRegistry;
  transactions: TransactionService;
  logger: Logger;
  intervalMs: number;
  /** Orphans taken per topic from each of its masters per round. */
  batch: number;
}

export class OrphanDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly deps: OrphanDispatcherDeps) {}

  start(): void {
    if (this.timer || this.deps.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      if (!this.running) {
        this.running = this.tick().then(
          () => undefined,
          (err: unknown) =>
            this.deps.logger.warn({ err: String(err) }, 'orphaned transaction poll failed'),
        );
        void this.running.finally(() => {
          this.running = undefined;
        });
      }
    }, this.deps.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One round over the connected producers' topics; returns how many commands were sent. */
  async tick(): Promise<number> {
    let sent = 0;
    for (const topic of this.deps.registry.producerTopics()) {
      let orphans: OrphanOutcome[];
      try {
        orphans = await this.deps.transactions.orphans(topic, this.deps.batch);
      } catch (err) {
        // A producer may name a topic that does not exist (yet) or has no writable broker.
        this.deps.logger.debug(
          { topic, err: (err as Error).message },
          'orphaned transactions unreadable',
        );
        continue;
      }
      for (const o of orphans) if (this.dispatch(o)) sent++;
    }
    return sent;
  }

  private dispatch(o: OrphanOutcome): boolean {
    const msg = o.message.message;
    if (!msg) return false;
    const producer = this.deps.registry.producerFor(msg.producer_group, msg.topic);
    if (!producer) {
      this.deps.logger.debug(
        { topic: msg.topic, producerGroup: msg.producer_group, transactionId: o.transactionId },
        'no producer for an orphaned transaction',
      );
      return false;
    }
    this.deps.transactions.remember(o.transactionId, o.broker);
    const ok = producer.sink.write({
      recover_orphaned_transaction_command: {
        message: toPublicMessage(o.message, { namespace: producer.namespace }),
        transaction_id: o.transactionId,
      },
    });
    this.deps.logger.info(
      {
        clientId: producer.clientId,
        topic: msg.topic,
        transactionId: o.transactionId,
        checks: o.checkTimes,
      },
      'asked a producer to resolve an orphaned transaction',
    );
    return ok;
  }
}
