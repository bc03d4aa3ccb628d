/**
 * Builds the public protocol's view of a topic route. Clients reach every
 * broker through the gateway, so each broker's endpoints are the gateway's
 * own address as the client knows it (the access point it sent, else the
 * :authority it dialled).
 *
 * The official Node.js SDK keeps only queues whose id is 0, so every broker
 * lists a queue 0 with READ_WRITE: the gateway picks the real queue (and, for
 * sends, the broker) itself. The broker's other queues follow with their real
 * permissions, for pull consumers that address queues directly.
 */
import type {
  Endpoints,
  Endpoints__Output,
} from '../../common/generated/apache/rocketmq/v2/Endpoints.js';
import type { MessageQueue } from '../../common/generated/apache/rocketmq/v2/MessageQueue.js';
import type { Resource } from '../../common/generated/apache/rocketmq/v2/Resource.js';
import { isReadable, isWritable } from '../../common/names.js';
import type { TopicRoute } from '../route-cache/index.js';
import { ACCEPTED_MESSAGE_TYPES } from './message-mapping.js';

type AddressScheme = 'IPv4' | 'IPv6' | 'DOMAIN_NAME';

function schemeOf(host: string): AddressScheme {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return 'IPv4';
  if (host.includes(':')) return 'IPv6';
  return 'DOMAIN_NAME';
}

/** Parses an :authority such as "127.0.0.1:8081", "[::1]:8081" or "mq.example.com". */
export function endpointsFromAuthority(authority: string, defaultPort: number): Endpoints {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(authority) ?? /^([^:]+)(?::(\d+))?$/.exec(authority);
  const host = m?.[1] ?? authority;
  const port = m?.[2] ? Number(m[2]) : defaultPort;
  return { scheme: schemeOf(host), addresses: [{ host, port }] };
}

/** Where clients should send requests for any broker: the gateway itself. */
export function gatewayEndpoints(
  accessPoint: Endpoints__Output | null | undefined,
  authority: string,
  defaultPort: number,
): Endpoints {
  if (accessPoint && accessPoint.addresses.length > 0) {
    return {
      scheme:
        accessPoint.scheme === 'ADDRESS_SCHEME_UNSPECIFIED'
          ? schemeOf(accessPoint.addresses[0]!.host)
          : accessPoint.scheme,
      addresses: accessPoint.addresses.map((a) => ({ host: a.host, port: a.port })),
    };
  }
  return endpointsFromAuthority(authority, defaultPort);
}

type Permission = 'NONE' | 'READ' | 'WRITE' | 'READ_WRITE';

function permission(read: boolean, write: boolean): Permission {
  if (read && write) return 'READ_WRITE';
  if (read) return 'READ';
  if (write) return 'WRITE';
  return 'NONE';
}

/** The message queues of a known route. */
export function toMessageQueues(
  route: TopicRoute,
  topic: Resource,
  endpoints: Endpoints,
): MessageQueue[] {
  const out: MessageQueue[] = [];
  for (const q of route.queue_datas) {
    const broker = { name: q.broker_name, id: 0, endpoints };
    const queues = Math.max(1, q.read_queue_nums, q.write_queue_nums);
    for (let id = 0; id < queues; id++) {
      out.push({
        topic,
        id,
        permission:
          id === 0
            ? 'READ_WRITE'
            : permission(
                isReadable(q.perm) && id < q.read_queue_nums,
                isWritable(q.perm) && id < q.write_queue_nums,
              ),
        broker,
        accept_message_types: [...ACCEPTED_MESSAGE_TYPES],
      });
    }
  }
  return out;
}

/** Queue 0 of each named broker: the route of a topic that brokers will create on first send. */
export function provisionalQueues(
  brokerNames: readonly string[],
  topic: Resource,
  endpoints: Endpoints,
): MessageQueue[] {
  return brokerNames.map((name) => ({
    topic,
    id: 0,
    permission: 'READ_WRITE',
    broker: { name, id: 0, endpoints },
    accept_message_types: [...ACCEPTED_MESSAGE_TYPES],
  }));
}
