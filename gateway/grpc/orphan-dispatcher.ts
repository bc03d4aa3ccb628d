/**
 * Transaction check-back over gRPC: while producers are connected to this
 * gateway, it asks every master for half messages past their check time and
 * hands each to a producer as a RecoverOrphanedTransactionCommand on its
 * Telemetry stream. The producer's checker decides and answers with
 * EndTransaction (source SOURCE_SERVER_CHECK), which reaches the broker as
 * EndTransaction with from_check.
 *
 * A transaction no producer here can take is skipped; the broker offers it
 * again at its next check time (another gateway replica may have its producer).
 */

import type { OrphanedTransaction__Output } from '../../common/generated/sluice/v1/OrphanedTransaction.js';
import type { Logger } from '../../common/logger.js';
import type { ClusterView, MasterBroker } from '../core/cluster-view.js';
import type { TransactionService } from '../core/transaction-service.js';
import type { ClientRegistry } from './client-registry.js';
import { toPublicMessage } from './message-mapping.js';

export interface OrphanDispatcherDeps {
  registry: ClientRegistry;
  transactions: TransactionService;
  cluster: ClusterView;
  logger: Logger;
  intervalMs: number;
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

  /** One round over every master; returns how many commands were sent. */
  async tick(): Promise<number> {
    if (this.deps.registry.producerCount === 0) return 0;
    let sent = 0;
    let masters: MasterBroker[];
    try {
      masters = await this.deps.cluster.masters();
    } catch (err) {
      this.deps.logger.warn(
        { err: (err as Error).message },
        'orphaned transactions: no cluster view',
      );
      return 0;
    }
    for (const m of masters) {
      let orphans: OrphanedTransaction__Output[];
      try {
        orphans = await this.deps.transactions.orphans(m.addr, this.deps.batch);
      } catch (err) {
        this.deps.logger.warn(
          { broker: m.brokerName, err: (err as Error).message },
          'orphaned transactions unreadable',
        );
        continue;
      }
      for (const o of orphans) {
        const msg = o.message?.message;
        if (!msg) continue;
        const producer = this.deps.registry.producerFor(msg.producer_group, msg.topic);
        if (!producer) {
          this.deps.logger.debug(
            { topic: msg.topic, transactionId: o.transaction_id },
            'no producer for an orphaned transaction',
          );
          continue;
        }
        this.deps.transactions.remember(o.transaction_id, o.message!.broker_name || m.brokerName);
        const ok = producer.sink.write({
          recover_orphaned_transaction_command: {
            message: toPublicMessage(o.message!, { namespace: producer.namespace }),
            transaction_id: o.transaction_id,
          },
        });
        if (ok) sent++;
        this.deps.logger.info(
          {
            clientId: producer.clientId,
            topic: msg.topic,
            transactionId: o.transaction_id,
            checks: o.check_times,
          },
          'asked a producer to resolve an orphaned transaction',
        );
      }
    }
    return sent;
  }
}
