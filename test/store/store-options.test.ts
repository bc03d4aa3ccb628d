import { describe, expect, it } from 'vitest';
import { decodeAddress, encodeAddress } from '../../broker/store/socket-address.js';
import {
  DEFAULT_MAPED_FILE_SIZE_COMMIT_LOG_BYTES,
  DEFAULT_MAPED_FILE_SIZE_CONSUME_QUEUE_BYTES,
  parseDeleteWhen,
  parseStoreOptions,
} from '../../broker/store/store-options.js';
import { Code, isSluiceError } from '../../common/errors.js';

describe('store options', () => {
  it("fills RocketMQ's defaults, paths under the root, and freezes", () => {
    const o = parseStoreOptions({ storePathRootDir: '/data/store' });
    expect(o).toMatchObject({
      storePathCommitLog: '/data/store/commitlog',
      storePathConsumeQueue: '/data/store/consumequeue',
      storePathIndex: '/data/store/index',
      storeCheckpoint: '/data/store/checkpoint',
      abortFile: '/data/store/abort',
      mapedFileSizeCommitLog: 1024 * 1024 * 1024,
      mapedFileSizeConsumeQueue: 300_000 * 20,
      flushDiskType: 'ASYNC_FLUSH',
      flushIntervalCommitLog: 500,
      syncFlushTimeout: 5000,
      fileReservedTime: 72,
      deleteWhen: '04',
      diskMaxUsedSpaceRatio: 75,
      diskSpaceWarningLevelRatio: 0.9,
      maxMessageSize: 4 * 1024 * 1024,
    });
    expect(DEFAULT_MAPED_FILE_SIZE_COMMIT_LOG_BYTES).toBe(o.mapedFileSizeCommitLog);
    expect(DEFAULT_MAPED_FILE_SIZE_CONSUME_QUEUE_BYTES).toBe(o.mapedFileSizeConsumeQueue);
    expect(Object.isFrozen(o)).toBe(true);
    // Empty strings (as config files leave them) mean "default".
    expect(parseStoreOptions({ storePathRootDir: '/r', storePathIndex: '' }).storePathIndex).toBe(
      '/r/index',
    );
    expect(
      parseStoreOptions({ storePathRootDir: '/r', mapedFileSizeConsumeQueue: 1001 })
        .mapedFileSizeConsumeQueue,
    ).toBe(1020);
  });

  it('refuses bad values with a BAD_REQUEST naming the key', () => {
    const bad = [
      { flushDiskType: 'SOMETIMES' },
      { deleteWhen: '25' },
      { deleteWhen: 'noon' },
      { diskMaxUsedSpaceRatio: 0 },
      { diskSpaceWarningLevelRatio: 90 },
      { mapedFileSizeCommitLog: 100 },
      { syncFlushTimeout: -1 },
      { storePathRootDir: '' },
    ];
    for (const b of bad) {
      let err: unknown;
      try {
        parseStoreOptions({ storePathRootDir: '/r', ...b });
      } catch (e) {
        err = e;
      }
      expect(isSluiceError(err, Code.BAD_REQUEST), JSON.stringify(b)).toBe(true);
    }
    expect(parseDeleteWhen('04;16')).toEqual([4, 16]);
  });
});

describe('socket addresses', () => {
  it('encodes IPv4 and IPv6 hosts as RocketMQ does and formats them back', () => {
    expect(encodeAddress('10.1.2.3:8080').bytes.toString('hex')).toBe('0a01020300001f90');
    for (const [input, output] of [
      ['10.1.2.3:8080', '10.1.2.3:8080'],
      ['ipv4:127.0.0.1:9', '127.0.0.1:9'],
      ['[::1]:443', '[::1]:443'],
      ['ipv6:[2001:db8:0:0:1:0:0:1]:80', '[2001:db8::1:0:0:1]:80'],
      ['[::ffff:192.0.2.1]:5', '[::ffff:c000:201]:5'],
      ['localhost:1234', '0.0.0.0:1234'],
      ['garbage', '0.0.0.0:0'],
    ] as const) {
      const a = encodeAddress(input);
      expect(decodeAddress(a.bytes, 0, a.v6), input).toBe(output);
    }
    expect(encodeAddress('[::1]:443').v6).toBe(true);
    expect(encodeAddress('[::1]:443').bytes).toHaveLength(20);
  });
});
