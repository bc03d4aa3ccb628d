/**
 * The NameServer gRPC service: thin handlers over the route table, the KV
 * config store and, for admin calls that change brokers, the BrokerAdmin seam.
 * Errors are thrown as SluiceErrors; unaryHandler maps them to gRPC status.
 */
import { errors } from '../common/errors.js';
import type { NameServerHandlers } from '../common/generated/sluice/v1/NameServer.js';
import type { TopicConfig } from '../common/generated/sluice/v1/TopicConfig.js';
import { unaryHandler } from '../common/grpc.js';
import type { Logger } from '../common/logger.js';
import { checkTopicName, Perm } from '../common/names.js';
import type { BrokerAdmin } from './broker-admin.js';
import { fanOut, fanOutFailed } from './fan-out.js';
import type { KvConfigStore } from './kv-config.js';
import type { RouteTable } from './route-table.js';

export interface NamesrvServiceDeps {
  routes: RouteTable;
  kv: KvConfigStore;
  brokers: BrokerAdmin;
  logger: Logger;
}

/** Largest queue count a topic may ask for (RocketMQ refuses more too). */
export const MAX_TOPIC_QUEUE_NUMS = 1024;

function required(value: string, what: string): string {
  if (!value) throw errors.badRequest(`${what} is required`);
  return value;
}

function checkTopicConfig(config: TopicConfig): void {
  checkTopicName(config.topic_name ?? '');
  for (const [name, n] of [
    ['read_queue_nums', config.read_queue_nums ?? 0],
    ['write_queue_nums', config.write_queue_nums ?? 0],
  ] as const) {
    if (!Number.isInteger(n) || n < 0 || n > MAX_TOPIC_QUEUE_NUMS) {
      throw errors.badRequest(`${name} must be 0..${MAX_TOPIC_QUEUE_NUMS} (0 = broker default)`);
    }
  }
  const perm = config.perm ?? 0;
  if (perm < 0 || perm > 7) throw errors.badRequest(`perm ${perm} is not 0..7`);
}

export function nameServerHandlers(deps: NamesrvServiceDeps): NameServerHandlers {
  const { routes, kv, brokers, logger } = deps;

  /** Groups an admin call targets: a whole cluster, one group, or (for deletes) everything. */
  const targets = (clusterName: string, brokerName: string, allowAll: boolean): string[] => {
    if (clusterName && brokerName) throw errors.badRequest('name a cluster or a broker, not both');
    if (brokerName) {
      if (!routes.hasBrokerGroup(brokerName)) {
        throw errors.notFound(`broker '${brokerName}' is not registered with this name server`);
      }
      return [brokerName];
    }
    if (clusterName) {
      const names = routes.brokerNamesOfCluster(clusterName);
      if (names.length === 0) {
        throw errors.notFound(
          `cluster '${clusterName}' has no brokers registered with this name server`,
        );
      }
      return names;
    }
    if (allowAll) return routes.brokerNames();
    throw errors.badRequest('name a cluster (cluster_name) or a broker (broker_name)');
  };

  const masterOf = (brokerName: string): string => {
    const addr = routes.masterAddrOf(brokerName);
    if (!addr) throw errors.unavailable(`broker group '${brokerName}' has no master registered`);
    return addr;
  };

  return {
    RegisterBroker: unaryHandler((req) => {
      required(req.broker_name, 'broker_name');
      required(req.broker_addr, 'broker_addr');
      required(req.cluster_name, 'cluster_name');
      const result = routes.register(req);
      if (result.isNew) {
        logger.info(
          {
            cluster: req.cluster_name,
            brokerName: req.broker_name,
            brokerId: Number(req.broker_id),
            addr: req.broker_addr,
            role: req.broker_role,
            topics: req.topics.length,
          },
          'broker registered',
        );
      }
      return { master_addr: result.masterAddr };
    }),

    UnregisterBroker: unaryHandler((req) => {
      if (routes.unregister(req)) {
        brokers.forget(req.broker_addr);
        logger.info(
          { brokerName: req.broker_name, brokerId: Number(req.broker_id), addr: req.broker_addr },
          'broker unregistered',
        );
      }
      return {};
    }),

    GetRouteInfoByTopic: unaryHandler((req) => ({
      routes: req.topics.map((topic) => routes.topicRoute(topic)),
    })),

    GetClusterInfo: unaryHandler(() => routes.clusterInfo()),

    GetAllTopicList: unaryHandler(() => ({ topics: routes.topicList() })),

    UpdateTopic: unaryHandler(async (req) => {
      const config = req.config;
      if (!config) throw errors.badRequest('config is required');
      checkTopicConfig(config);
      const names = targets(req.cluster_name, req.broker_name, false);
      const result = await fanOut(names, async (brokerName) => {
        const addr = masterOf(brokerName);
        await brokers.updateTopic(addr, config);
        // The broker fills defaults for unset fields; show what it stored.
        const stored = await brokers.topicConfig(addr, config.topic_name).catch(() => undefined);
        routes.upsertTopic(
          brokerName,
          stored ?? {
            topic_name: config.topic_name,
            read_queue_nums: config.read_queue_nums,
            write_queue_nums: config.write_queue_nums,
            perm: config.perm || Perm.READ_WRITE,
            message_type: config.message_type || 'NORMAL',
            order: config.order,
          },
        );
      });
      const done = result.done.map((d) => d.brokerName);
      logger.info(
        { topic: config.topic_name, done, failed: result.failed.map((f) => f.brokerName) },
        'topic updated',
      );
      if (result.failed.length > 0) throw fanOutFailed(`create topic ${config.topic_name}`, result);
      return { broker_names: done };
    }),

    DeleteTopic: unaryHandler(async (req) => {
      const topic = checkTopicName(req.topic);
      const names = targets(req.cluster_name, '', true);
      const result = await fanOut(names, async (brokerName) => {
        const addr = routes.masterAddrOf(brokerName);
        if (addr) await brokers.deleteTopic(addr, topic);
        routes.deleteTopic(brokerName, topic);
      });
      logger.info({ topic, done: result.done.map((d) => d.brokerName) }, 'topic deleted');
      if (result.failed.length > 0) throw fanOutFailed(`delete topic ${topic}`, result);
      return {};
    }),

    WipeWritePermOfBroker: unaryHandler(async (req) => {
      const name = required(req.broker_name, 'broker_name');
      const affected = routes.wipeWritePerm(name);
      if (affected === undefined)
        throw errors.notFound(`broker '${name}' is not registered with this name server`);
      const brokerError = await persistPerm(name);
      logger.info({ brokerName: name, affected, brokerError }, 'write permission wiped');
      return { affected_topics: affected, broker_error: brokerError };
    }),

    AddWritePermOfBroker: unaryHandler(async (req) => {
      const name = required(req.broker_name, 'broker_name');
      const affected = routes.addWritePerm(name);
      if (affected === undefined)
        throw errors.notFound(`broker '${name}' is not registered with this name server`);
      const brokerError = await persistPerm(name);
      logger.info({ brokerName: name, affected, brokerError }, 'write permission added');
      return { affected_topics: affected, broker_error: brokerError };
    }),

    PutKVConfig: unaryHandler(async (req) => {
      await kv.put(required(req.namespace, 'namespace'), required(req.key, 'key'), req.value);
      logger.info({ namespace: req.namespace, key: req.key }, 'kv config put');
      return {};
    }),

    GetKVConfig: unaryHandler((req) => {
      const value = kv.get(req.namespace, req.key);
      if (value === undefined) throw errors.notFound(`no KV config ${req.namespace}/${req.key}`);
      return { namespace: req.namespace, key: req.key, value };
    }),

    DeleteKVConfig: unaryHandler(async (req) => {
      if (await kv.delete(req.namespace, req.key)) {
        logger.info({ namespace: req.namespace, key: req.key }, 'kv config deleted');
      }
      return {};
    }),

    GetKVListByNamespace: unaryHandler((req) => ({ table: kv.list(req.namespace) })),
  };

  /**
   * Tells the group's master its new broker-wide perm so it persists it and
   * refuses writes itself. Returns why that failed ('' on success): the
   * route change stands either way.
   */
  async function persistPerm(brokerName: string): Promise<string> {
    const perm = routes.brokerPerm(brokerName) ?? Perm.READ_WRITE;
    const addr = routes.masterAddrOf(brokerName);
    if (!addr) return `broker group '${brokerName}' has no master registered`;
    try {
      await brokers.setPermission(addr, perm);
      return '';
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      logger.warn({ brokerName, addr, err: message }, 'broker did not take its new permission');
      return `${addr}: ${message}`;
    }
  }
}
