import { describe, expect, it } from 'vitest';
import {
  formatTime,
  keyValues,
  parseTimestamp,
  permString,
  table,
} from '../../cli/admin/format.js';
import { brokerAddrMap } from '../../common/broker-addrs.js';
import { Code, SluiceError } from '../../common/errors.js';

describe('mqadmin output helpers', () => {
  it('aligns # headed columns', () => {
    expect(
      table(
        ['Topic', 'QID'],
        [
          ['T1', 0],
          ['LongTopic', 12],
        ],
      ),
    ).toBe(['#Topic     #QID', 'T1         0', 'LongTopic  12'].join('\n'));
    expect(table(['A', 'B'], [])).toBe('#A  #B');
  });

  it('prints key/value blocks sorted', () => {
    expect(keyValues({ b: '2', aa: '1' })).toBe('aa : 1\nb  : 2');
    expect(keyValues({ k: 'v' }, '=')).toBe('k = v');
  });

  it("renders RocketMQ's perm strings", () => {
    expect(permString(6)).toBe('RW-');
    expect(permString(4)).toBe('R--');
    expect(permString(2)).toBe('-W-');
    expect(permString(7)).toBe('RWX');
  });

  it('parses now, epoch ms and yyyy-MM-dd#HH:mm:ss:SSS', () => {
    expect(parseTimestamp('now', 1234)).toBe(1234);
    expect(parseTimestamp('1700000000000')).toBe(1_700_000_000_000);
    expect(parseTimestamp('2024-03-05#06:07:08:009')).toBe(
      new Date(2024, 2, 5, 6, 7, 8, 9).getTime(),
    );
    expect(parseTimestamp('2024-03-05T06:07:08Z')).toBe(Date.UTC(2024, 2, 5, 6, 7, 8));
    for (const bad of ['yesterday', '2024-02-30#00:00:00:000', '2024-03-05#6:07:08:009']) {
      let err: unknown;
      try {
        parseTimestamp(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SluiceError);
      expect((err as SluiceError).code).toBe(Code.BAD_REQUEST);
    }
  });

  it('formats local times and 0 as -', () => {
    expect(formatTime(0)).toBe('-');
    expect(formatTime(new Date(2024, 0, 2, 3, 4, 5).getTime())).toBe('2024-01-02 03:04:05');
  });

  it('orders broker addresses by id, master first', () => {
    expect([...brokerAddrMap({ 2: 'c', 1: 'b', 0: 'a' })]).toEqual([
      [0, 'a'],
      [1, 'b'],
      [2, 'c'],
    ]);
  });
});
