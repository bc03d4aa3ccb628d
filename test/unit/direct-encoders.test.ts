/**
 * The sluice.v1 methods encode with protobufjs directly (common/proto.ts),
 * skipping proto-loader's fromObject copy: the bytes must be exactly the
 * loader's, for the shapes the code sends (maps, repeated strings, bytes,
 * 64-bit numbers, compact columns, oneofs, unset and null fields).
 */
import { loadSync } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { compactMessages, compactSendEntries } from '../../common/compact-messages.js';
import { compactSendResults } from '../../common/compact-send-results.js';
import {
  hasEnum,
  PROTO_LOADER_OPTIONS,
  SLUICE_PROTO_FILES,
  sluiceProto,
} from '../../common/proto.js';

type Method = {
  requestSerialize: (v: unknown) => Buffer;
  responseSerialize: (v: unknown) => Buffer;
  requestDeserialize: (b: Buffer) => unknown;
  responseDeserialize: (b: Buffer) => unknown;
};

const patched = (service: string) =>
  sluiceProto().definition[`sluice.v1.${service}`] as unknown as Record<string, Method>;
const loaderOnly = loadSync(SLUICE_PROTO_FILES, PROTO_LOADER_OPTIONS);
const plain = (service: string) =>
  loaderOnly[`sluice.v1.${service}`] as unknown as Record<string, Method>;

const body = Buffer.from('héllo wörld');
const stored = (i: number) => ({
  message: {
    topic: 'orders',
    body,
    tag: i % 2 ? 'TagA' : '',
    keys: ['k1', `k${i}`],
    properties: { color: 'blue', n: String(i) },
    message_id: `ID${i}`,
    born_timestamp_ms: 1_700_000_000_000 + i,
    born_host: '127.0.0.1:1',
    delivery_timestamp_ms: 0,
  },
  queue_id: 3,
  queue_offset: 2 ** 40 + i,
  physical_offset: 123_456_789 + i,
  store_timestamp_ms: 1_700_000_000_500,
  store_host: '127.0.0.1:10911',
  offset_message_id: `7F00000100002A9F${i.toString(16).padStart(16, '0')}`,
  delivery_attempt: 2,
  receipt_handle: `handle-${i}`,
  broker_name: 'broker-a',
});
const entries = Array.from({ length: 9 }, (_, i) => ({
  message: { topic: 'orders', body, keys: [`k${i}`], properties: { p: 'v' }, message_group: '' },
  queue_id: i % 2 ? -1 : 2,
}));

const cases: Array<[string, string, 'request' | 'response', unknown]> = [
  [
    'Broker',
    'Calls',
    'request',
    { id: 7, send: { compact_entries: compactSendEntries(entries), compact_results: true } },
  ],
  ['Broker', 'Calls', 'request', { id: 8, send: { entries } }],
  [
    'Broker',
    'Calls',
    'request',
    {
      id: 2 ** 40,
      pop: {
        consumer_group: 'g',
        topic: 'orders',
        queue_id: -1,
        max_messages: 32,
        invisible_ms: 30_000,
        max_wait_ms: 0,
        filter: { type: 'TAG', expression: 'TagA || TagB' },
        attempt_id: '',
        compact_messages: true,
      },
    },
  ],
  [
    'Broker',
    'Calls',
    'request',
    { id: 9, ack: { consumer_group: 'g', topic: 'orders', receipt_handles: ['a', 'b'] } },
  ],
  [
    'Broker',
    'Calls',
    'response',
    {
      id: 7,
      pop: {
        status: { code: 20000, message: 'OK' },
        compact: compactMessages(Array.from({ length: 4 }, (_, i) => stored(i))),
      },
    },
  ],
  [
    'Broker',
    'Calls',
    'response',
    {
      id: 7,
      send: {
        compact: compactSendResults(
          Array.from({ length: 5 }, (_, i) => ({
            status: { code: 20000, message: 'OK', reason: '' },
            message_id: `ID${i}`,
            offset_message_id: `7F00000100002A9F${i.toString(16).padStart(16, '0').toUpperCase()}`,
            queue_id: i,
            queue_offset: 2 ** 40 + i,
            physical_offset: 1000 * i,
          })),
        ),
      },
    },
  ],
  [
    'Broker',
    'Calls',
    'response',
    { id: 3, error: { code: 40001, message: 'bad', reason: '' }, retriable: false, send: null },
  ],
  ['Broker', 'PopMessages', 'response', { status: null, messages: [stored(1), stored(2)] }],
  ['Broker', 'GetBrokerStatus', 'response', { stats: { a: '1', b: '' } }],
  [
    'NameServer',
    'RegisterBroker',
    'request',
    {
      cluster_name: 'c',
      broker_name: 'b',
      broker_id: 0,
      broker_addr: '127.0.0.1:1',
      broker_role: 'ASYNC_MASTER',
      topics: [{ topic_name: 't', read_queue_nums: 4, write_queue_nums: 4, perm: 6 }],
      data_version: 12,
      heartbeat_timeout_ms: 120_000,
    },
  ],
];

describe('direct encoders', () => {
  it('are kept off message types with an enum anywhere inside (encode needs enum numbers)', () => {
    const { root } = protobuf.parse(
      'syntax = "proto3"; enum E { A = 0; } message In { E e = 1; } ' +
        'message Out { repeated In in = 1; } message Plain { string s = 1; Plain next = 2; }',
    );
    root.resolveAll();
    expect(hasEnum(root.lookupType('Out'))).toBe(true);
    expect(hasEnum(root.lookupType('Plain'))).toBe(false);
  });

  it('are installed for the sluice.v1 methods', () => {
    for (const [service, method] of [
      ['Broker', 'Calls'],
      ['Broker', 'SendMessages'],
      ['NameServer', 'RegisterBroker'],
    ] as const) {
      expect(patched(service)[method]!.requestSerialize).not.toBe(
        plain(service)[method]!.requestSerialize,
      );
    }
  });

  it.each(cases)(
    "encode %s.%s's %s exactly as proto-loader does",
    (service, method, side, value) => {
      const mine = patched(service)[method]!;
      const theirs = plain(service)[method]!;
      const encode = side === 'request' ? 'requestSerialize' : 'responseSerialize';
      const decode = side === 'request' ? 'requestDeserialize' : 'responseDeserialize';
      const bytes = mine[encode](value);
      expect(Buffer.isBuffer(bytes)).toBe(true);
      expect(bytes.equals(theirs[encode](value))).toBe(true);
      expect(mine[decode](bytes)).toEqual(theirs[decode](theirs[encode](value)));
    },
  );
});
