import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  BLANK_MAGIC,
  decodeRecord,
  encodeRecord,
  MESSAGE_MAGIC,
  newDispatchInfo,
  type RecordFields,
  readDispatchInfo,
  validateBlank,
  validateRecord,
  writeBlank,
} from '../../broker/store/commitlog-record.js';
import { crc32Range } from '../../broker/store/crc32.js';
import { SysFlag } from '../../broker/store/index.js';

const FIELDS: RecordFields = {
  topic: 'TopicTest',
  queueId: 3,
  flag: 7,
  queueOffset: 42,
  physicalOffset: 4096,
  sysFlag: 0,
  bornTimestamp: 1_700_000_000_000,
  bornHost: '192.168.0.10:53211',
  storeTimestamp: 1_700_000_000_123,
  storeHost: '10.0.0.1:10911',
  reconsumeTimes: 1,
  preparedTransactionOffset: 0,
  body: Buffer.from('Hello Sluice'),
  tag: 'TagA',
  keys: ['order-1', 'order-2'],
  properties: { a: '1' },
  messageId: 'C0A8000A0001',
};

/** The expected bytes, field by field, as the layout in commitlog-record.ts draws them. */
const GOLDEN = [
  '000000ae', // totalSize 174
  '534c4d31', // magic "SLM1"
  '65f4cd79', // bodyCrc = crc32("Hello Sluice")
  '00000003', // queueId
  '00000007', // flag
  '000000000000002a', // queueOffset 42
  '0000000000001000', // physicalOffset 4096
  '00000000', // sysFlag
  '0000018bcfe56800', // bornTimestamp 1700000000000
  'c0a8000a0000cfdb', // bornHost 192.168.0.10 : 53211
  '0000018bcfe5687b', // storeTimestamp 1700000000123
  '0a00000100002a9f', // storeHost 10.0.0.1 : 10911
  '00000001', // reconsumeTimes
  '0000000000000000', // preparedTransactionOffset
  '0000000c', // bodyLength 12
  '48656c6c6f20536c75696365', // "Hello Sluice"
  '0009', // topicLength
  '546f70696354657374', // "TopicTest"
  '0039', // propertiesLength 57
  '6101310254414753015461674102', // a␁1␂TAGS␁TagA␂
  '4b455953016f726465722d31206f726465722d3202', // KEYS␁order-1 order-2␂
  '554e49515f4b45590143304138303030413030303102', // UNIQ_KEY␁C0A8000A0001␂
  'fd005f07', // recordCrc
].join('');

describe('commitlog record', () => {
  it('encodes the golden bytes exactly', () => {
    const bytes = encodeRecord(FIELDS);
    expect(bytes.toString('hex')).toBe(GOLDEN);
    // The checksums in the fixture are what zlib computes, independently of the encoder.
    expect(bytes.readUInt32BE(8)).toBe(crc32(Buffer.from('Hello Sluice')));
    const bodyStart = 88;
    const bodyEnd = bodyStart + 12;
    const expectedRecordCrc = crc32(
      Buffer.concat([bytes.subarray(0, bodyStart), bytes.subarray(bodyEnd, bytes.length - 4)]),
    );
    expect(bytes.readUInt32BE(bytes.length - 4)).toBe(expectedRecordCrc);
  });

  it('decodes every field back', () => {
    const r = decodeRecord(Buffer.from(GOLDEN, 'hex'), 0, GOLDEN.length / 2);
    expect(r).toEqual({
      topic: 'TopicTest',
      queueId: 3,
      queueOffset: 42,
      physicalOffset: 4096,
      size: 174,
      body: Buffer.from('Hello Sluice'),
      bodyCrc: crc32(Buffer.from('Hello Sluice')),
      tag: 'TagA',
      keys: ['order-1', 'order-2'],
      properties: { a: '1' },
      messageId: 'C0A8000A0001',
      offsetMessageId: '0A00000100002A9F0000000000001000',
      flag: 7,
      sysFlag: 0,
      bornTimestamp: 1_700_000_000_000,
      bornHost: '192.168.0.10:53211',
      storeTimestamp: 1_700_000_000_123,
      storeHost: '10.0.0.1:10911',
      reconsumeTimes: 1,
      preparedTransactionOffset: 0,
    });
  });

  it('round-trips IPv6 hosts, UTF-8 strings, large offsets and a tag code override', () => {
    const fields: RecordFields = {
      ...FIELDS,
      topic: 'tópico',
      bornHost: '[2001:db8::1]:443',
      storeHost: '[::1]:10911',
      queueOffset: 2 ** 40 + 5,
      physicalOffset: 2 ** 45 + 17,
      preparedTransactionOffset: 2 ** 33,
      sysFlag: SysFlag.TRANSACTION_COMMIT,
      keys: ['ключ', 'k2'],
      properties: { 'émoji-😀': 'valeur ✓', empty: '' },
      tagsCode: 1_700_000_999_000n,
      body: Buffer.alloc(3000, 0xab),
    };
    const bytes = encodeRecord(fields);
    expect(validateRecord(bytes, 0, bytes.length, fields.physicalOffset)).toBeUndefined();
    const r = decodeRecord(bytes, 0, bytes.length);
    expect(r.topic).toBe('tópico');
    expect(r.bornHost).toBe('[2001:db8::1]:443');
    expect(r.storeHost).toBe('[::1]:10911');
    expect(r.sysFlag).toBe(SysFlag.TRANSACTION_COMMIT | SysFlag.BORNHOST_V6 | SysFlag.STOREHOST_V6);
    expect(r.queueOffset).toBe(2 ** 40 + 5);
    expect(r.physicalOffset).toBe(2 ** 45 + 17);
    expect(r.preparedTransactionOffset).toBe(2 ** 33);
    expect(r.keys).toEqual(['ключ', 'k2']);
    expect(r.properties).toEqual({ 'émoji-😀': 'valeur ✓', empty: '' });
    expect(r.tagsCode).toBe(1_700_000_999_000n);
    expect(r.body.equals(fields.body)).toBe(true);
    expect(r.offsetMessageId).toHaveLength(56);
    const info = newDispatchInfo();
    readDispatchInfo(bytes, 0, bytes.length, info);
    expect(info).toMatchObject({
      topic: 'tópico',
      queueId: 3,
      tag: 'TagA',
      tagsCode: 1_700_000_999_000n,
    });
  });

  it('detects a flipped bit anywhere in the record', () => {
    const bytes = encodeRecord(FIELDS);
    expect(validateRecord(bytes, 0, bytes.length, 4096)).toBeUndefined();
    for (let i = 0; i < bytes.length; i++) {
      const copy = Buffer.from(bytes);
      copy[i]! ^= 0x10;
      expect(validateRecord(copy, 0, copy.length, 4096), `byte ${i}`).toBeDefined();
    }
  });

  it('refuses a record found at another position, and a torn one', () => {
    const bytes = encodeRecord(FIELDS);
    expect(validateRecord(bytes, 0, bytes.length, 8192)).toMatch(/physicalOffset/);
    expect(validateRecord(bytes, 0, bytes.length - 1, 4096)).toMatch(/runs past/);
  });

  it('writes and validates the blank padding record', () => {
    const blank = Buffer.alloc(100);
    writeBlank(blank, 0, 100);
    expect(blank.subarray(0, 8).toString('hex')).toBe('00000064534c4231');
    expect(blank.readUInt32BE(4)).toBe(BLANK_MAGIC);
    expect(BLANK_MAGIC).not.toBe(MESSAGE_MAGIC);
    expect(validateBlank(blank, 0, 100)).toBeUndefined();
    expect(validateBlank(blank, 0, 120)).toMatch(/segment end/);
  });

  it('computes CRC-32 like zlib for every range length', () => {
    const buf = Buffer.alloc(600);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 31 + 7) & 0xff;
    for (const [s, e] of [
      [0, 0],
      [0, 1],
      [3, 11],
      [5, 300],
      [0, 600],
      [17, 255],
    ] as const) {
      expect(crc32Range(buf, s, e)).toBe(crc32(buf.subarray(s, e)));
    }
    expect(crc32Range(buf, 40, 90, crc32Range(buf, 0, 40))).toBe(crc32(buf.subarray(0, 90)));
  });
});
