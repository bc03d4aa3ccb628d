/**
 * The Telemetry stream: a client sends its Settings and waits (the official
 * SDKs without a timeout) for the server's Settings; afterwards the stream
 * stays open so the server can send commands, such as
 * RecoverOrphanedTransactionCommand for a transaction check-back.
 *
 * An error answers with a TelemetryCommand that carries only a Status; the
 * SDKs treat that as a failed startup and report the code.
 */

import type { ServerDuplexStream } from '@grpc/grpc-js';
import { errors } from '../../common/errors.js';
import type { Settings__Output } from '../../common/generated/apache/rocketmq/v2/Settings.js';
import type {
  TelemetryCommand,
  TelemetryCommand__Output,
} from '../../common/generated/apache/rocketmq/v2/TelemetryCommand.js';
import type { Logger } from '../../common/logger.js';
import type { ClusterView } from '../core/cluster-view.js';
import { clientContext, qualify } from './client-context.js';
import type { ClientRegistry, TelemetrySink } from './client-registry.js';
import { answerSettings, clientTypeOf } from './client-settings.js';
import type { MessagingServiceOptions } from './messaging-options.js';
import { OK_STATUS, toPublicStatus } from './public-status.js';

export interface TelemetryDeps {
  registry: ClientRegistry;
  cluster: ClusterView;
  options: MessagingServiceOptions;
  logger: Logger;
}

export function telemetryHandler(
  deps: TelemetryDeps,
): (call: ServerDuplexStream<TelemetryCommand__Output, TelemetryCommand>) => void {
  return (call) => {
    const ctx = clientContext(call);
    let open = true;
    const sink: TelemetrySink = {
      write: (command) => {
        if (!open) return false;
        call.write(command);
        return true;
      },
      end: () => {
        if (!open) return;
        open = false;
        call.end();
      },
    };
    /** The client went away (cancelled, failed): nothing more can be written. */
    const gone = () => {
      open = false;
      deps.registry.close(ctx.clientId, sink);
    };

    const answer = async (settings: Settings__Output): Promise<void> => {
      try {
        if (!ctx.clientId) throw errors.clientIdRequired();
        const clientType = clientTypeOf(settings);
        const group = settings.subscription?.group?.name
          ? qualify(settings.subscription.group, ctx.namespace, 'group')
          : '';
        const groupSettings =
          clientType !== 'PRODUCER' && group !== ''
            ? await deps.cluster.groupSettings(group)
            : { orderly: false, maxDeliveryAttempts: undefined };
        const reply = answerSettings(settings, groupSettings, deps.options);
        deps.registry.open({
          clientId: ctx.clientId,
          clientType,
          group,
          namespace: ctx.namespace,
          sink,
        });
        for (const t of settings.publishing?.topics ?? []) {
          if (t.name) deps.registry.noteTopic(ctx.clientId, qualify(t, ctx.namespace, 'topic'));
        }
        for (const s of settings.subscription?.subscriptions ?? []) {
          if (s.topic?.name)
            deps.registry.noteTopic(ctx.clientId, qualify(s.topic, ctx.namespace, 'topic'));
        }
        sink.write({ status: OK_STATUS, settings: reply });
        deps.logger.debug(
          { clientId: ctx.clientId, clientType, group, ...groupSettings },
          'telemetry settings',
        );
      } catch (err) {
        const status = toPublicStatus(err);
        deps.logger.info(
          { clientId: ctx.clientId, code: status.code, err: status.message },
          'telemetry settings refused',
        );
        sink.write({ status });
      }
    };

    call.on('data', (command: TelemetryCommand__Output) => {
      // Answers to commands we never send (stack traces, message checks) need nothing.
      if (command.settings) void answer(command.settings);
    });
    // The client half-closed (an SDK shutting down): finish our side with OK
    // so its call ends cleanly rather than being reset later.
    call.on('end', () => {
      deps.registry.close(ctx.clientId, sink);
      sink.end();
    });
    call.on('cancelled', gone);
    call.on('error', (err) => {
      deps.logger.debug({ clientId: ctx.clientId, err: err.message }, 'telemetry stream error');
      gone();
    });
  };
}
