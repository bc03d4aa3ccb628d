/**
 * CompactSendResults must give back exactly the SendResults it stands for,
 * through the real protobuf serializers of sluice.v1.Broker/SendMessages,
 * and must refuse (undefined) any batch it could not give back unchanged,
 * so the broker falls back to `results`.
 */
import type { MethodDefinition } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import {
  compactSendResults,
  expandSendResults,
  sendResultCodes,
  sendResultsOf,
} from '../../common/compact-send-results.js';
import { Code } from '../../common/errors.js';
import type { SendMessagesResponse } from '../../common/generated/sluice/v1/SendMessagesResponse.js';
import type { SendResult__Output } from '../../common/generated/sluice/v1/SendResult.js';
import { offsetMessageIdWithPrefix } from '../../common/offset-message-id.js';
import { sluiceProto } from '../../common/proto.js';

const PREFIX = '7F00000100002A9F';

function stored(
  i: number,
  physical: number,
  over: Partial<SendResult__Output> = {},
): SendResult__Output {
  return {
    status: { code: Code.OK, message: 'OK', reason: '' },
    message_id: `0A0000010000000000000000000000${String(i).padStart(2, '0')}`,
    offset_message_id: offsetMessageIdWithPrefix(PREFIX, physical),
    queue_id: i % 4,
    queue_offset: 1000 + i,
    physical_offset: physical,
    transaction_id: '',
    ...over,
  };
}

function unstored(code: number, message: string): SendResult__Output {
  return {
    status: { code, message, reason: 'why' },
    message_id: '',
    offset_message_id: '',
    queue_id: 0,
    queue_offset: 0,
    physical_offset: 0,
    transaction_id: '',
  };
}

/** Encode and decode a SendMessages answer with the loader's own serializers. */
function overTheWire(res: SendMessagesResponse): SendMessagesResponse {
  const method = (
    sluiceProto().definition['sluice.v1.Broker'] as Record<string, MethodDefinition<object, object>>
  ).SendMessages!;
  return method.responseDeserialize(method.responseSerialize(res)) as SendMessagesResponse;
}

describe('compact send results', () => {
  // Offsets past 2^32 and near 2^53 check the int64 and hex halves.
  const bigOffset = 2 ** 40 + 12345;
  const batch: SendResult__Output[] = [
    stored(0, 4096),
    unstored(Code.MESSAGE_BODY_TOO_LARGE, 'too large'),
    stored(2, bigOffset, { transaction_id: offsetMessageIdWithPrefix(PREFIX, bigOffset) }),
    stored(3, 2 ** 52 + 7, {
      status: { code: Code.HA_NOT_AVAILABLE, message: 'no slave', reason: 'r' },
    }),
    stored(4, 9000, { message_id: '' }),
  ];

  it('round-trips a mixed batch through the protobuf wire unchanged', () => {
    const compact = compactSendResults(batch);
    expect(compact).toBeDefined();
    const decoded = overTheWire({ compact });
    expect(decoded.results).toEqual([]);
    expect(sendResultsOf(decoded)).toEqual(batch);
    expect(sendResultCodes(decoded)).toEqual(batch.map((r) => r.status!.code));
  });

  it('a full answer still reads through the same helpers', () => {
    const decoded = overTheWire({ results: batch });
    expect(decoded.compact).toBeNull();
    expect(sendResultsOf(decoded)).toEqual(batch);
    expect(sendResultCodes(decoded)).toEqual(batch.map((r) => r.status!.code));
  });

  it('an empty batch is an empty compact answer', () => {
    const compact = compactSendResults([]);
    expect(compact).toBeDefined();
    expect(expandSendResults(compact!)).toEqual([]);
  });

  it('refuses batches it cannot give back unchanged', () => {
    expect(compactSendResults([stored(0, 1, { status: undefined })])).toBeUndefined();
    expect(
      compactSendResults([
        stored(0, 1, { status: { code: Code.OK, message: 'fine', reason: '' } }),
      ]),
    ).toBeUndefined();
    expect(
      compactSendResults([stored(0, 1, { offset_message_id: `${PREFIX}000000000000FFFF` })]),
    ).toBeUndefined();
    expect(compactSendResults([stored(0, 1, { transaction_id: 'other' })])).toBeUndefined();
    expect(compactSendResults([stored(0, 1, { queue_id: -2 })])).toBeUndefined();
    expect(
      compactSendResults([{ ...unstored(Code.BAD_REQUEST, 'x'), message_id: 'id' }]),
    ).toBeUndefined();
    // Two different store hosts in one batch cannot share one prefix.
    expect(
      compactSendResults([
        stored(0, 1),
        stored(1, 2, { offset_message_id: offsetMessageIdWithPrefix('0A00000200002A9F', 2) }),
      ]),
    ).toBeUndefined();
  });

  it('rejects compact answers whose arrays do not agree with INTERNAL_ERROR', () => {
    const good = compactSendResults(batch)!;
    const bad = [
      { ...good, queue_ids: good.queue_ids.slice(1) },
      { ...good, statuses: [] },
      { ...good, message_ids: `${good.message_ids}X` },
      { ...good, half_entries: [1] },
    ];
    for (const c of bad) {
      expect(() => expandSendResults(c)).toThrow(
        expect.objectContaining({ code: Code.INTERNAL_ERROR }),
      );
    }
  });
});
