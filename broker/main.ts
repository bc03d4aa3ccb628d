/**
 * Broker entry: wires the store, metadata, messaging services, the gRPC
 * server and the name server registry, then prints RocketMQ's boot line.
 */
import { join } from 'node:path';
import type { ServerUnaryCall, ServiceError, sendUnaryData } from '@grpc/grpc-js';
import type { ComponentSpec, Running } from '../common/cli.js';
import { parseAddressList } from '../common/cli.js';
import { errors } from '../common/errors.js';
import { toGrpcError } from '../common/errors-grpc.js';
import type { BrokerHandlers } from '../common/generated/sluice/v1/Broker.js';
import { startGrpcServer } from '../common/grpc.js';
import { JsonFileWriter, readJsonFile } from '../common/json-file.js';
import type { Logger } from '../common/logger.js';
import { instrumentService } from '../common/metrics/instrument-service.js';
import { startMetricsServer } from '../common/metrics/metrics-server.js';
import { expandHome } from '../common/paths.js';
import { sluiceProto } from '../common/proto.js';
import { withTelemetry } from '../common/telemetry/sdk.js';
import { tracingEnabled } from '../common/telemetry/tracing.js';
import {
  type BrokerMetrics,
  brokerStatusOf,
  consumerProgressRows,
  createBrokerMetrics,
} from './broker-metrics.js';
import { HaService } from './ha/ha-service.js';
import { readOnlyStore } from './ha/read-only-store.js';
import { ArrivalNotifier } from './messaging/arrival-notifier.js';
import type { BrokerContext } from './messaging/broker-context.js';
import { ConsumeStateStore } from './messaging/consume-state-store.js';
import { PopService } from './messaging/pop-service.js';
import { PullService } from './messaging/pull-service.js';
import { ReviveService } from './messaging/revive-service.js';
import { SendService } from './messaging/send-service.js';
import { isInternalReader } from './messaging/system-topics.js';
import { TimerService } from './messaging/timer-service.js';
import { TransactionService } from './messaging/transaction-service.js';
import { ConsumerOffsetManager } from './metadata/consumer-offset-manager.js';
import { SubscriptionGroupManager } from './metadata/subscription-group-manager.js';
import { TopicConfigManager } from './metadata/topic-config-manager.js';
import { BROKER_SCHEMA, type BrokerOptions } from './options.js';
import { NamesrvRegistry } from './registry/namesrv-registry.js';
import { type BrokerServices, brokerHandlers } from './service/broker-service.js';
import { CallStreams } from './service/call-stream.js';
import { createMessageStore } from './store/message-store.js';
import { traceStore } from './store-tracing.js';

export async function startBroker(options: BrokerOptions, logger: Logger): Promise<Running> {
  const root = expandHome(options.storePathRootDir);
  // Built once the handlers exist (below); the store reports flushes to it from the start.
  let metrics: BrokerMetrics | undefined;
  const store = createMessageStore(
    {
      storePathRootDir: root,
      storePathCommitLog: expandHome(options.storePathCommitLog || join(root, 'commitlog')),
      storePathConsumeQueue: expandHome(
        options.storePathConsumeQueue || join(root, 'consumequeue'),
      ),
      storePathIndex: expandHome(options.storePathIndex || join(root, 'index')),
      storeCheckpoint: expandHome(options.storeCheckpoint || join(root, 'checkpoint')),
      abortFile: expandHome(options.abortFile || join(root, 'abort')),
      mapedFileSizeCommitLog: options.mapedFileSizeCommitLog,
      mapedFileSizeConsumeQueue: options.mapedFileSizeConsumeQueue,
      flushDiskType: options.flushDiskType,
      flushIntervalCommitLog: options.flushIntervalCommitLog,
      syncFlushTimeout: options.syncFlushTimeout,
      fileReservedTime: options.fileReservedTime,
      deleteWhen: options.deleteWhen,
      diskMaxUsedSpaceRatio: options.diskMaxUsedSpaceRatio,
      diskSpaceWarningLevelRatio: options.diskSpaceWarningLevelRatio,
      maxMessageSize: options.maxMessageSize,
      maxOpenFiles: options.maxOpenFiles,
      storeHost: `${options.brokerIP1}:${options.listenPort}`,
    },
    { logger, onFlush: (seconds) => metrics?.flushDuration.observe(seconds) },
  );
  await store.start();

  const permPath = join(root, 'config', 'broker.json');
  const persisted = readJsonFile<{ perm?: number }>(permPath, {});
  let perm = persisted.perm ?? options.brokerPermission;
  if (persisted.perm !== undefined && persisted.perm !== options.brokerPermission) {
    // wipeWritePerm / addWritePerm outlive a restart; say so, or the file's value looks ignored.
    logger.warn(
      { perm: persisted.perm, brokerPermission: options.brokerPermission, file: permPath },
      'the permission saved by wipeWritePerm/addWritePerm overrides brokerPermission from the config',
    );
  }
  const permWriter = new JsonFileWriter(permPath, () => ({ perm }));

  const topics = new TopicConfigManager(root, options);
  const groups = new SubscriptionGroupManager(
    root,
    options.autoCreateSubscriptionGroup,
    options.maxReconsumeTimes,
  );
  const offsets = new ConsumerOffsetManager(root);
  // Pop in-flight/ack state, timer and transaction progress: journal + snapshot,
  // synced like the commitlog (flushDiskType).
  const consumeStates = new ConsumeStateStore({
    dir: join(root, 'popstate'),
    flushDiskType: options.flushDiskType === 'SYNC_FLUSH' ? 'SYNC_FLUSH' : 'ASYNC_FLUSH',
    flushIntervalMs: options.flushIntervalCommitLog,
    logger,
  });
  await consumeStates.open();
  consumeStates.onAdvance = (st) => {
    if (!isInternalReader(st.group)) offsets.commit(st.group, st.topic, st.queueId, st.base);
  };
  // Replication (broker/ha): a master serves its slaves, a slave follows its master.
  const ha = new HaService({
    options,
    store,
    rootDir: root,
    topics,
    groups,
    offsets,
    consumeStates,
    logger,
  });
  const notifier = new ArrivalNotifier();
  const unsubscribe = store.onDispatch((e) => notifier.notify(e.topic));

  // The gRPC server binds before the handlers exist: the broker's address
  // (needed with listenPort=0) is only known after binding. Until then calls
  // are answered UNAVAILABLE.
  let handlers: BrokerHandlers | undefined;
  const proto = sluiceProto();
  const definition = proto.grpc.sluice.v1.Broker.service;
  const delegate = Object.fromEntries(
    Object.keys(definition).map((method) => [
      method,
      (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        const h = handlers?.[method as keyof BrokerHandlers] as
          | ((c: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => void)
          | undefined;
        if (h) h(call, callback);
        else if (callback) {
          callback(toGrpcError(errors.unavailable('broker is starting')) as ServiceError);
        } else {
          // A streaming call (no callback): end it with the same status.
          call.emit('error', toGrpcError(errors.unavailable('broker is starting')));
        }
      },
    ]),
  );
  const grpcServer = await startGrpcServer(
    options.bindAddress,
    options.listenPort,
    [proto.definition],
    (server) => {
      server.addService(definition, delegate);
      ha.register(server);
    },
  );
  const brokerAddr = `${options.brokerIP1}:${grpcServer.port}`;
  const ctx: BrokerContext = {
    options,
    brokerAddr,
    // A slave only ever writes what replication brings (broker/ha/read-only-store.ts).
    store: options.brokerRole === 'SLAVE' ? readOnlyStore(store, options.brokerName) : store,
    topics,
    groups,
    offsets,
    notifier,
    logger,
    clock: Date.now,
    perm: () => perm,
    replication: ha,
  };

  const namesrvAddrs = parseAddressList(options.namesrvAddr);
  const registry = new NamesrvRegistry({
    namesrvAddrs,
    intervalMs: options.registerBrokerInterval,
    logger,
    onMasterAddr: (addr) => ha.setMasterAddr(addr),
    request: () => ({
      cluster_name: options.brokerClusterName,
      broker_name: options.brokerName,
      broker_id: options.brokerId,
      broker_addr: brokerAddr,
      broker_role: options.brokerRole,
      topics: topics.all(),
      data_version: topics.dataVersion,
      heartbeat_timeout_ms: options.brokerNotActiveTimeoutMillis,
      max_physical_offset: store.maxPhysicalOffset(),
      perm,
    }),
  });
  const timer = new TimerService(ctx, consumeStates);
  const transactions = new TransactionService(ctx, consumeStates);
  const pop = new PopService(ctx, consumeStates);
  const revive = new ReviveService(ctx, pop);
  // A slave's commitlog is a byte copy of its master's: it must not write timers,
  // retries or transaction decisions of its own.
  if (options.brokerRole !== 'SLAVE') {
    await timer.start();
    await transactions.start();
    revive.start();
  }
  // Streamed calls go through the unary handlers as finally served.
  const callStreams = new CallStreams(() => handlers);
  const services: BrokerServices = {
    ctx,
    send: new SendService(ctx, timer, transactions),
    pop,
    pull: new PullService(ctx),
    revive,
    timer,
    transactions,
    status: () => ha.stats(),
    callStreams,
    setPermission: async (next) => {
      perm = next;
      await permWriter.save();
      await registry.registerNow();
    },
  };
  const served = brokerHandlers(services);
  // Observability (issue 9): store spans when tracing is on, metrics on metricsPort.
  if (tracingEnabled()) served.SendMessages = traceStore(options, served.SendMessages);
  metrics =
    options.metricsPort > 0
      ? createBrokerMetrics({
          status: () => brokerStatusOf(served),
          progress: (limit) =>
            consumerProgressRows(
              offsets,
              () => consumeStates.all(),
              (topic, queueId) => store.maxOffset(topic, queueId),
              limit,
            ),
          // Retries and DLQ moves are counted where they are written: a slave's are copies.
          ...(options.brokerRole === 'SLAVE'
            ? {}
            : { onDispatch: (listener) => store.onDispatch(listener) }),
        })
      : undefined;
  // A restarted master takes its slave's consumer offsets before it serves
  // consumers (until then calls answer "broker is starting") or registers.
  await ha.waitForSlavesOnStart();
  handlers = metrics ? instrumentService(definition, served, metrics.rpc, metrics.onCall) : served;
  const metricsServer = metrics
    ? await startMetricsServer(metrics.registry, options.metricsPort, options.bindAddress, logger)
    : undefined;
  topics.onChange(() => void registry.registerNow());
  const registered = registry.start();
  ha.start(brokerAddr, () => void registry.registerNow());
  // Before the boot line: a broker whose line is out is listed (when its name servers answer).
  await registered;

  const namesrvText = namesrvAddrs.length > 0 ? namesrvAddrs.join(';') : '(none)';
  process.stdout.write(
    `The broker[${options.brokerName}, ${brokerAddr}] boot success. serializeType=JSON and name server is ${namesrvText}\n`,
  );

  return {
    close: async () => {
      await registry.close({
        cluster_name: options.brokerClusterName,
        broker_name: options.brokerName,
        broker_id: options.brokerId,
        broker_addr: brokerAddr,
      });
      await ha.close();
      await metricsServer?.close();
      metrics?.close();
      // Gateways keep call streams open: end them (answers in flight go out first).
      await callStreams.drain();
      await grpcServer.close();
      unsubscribe();
      await timer.close();
      transactions.close();
      await revive.close();
      await consumeStates.close();
      await offsets.close();
      await store.close();
      logger.info('broker stopped');
    },
  };
}

export const brokerComponent: ComponentSpec<typeof BROKER_SCHEMA> = {
  name: 'mqbroker',
  description: 'Sluice broker: stores messages and serves send, pull, pop and ack over gRPC',
  schema: BROKER_SCHEMA,
  namesrvKey: 'namesrvAddr',
  examples: `
Examples:
  mqbroker -n localhost:9876
  mqbroker -n localhost:9876 -c deploy/conf/2m-noslave/broker-a.properties
  mqbroker -c broker.properties -p            print the effective config
  mqbroker -n localhost:9876 listenPort=10921 storePathRootDir=./data/broker-b
`,
  start: (options, logger) =>
    withTelemetry('sluice-broker', logger, () => startBroker(options, logger)),
};
