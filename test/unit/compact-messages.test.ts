/**
 * CompactMessages must give back exactly the StoredMessages it stands for,
 * through the real protobuf serializers of sluice.v1.Broker/PopMessages, and
 * must refuse (undefined) any batch it could not give back unchanged, so the
 * broker falls back to `messages`.
 */
import type { MethodDefinition } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import {
  bodyLengthsOf,
  compactMessages,
  compactSendEntries,
  expandMessages,
  messagesOf,
  sendEntriesOf,
} from '../../common/compact-messages.js';
import { Code, SluiceError } from '../../common/errors.js';
import type { CompactMessages__Output } from '../../common/generated/sluice/v1/CompactMessages.js';
import type {
  PopMessagesResponse,
  PopMessagesResponse__Output,
} from '../../common/generated/sluice/v1/PopMessagesResponse.js';
import type { SendEntry } from '../../common/generated/sluice/v1/SendEntry.js';
import type {
  SendMessagesRequest,
  SendMessagesRequest__Output,
} from '../../common/generated/sluice/v1/SendMessagesRequest.js';
import type { StoredMessage } from '../../common/generated/sluice/v1/StoredMessage.js';
import { sluiceProto } from '../../common/proto.js';

function stored(i: number, over: Partial<StoredMessage> = {}): StoredMessage {
  return {
    message: {
      topic: i % 3 === 0 ? '%RETRY%g' : 'orders',
      body: Buffer.from(`body ${i} ${'x'.repeat(i * 7)}`),
      tag: i % 2 ? 'TagA' : '',
      keys: i % 4 === 1 ? ['k1', `k${i}`] : [],
      properties: i % 2 ? { p: 'v', [`n${i}`]: `ünï ${i}` } : {},
      message_group: i % 5 === 0 ? 'fifo-group' : '',
      delivery_timestamp_ms: i === 2 ? 1_800_000_000_123 : 0,
      delay_level: i === 3 ? 4 : 0,
      transactional: i === 4,
      message_id: `0A0000010000000000000000000000${String(i).padStart(2, '0')}`,
      born_timestamp_ms: 1_764_000_000_000 + i,
      born_host: '127.0.0.1:50000',
      producer_group: i === 4 ? 'tx-producers' : '',
      traceparent: i === 1 ? '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' : '',
      tracestate: i === 1 ? 'vendor=ü' : '',
    },
    queue_id: i % 4,
    queue_offset: 1_000 + i,
    physical_offset: i === 6 ? Number.MAX_SAFE_INTEGER : 4_096 * i,
    store_timestamp_ms: 1_764_000_000_500 + i,
    store_host: '127.0.0.1:10911',
    offset_message_id: `7F00000100002A9F${(4_096 * i).toString(16).toUpperCase().padStart(16, '0')}`,
    delivery_attempt: 1 + (i % 3),
    receipt_handle: `handle-${i}-${'h'.repeat(40)}`,
    reconsume_times: i % 3,
    broker_name: 'broker-a',
    ...over,
  };
}

const method = () =>
  (sluiceProto().definition['sluice.v1.Broker'] as Record<string, MethodDefinition<object, object>>)
    .PopMessages!;

/** Encode and decode a PopMessages answer with the loader's own serializers. */
function overTheWire(res: PopMessagesResponse): PopMessagesResponse__Output {
  const m = method();
  return m.responseDeserialize(m.responseSerialize(res)) as PopMessagesResponse__Output;
}

const OK = { code: Code.OK, message: 'OK', reason: '' };

describe('compact messages', () => {
  it('expand to exactly what the full answer decodes to, field by field', () => {
    const batch = Array.from({ length: 12 }, (_, i) => stored(i));
    // An empty body and a message with every string empty.
    batch.push(stored(12, { message: { topic: 'orders', body: Buffer.alloc(0) } }));
    const compact = compactMessages(batch);
    expect(compact).toBeDefined();
    const full = overTheWire({ status: OK, messages: batch });
    const viaCompact = overTheWire({ status: OK, compact });
    expect(full.compact).toBeNull();
    expect(viaCompact.messages).toEqual([]);
    const expanded = expandMessages(viaCompact.compact!);
    expect(expanded).toEqual(full.messages);
    expect(messagesOf(viaCompact)).toEqual(full.messages);
    expect(messagesOf(full)).toBe(full.messages);
    // Spot checks, so that equality of two wrong decodings cannot pass.
    expect(expanded[1]!.message!.properties).toEqual({ p: 'v', n1: 'ünï 1' });
    expect(expanded[1]!.message!.tracestate).toBe('vendor=ü');
    expect(expanded[5]!.message!.keys).toEqual(['k1', 'k5']);
    expect(expanded[6]!.physical_offset).toBe(Number.MAX_SAFE_INTEGER);
    expect(expanded[4]!.message!.transactional).toBe(true);
    expect(expanded[12]!.message!.body.length).toBe(0);
    // Shared strings travel once; so does the empty string of unset ids.
    expect(compact!.text.split('broker-a')).toHaveLength(2);
    const emptyRefs = compact!.text_lengths.filter((n) => n === 0);
    expect(emptyRefs).toHaveLength(1);
  });

  it('is smaller on the wire than the full answer for a pop of 32 × 1 KiB', () => {
    const batch = Array.from({ length: 32 }, (_, i) =>
      stored(i, { message: { ...stored(i).message, body: Buffer.alloc(1024, 120) } }),
    );
    const m = method();
    const full = m.responseSerialize({ status: OK, messages: batch }).length;
    const compact = m.responseSerialize({ status: OK, compact: compactMessages(batch) }).length;
    expect(compact).toBeLessThan(full);
  });

  it('an empty batch round-trips', () => {
    const res = overTheWire({ status: OK, compact: compactMessages([]) });
    expect(res.compact).not.toBeNull();
    expect(messagesOf(res)).toEqual([]);
  });

  it('refuses batches it could not give back unchanged', () => {
    expect(compactMessages([stored(1), { queue_id: 1 }])).toBeUndefined();
    expect(
      compactMessages([stored(1, { message: { ...stored(1).message, body: 'aGk=' } })]),
    ).toBeUndefined();
    expect(compactMessages([stored(1, { queue_offset: '9007199254740993' })])).toBeUndefined();
    expect(compactMessages([stored(1, { physical_offset: -0.5 })])).toBeUndefined();
  });

  it('columns that do not agree are an internal error, not a wrong message', () => {
    const good = () =>
      overTheWire({ status: OK, compact: compactMessages([stored(1), stored(2)]) }).compact!;
    const broken: [string, (c: CompactMessages__Output) => void][] = [
      ['column length', (c) => c.tags.pop()],
      ['dictionary index', (c) => (c.topics[0] = 999)],
      ['text lengths', (c) => (c.text_lengths[0]! += 1)],
      ['bodies short', (c) => (c.body_lengths[1]! += 1)],
      ['bodies left over', (c) => (c.body_lengths[1]! -= 1)],
      ['keys', (c) => c.keys.push(0)],
      ['properties', (c) => (c.property_counts[0] = 5)],
    ];
    for (const [what, breakIt] of broken) {
      const c = good();
      breakIt(c);
      let thrown: unknown;
      try {
        expandMessages(c);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, what).toBeInstanceOf(SluiceError);
      expect((thrown as SluiceError).code, what).toBe(Code.INTERNAL_ERROR);
    }
  });

  it('body sizes come from either form without expanding', () => {
    const batch = [stored(1), stored(2), stored(3)];
    const sizes = batch.map((m) => (m.message!.body as Buffer).length);
    expect(bodyLengthsOf({ messages: batch })).toEqual(sizes);
    expect(bodyLengthsOf({ compact: compactMessages(batch) })).toEqual(sizes);
    expect(bodyLengthsOf({})).toEqual([]);
  });
});

/** Encode and decode a SendMessages request with the loader's own serializers. */
function requestOverTheWire(req: SendMessagesRequest): SendMessagesRequest__Output {
  const m = (
    sluiceProto().definition['sluice.v1.Broker'] as Record<string, MethodDefinition<object, object>>
  ).SendMessages!;
  return m.requestDeserialize(m.requestSerialize(req)) as SendMessagesRequest__Output;
}

describe('compact send entries', () => {
  const entries = (): SendEntry[] => [
    ...Array.from({ length: 12 }, (_, i) => ({
      message: stored(i).message,
      queue_id: i % 3 === 0 ? -1 : i % 4,
    })),
    { message: { topic: 'orders', body: Buffer.alloc(0) } },
  ];

  it('expand to exactly the entries a full request decodes to', () => {
    const compact = compactSendEntries(entries());
    expect(compact).toBeDefined();
    const full = requestOverTheWire({ entries: entries() });
    const viaCompact = requestOverTheWire({ compact_entries: compact, compact_results: true });
    expect(viaCompact.entries).toEqual([]);
    const got = sendEntriesOf(viaCompact);
    expect(got).toEqual(full.entries);
    // Expanded in place, once: later readers of the request see the same entries.
    expect(viaCompact.compact_entries).toBeNull();
    expect(viaCompact.entries).toBe(got);
    expect(sendEntriesOf(viaCompact)).toBe(got);
    expect(sendEntriesOf(full)).toBe(full.entries);
    // Spot checks, so that equality of two wrong decodings cannot pass.
    expect(got[0]!.queue_id).toBe(-1);
    expect(got[1]!.queue_id).toBe(1);
    expect(got[1]!.message!.properties).toEqual({ p: 'v', n1: 'ünï 1' });
    expect(got[2]!.message!.delivery_timestamp_ms).toBe(1_800_000_000_123);
    expect(got[4]!.message!.producer_group).toBe('tx-producers');
    expect(got[5]!.message!.keys).toEqual(['k1', 'k5']);
    expect(got[12]!.message!.body.length).toBe(0);
  });

  it('an empty batch or an entry without a message goes as entries', () => {
    expect(compactSendEntries([])).toBeUndefined();
    expect(compactSendEntries([{ queue_id: 1 }])).toBeUndefined();
  });

  it("columns that do not agree are the caller's bad request", () => {
    const req = requestOverTheWire({ compact_entries: compactSendEntries(entries()) });
    req.compact_entries!.body_lengths[0]! += 1;
    let thrown: unknown;
    try {
      sendEntriesOf(req);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SluiceError);
    expect((thrown as SluiceError).code).toBe(Code.BAD_REQUEST);
    expect((thrown as SluiceError).message).toMatch(/^compact_entries: .*bodies/);
  });
});
