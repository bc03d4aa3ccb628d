/**
 * common/flat-encoder.ts writes exactly protobufjs's bytes for CompactMessages
 * values, including the edges the compact encoders never produce but a
 * caller could (negative and non-integer int32s, NaN, empty columns, unset
 * fields, multi-byte text, values larger than the kept scratch buffer).
 */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { compactMessages, compactSendEntries } from '../../common/compact-messages.js';
import { flatEncoder } from '../../common/flat-encoder.js';
import { PROTO_DIR } from '../../common/paths.js';
import { SLUICE_PROTO_FILES } from '../../common/proto.js';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(PROTO_DIR, target);
root.loadSync(SLUICE_PROTO_FILES, { keepCase: true });
root.resolveAll();
const type = root.lookupType('sluice.v1.CompactMessages');
type.setup();
type Encode = (value: Record<string, unknown>, w?: protobuf.Writer) => protobuf.Writer;
const own = type.encode.bind(type) as unknown as Encode;
const flat = flatEncoder(type, own)!;

/** Byte-for-byte as protobufjs; large values compare with equals (toEqual walks every byte slowly). */
const same = (value: Record<string, unknown>) => {
  const ours = Buffer.from(flat(value).finish());
  const theirs = Buffer.from(own(value).finish());
  if (theirs.length < 65_536) expect(ours).toEqual(theirs);
  else expect(ours.length === theirs.length && ours.equals(theirs)).toBe(true);
};

describe('flatEncoder', () => {
  it('takes CompactMessages and refuses types that are not flat', () => {
    expect(flat).toBeTypeOf('function');
    for (const name of ['StoredMessage', 'Message', 'SendMessagesRequest', 'CompactSendResults']) {
      expect(flatEncoder(root.lookupType(`sluice.v1.${name}`), own)).toBeUndefined();
    }
  });

  it('writes the bytes protobufjs writes for batches the compact encoders build', () => {
    const body = Buffer.from('héllo wörld 🙂');
    const entries = Array.from({ length: 130 }, (_, i) => ({
      message: {
        topic: i % 3 ? 'orders' : 'ördérs-🙂',
        body: i % 5 ? body : Buffer.alloc(0),
        tag: i % 2 ? 'TagA' : '',
        keys: i % 4 ? [`k${i}`] : [],
        properties: (i % 7 ? { p: `v${i}` } : {}) as Record<string, string>,
        message_group: '',
        delivery_timestamp_ms: i % 6 ? 0 : 1_700_000_000_000 + i,
        born_timestamp_ms: 1_700_000_000_000,
        transactional: i % 9 === 0,
      },
      queue_id: i % 2 ? -1 : i,
    }));
    same(compactSendEntries(entries) as unknown as Record<string, unknown>);
    const stored = compactMessages(
      entries.map((e, i) => ({
        ...e,
        queue_offset: 2 ** 40 + i,
        physical_offset: 2 ** 53 - 1 - i,
        store_timestamp_ms: 1_700_000_000_500,
        receipt_handle: `handle-${i}`,
        delivery_attempt: i,
      })),
    );
    same(stored as unknown as Record<string, unknown>);
  });

  it('matches protobufjs at the edges of each field kind', () => {
    same({});
    same({ text: '', text_lengths: [], bodies: Buffer.alloc(0), topics: null, tags: undefined });
    same({
      text: 'a\u00e9\u4e2d\ud83d\ude42',
      text_lengths: [
        0,
        1,
        127,
        128,
        16_383,
        16_384,
        2 ** 31 - 1,
        -1,
        -(2 ** 31),
        3.7,
        -1.5,
        Number.NaN,
      ],
      bodies: new Uint8Array([0, 1, 255]),
      delivery_timestamps_ms: [0, -0, 1.5, 2 ** 53 - 1, -1, Number.MAX_VALUE],
      transactional: [true, false, true],
      queue_ids: [-1],
    });
  });

  it('keeps an encode whole after later encodes reuse the scratch, and takes values larger than it', () => {
    const a = { text: 'first', text_lengths: [1, 2, 3], bodies: Buffer.from('A') };
    const b = { text: 'second', text_lengths: [9, 9], bodies: Buffer.from('B') };
    const wa = flat(a);
    flat(b);
    expect(Buffer.from(wa.finish())).toEqual(Buffer.from(own(a).finish()));
    const big = {
      text: 'x'.repeat(3 * 1024 * 1024),
      text_lengths: Array.from({ length: 200_000 }, (_, i) => i),
      bodies: Buffer.alloc(2 * 1024 * 1024, 7),
    };
    same(big);
    same(a);
  });

  it('leaves a bytes field given as base64 text to protobufjs', () => {
    same({ text: 'x', bodies: 'AAEC' });
  });
});
