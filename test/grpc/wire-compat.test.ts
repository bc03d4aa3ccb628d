/**
 * Our hand-written proto/apache/rocketmq/v2 against the official Node.js
 * SDK's compiled protocol classes (rocketmq-client-nodejs, unmodified): every
 * request and response of every MessagingService method is filled field by
 * field from our descriptors, encoded with our serializer and decoded by the
 * SDK; the SDK must see every value where we put it. A wrong field number or
 * wire type shows up as a missing or garbled value. Then the other way round:
 * messages the SDK builds decode with our deserializers.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { messagingProto } from '../../gateway/grpc/messaging-proto.js';

const require = createRequire(import.meta.url);
const sdkService = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/service_pb.js');
const sdkDefinition = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb.js');

const PKG = 'apache.rocketmq.v2';
const definition = messagingProto().definition as Record<string, any>;
const service = definition[`${PKG}.MessagingService`] as Record<string, any>;

/** Real oneofs of the protocol (proto3 `optional` fields are not among them). */
const ONEOFS: Record<string, string[]> = {
  RetryPolicy: ['exponential_backoff', 'customized_backoff'],
  Settings: ['publishing', 'subscription'],
  TelemetryCommand: [
    'settings',
    'thread_stack_trace',
    'verify_message_result',
    'recover_orphaned_transaction_command',
    'print_thread_stack_trace_command',
    'verify_message_command',
    'reconnect_endpoints_command',
  ],
  ReceiveMessageResponse: ['status', 'message', 'delivery_timestamp'],
  PullMessageResponse: ['status', 'message', 'next_offset'],
};

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

interface Filled {
  ours: Record<string, unknown>;
  /** What the SDK's toObject() must contain (a subset match). */
  sdk: Record<string, unknown>;
}

/**
 * Fills every field of a message type (one member per oneof, chosen by
 * `variant`) with a value that tells fields apart.
 */
function fill(typeName: string, variant: number, depth = 0): Filled {
  const short = typeName.replace(/^\.?apache\.rocketmq\.v2\./, '');
  const def = definition[`${PKG}.${short}`] ?? definition[typeName.replace(/^\./, '')];
  const ours: Record<string, unknown> = {};
  const sdk: Record<string, unknown> = {};
  if (!def) throw new Error(`no type ${typeName}`);
  const oneof = ONEOFS[short];
  const chosen = oneof ? oneof[variant % oneof.length] : undefined;
  for (const f of def.type.field as any[]) {
    if (oneof?.includes(f.name) && f.name !== chosen) continue;
    const repeated = f.label === 'LABEL_REPEATED';
    const nested = f.typeName
      ? def.type.nestedType.find(
          (n: any) => f.typeName === n.name || f.typeName.endsWith(`.${n.name}`),
        )
      : undefined;
    if (nested?.options?.mapEntry) {
      ours[f.name] = { k1: `${f.name}-v1` };
      sdk[`${camel(f.name)}Map`] = [['k1', `${f.name}-v1`]];
      continue;
    }
    let one: () => { o: unknown; s: unknown };
    switch (f.type) {
      case 'TYPE_STRING':
        one = () => ({ o: `${f.name}-${f.number}`, s: `${f.name}-${f.number}` });
        break;
      case 'TYPE_BYTES':
        one = () => ({
          o: Buffer.from(`b${f.number}`),
          s: Buffer.from(`b${f.number}`).toString('base64'),
        });
        break;
      case 'TYPE_BOOL':
        one = () => ({ o: true, s: true });
        break;
      case 'TYPE_FLOAT':
      case 'TYPE_DOUBLE':
        one = () => ({ o: 1.5, s: 1.5 });
        break;
      case 'TYPE_INT32':
      case 'TYPE_INT64':
      case 'TYPE_UINT32':
      case 'TYPE_UINT64':
      case 'TYPE_SINT32':
      case 'TYPE_SINT64':
        one = () => ({ o: 1000 + f.number + depth, s: 1000 + f.number + depth });
        break;
      case 'TYPE_ENUM': {
        const e = definition[`${PKG}.${f.typeName.replace(/^\.?(apache\.rocketmq\.v2\.)?/, '')}`];
        const values = e.type.value as { number: number }[];
        const last = values[values.length - 1]!.number;
        one = () => ({ o: last, s: last });
        break;
      }
      case 'TYPE_MESSAGE': {
        if (/google\.protobuf\.(Timestamp|Duration)$/.test(f.typeName)) {
          one = () => ({
            o: { seconds: 100 + f.number, nanos: 7 },
            s: { seconds: 100 + f.number, nanos: 7 },
          });
        } else if (depth > 4) {
          continue;
        } else {
          one = () => {
            const n = fill(f.typeName, variant, depth + 1);
            return { o: n.ours, s: n.sdk };
          };
        }
        break;
      }
      default:
        throw new Error(`unexpected field type ${f.type}`);
    }
    if (repeated) {
      const a = one();
      const b = one();
      ours[f.name] = [a.o, b.o];
      sdk[`${camel(f.name)}List`] = [a.s, b.s];
    } else {
      const a = one();
      ours[f.name] = a.o;
      sdk[camel(f.name)] = a.s;
    }
  }
  return { ours, sdk };
}

const methods = Object.keys(service);

describe('apache.rocketmq.v2 wire compatibility with the official Node.js SDK', () => {
  it('declares every MessagingService method the SDK calls, with the same streaming shape', () => {
    const sdkGrpc = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/service_grpc_pb.js');
    const sdkMethods = sdkGrpc.MessagingServiceService as Record<string, any>;
    for (const m of Object.values(sdkMethods)) {
      const name = (m.path as string).split('/').pop()!;
      if (name === 'SyncLiteSubscription') continue; // lite topics: not offered by Sluice
      expect(service[name], name).toBeDefined();
      expect(service[name].path).toBe(m.path);
      expect(service[name].requestStream).toBe(m.requestStream);
      expect(service[name].responseStream).toBe(m.responseStream);
    }
  });

  for (const method of methods) {
    for (const side of ['request', 'response'] as const) {
      it(`${method} ${side}: every field we encode decodes in the SDK`, () => {
        const m = service[method];
        const typeName: string = m[`${side}Type`].type.name;
        const oneofCount = Math.max(
          1,
          ...[typeName, 'Settings', 'RetryPolicy'].map((t) => ONEOFS[t]?.length ?? 1),
        );
        const SdkClass = sdkService[typeName] ?? sdkDefinition[typeName];
        expect(SdkClass, typeName).toBeDefined();
        for (let v = 0; v < oneofCount; v++) {
          const { ours, sdk } = fill(typeName, v);
          const bytes: Buffer = m[`${side}Serialize`](ours);
          const decoded = SdkClass.deserializeBinary(new Uint8Array(bytes)).toObject();
          expect(decoded).toMatchObject(sdk);
          // And back: what the SDK re-encodes, we decode to the same values.
          const again = m[`${side}Deserialize`](
            Buffer.from(SdkClass.deserializeBinary(new Uint8Array(bytes)).serializeBinary()),
          );
          expect(m[`${side}Serialize`](again).equals(bytes)).toBe(true);
        }
      });
    }
  }

  it('decodes a send request exactly as the SDK builds it', () => {
    const { Message, SystemProperties, Resource, Encoding, MessageType } = sdkDefinition;
    const { Timestamp } = require('google-protobuf/google/protobuf/timestamp_pb.js');
    const sp = new SystemProperties()
      .setTag('TagA')
      .setKeysList(['k1', 'k2'])
      .setMessageId('01ABCDEF')
      .setBornTimestamp(Timestamp.fromDate(new Date(1_700_000_000_123)))
      .setBornHost('host-1')
      .setBodyEncoding(Encoding.IDENTITY)
      .setQueueId(0)
      .setMessageType(MessageType.FIFO)
      .setMessageGroup('g1')
      .setDeliveryTimestamp(Timestamp.fromDate(new Date(1_700_000_999_000)));
    const msg = new Message()
      .setTopic(new Resource().setName('orders').setResourceNamespace('ns'))
      .setBody(Buffer.from('hello'))
      .setSystemProperties(sp);
    msg.getUserPropertiesMap().set('color', 'red');
    const req = new sdkService.SendMessageRequest();
    req.addMessages(msg);
    const ours = service.SendMessage.requestDeserialize(Buffer.from(req.serializeBinary()));
    const m = ours.messages[0];
    expect(m.topic).toEqual({ resource_namespace: 'ns', name: 'orders' });
    expect(m.body.toString()).toBe('hello');
    expect(m.user_properties).toEqual({ color: 'red' });
    expect(m.system_properties).toMatchObject({
      tag: 'TagA',
      keys: ['k1', 'k2'],
      message_id: '01ABCDEF',
      born_host: 'host-1',
      body_encoding: 'IDENTITY',
      message_type: 'FIFO',
      message_group: 'g1',
      born_timestamp: { seconds: 1_700_000_000, nanos: 123_000_000 },
      delivery_timestamp: { seconds: 1_700_000_999, nanos: 0 },
    });
  });
});
