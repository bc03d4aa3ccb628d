/** Pure pieces of the gRPC gateway: routes, headers, statuses, long-poll timing, settings. */
import { describe, expect, it } from 'vitest';
import { Code } from '../../common/errors.js';
import type { Settings__Output } from '../../common/generated/apache/rocketmq/v2/Settings.js';
import { parseAuthorization, qualify, toResource } from '../../gateway/grpc/client-context.js';
import { answerSettings } from '../../gateway/grpc/client-settings.js';
import { longPollMs } from '../../gateway/grpc/consume-handlers.js';
import { md5Hex } from '../../gateway/grpc/message-mapping.js';
import { messagingProto } from '../../gateway/grpc/messaging-proto.js';
import { summarize } from '../../gateway/grpc/public-status.js';
import {
  endpointsFromAuthority,
  gatewayEndpoints,
  toMessageQueues,
} from '../../gateway/grpc/route-mapping.js';

/** The values of an enum of the loaded apache.rocketmq.v2 proto, name → number. */
function protoEnum(name: string): Record<string, number> {
  const def = messagingProto().definition[`apache.rocketmq.v2.${name}`] as unknown as {
    type: { value: { name: string; number: number }[] };
  };
  return Object.fromEntries(def.type.value.map((v) => [v.name, v.number]));
}

describe('gRPC gateway mapping', () => {
  it('names address schemes as the protocol does (IPv4, IPv6), and only with names it defines', () => {
    expect(protoEnum('AddressScheme')).toEqual({
      ADDRESS_SCHEME_UNSPECIFIED: 0,
      IPv4: 1,
      IPv6: 2,
      DOMAIN_NAME: 3,
    });
    const schemes = ['10.1.2.3:1', '[fe80::1]:2', 'mq.example.com:3'].map(
      (a) => endpointsFromAuthority(a, 1).scheme,
    );
    expect(schemes).toEqual(['IPv4', 'IPv6', 'DOMAIN_NAME']);
    for (const s of schemes) expect(protoEnum('AddressScheme')).toHaveProperty(String(s));
  });

  it('our Code table is exactly the protocol Code enum (less CODE_UNSPECIFIED)', () => {
    const { CODE_UNSPECIFIED, ...proto } = protoEnum('Code');
    expect(CODE_UNSPECIFIED).toBe(0);
    expect({ ...Code }).toEqual(proto);
  });

  it('lists queue 0 of every broker as READ_WRITE at the gateway, other queues with their real permission', () => {
    const endpoints = endpointsFromAuthority('127.0.0.1:8081', 1);
    const queues = toMessageQueues(
      {
        topic: 't',
        queue_datas: [
          {
            broker_name: 'broker-a',
            read_queue_nums: 2,
            write_queue_nums: 2,
            perm: 6,
            message_type: '',
          },
          {
            broker_name: 'broker-b',
            read_queue_nums: 2,
            write_queue_nums: 1,
            perm: 4,
            message_type: '',
          },
        ],
        broker_datas: [],
        status: null,
      },
      { resource_namespace: '', name: 't' },
      endpoints,
    );
    expect(queues.map((q) => [q.broker?.name, q.id, q.permission])).toEqual([
      ['broker-a', 0, 'READ_WRITE'],
      ['broker-a', 1, 'READ_WRITE'],
      ['broker-b', 0, 'READ_WRITE'],
      ['broker-b', 1, 'READ'],
    ]);
    for (const q of queues) {
      expect(q.broker?.endpoints).toEqual({
        scheme: 'IPv4',
        addresses: [{ host: '127.0.0.1', port: 8081 }],
      });
      expect(q.accept_message_types).toEqual(['NORMAL', 'FIFO', 'DELAY', 'TRANSACTION']);
    }
  });

  it('points clients back at the address they dialled', () => {
    expect(endpointsFromAuthority('[::1]:9000', 1)).toEqual({
      scheme: 'IPv6',
      addresses: [{ host: '::1', port: 9000 }],
    });
    expect(endpointsFromAuthority('mq.example.com', 8081)).toEqual({
      scheme: 'DOMAIN_NAME',
      addresses: [{ host: 'mq.example.com', port: 8081 }],
    });
    expect(
      gatewayEndpoints(
        { scheme: 'ADDRESS_SCHEME_UNSPECIFIED', addresses: [{ host: '10.0.0.7', port: 18081 }] },
        'ignored:1',
        1,
      ),
    ).toEqual({ scheme: 'IPv4', addresses: [{ host: '10.0.0.7', port: 18081 }] });
  });

  it('parses the SDK authorization header without judging it', () => {
    expect(
      parseAuthorization(
        'MQv2-HMAC-SHA1 Credential=AK1, SignedHeaders=x-mq-date-time, Signature=ABCDEF',
      ),
    ).toEqual({
      scheme: 'MQv2-HMAC-SHA1',
      accessKey: 'AK1',
      signedHeaders: ['x-mq-date-time'],
      signature: 'ABCDEF',
    });
    expect(parseAuthorization('garbage')).toBeUndefined();
    expect(parseAuthorization('Bearer token')).toBeUndefined();
  });

  it('applies namespaces as RocketMQ does', () => {
    expect(qualify({ resource_namespace: 'ns', name: 't' }, '', 'topic')).toBe('ns%t');
    expect(qualify({ resource_namespace: '', name: 't' }, 'ns', 'topic')).toBe('ns%t');
    expect(qualify({ resource_namespace: '', name: 't' }, '', 'topic')).toBe('t');
    expect(toResource('ns%t', 'ns')).toEqual({ resource_namespace: 'ns', name: 't' });
    expect(() => qualify(null, '', 'group')).toThrow(expect.objectContaining({ code: 40003 }));
  });

  it('summarizes batch statuses', () => {
    const ok = { code: 20000, message: 'OK' };
    const bad = { code: 40013, message: 'stale' };
    expect(summarize([ok, ok]).code).toBe(20000);
    expect(summarize([bad, bad])).toEqual(bad);
    expect(summarize([ok, bad]).code).toBe(30000);
  });

  it('answers a long poll before the client deadline', () => {
    const opts = {
      defaultLongPollingMs: 20_000,
      maxLongPollingMs: 30_000,
      deadlineMarginMs: 1_000,
    };
    expect(longPollMs(undefined, Number.POSITIVE_INFINITY, 0, opts)).toBe(20_000);
    expect(longPollMs(60_000, Number.POSITIVE_INFINITY, 0, opts)).toBe(30_000);
    expect(longPollMs(30_000, new Date(5_000), 0, opts)).toBe(4_000);
    expect(longPollMs(30_000, 500, 0, opts)).toBe(0);
  });

  it('gives producers an exponential backoff and the body limit; consumers their subscription', () => {
    const opts = {
      maxMessageSize: 1234,
      receiveBatchSize: 32,
      defaultLongPollingMs: 20_000,
      maxDeliveryAttempts: 16,
    };
    const unknownGroup = { orderly: false, maxDeliveryAttempts: undefined };
    const producer = answerSettings(
      {
        client_type: 'PRODUCER',
        publishing: { topics: [], max_body_size: 0, validate_message_type: true },
      } as unknown as Settings__Output,
      unknownGroup,
      opts,
    );
    expect(producer.publishing?.max_body_size).toBe(1234);
    expect(producer.backoff_policy?.exponential_backoff?.multiplier).toBe(2);
    const consumer = answerSettings(
      {
        client_type: 'SIMPLE_CONSUMER',
        subscription: { group: { name: 'g', resource_namespace: '' }, subscriptions: [] },
      } as unknown as Settings__Output,
      unknownGroup,
      opts,
    );
    expect(consumer.subscription?.receive_batch_size).toBe(32);
    // No broker said: the gateway's default.
    expect(consumer.backoff_policy?.max_attempts).toBe(16);
    const limited = answerSettings(
      {
        client_type: 'PUSH_CONSUMER',
        subscription: { group: { name: 'g', resource_namespace: '' }, subscriptions: [] },
      } as unknown as Settings__Output,
      { orderly: true, maxDeliveryAttempts: 2 },
      opts,
    );
    expect(limited.backoff_policy?.max_attempts).toBe(2);
    expect(limited.subscription?.fifo).toBe(true);
    expect(() =>
      answerSettings(
        { client_type: 'LITE_PUSH_CONSUMER' } as unknown as Settings__Output,
        unknownGroup,
        opts,
      ),
    ).toThrow(expect.objectContaining({ code: 40015 }));
  });

  it('digests bodies as the SDKs check them (upper-case hex MD5)', () => {
    expect(md5Hex(Buffer.from('hello'))).toBe('5D41402ABC4B2A76B9719D911017C592');
  });
});
