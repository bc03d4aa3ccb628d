import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BROKER_SCHEMA } from '../../broker/options.js';
import { DEFAULT_MAX_OPEN_FILES } from '../../broker/store/store-options.js';
import { loadOptions } from '../../common/config/options.js';
import { parseProperties } from '../../common/config/properties.js';
import { Code, SluiceError } from '../../common/errors.js';
import { makeTempDir } from '../harness/tmp.js';

describe('properties parser', () => {
  it('reads separators, comments, continuations and escapes with line numbers', () => {
    const text = [
      '# comment',
      '! also a comment',
      'a=1',
      'b : two words  ',
      'c   3',
      'long=first \\',
      '    second',
      'esc=tab\\there\\u0041',
      'empty=',
    ].join('\n');
    expect(parseProperties(text)).toEqual([
      { key: 'a', value: '1', line: 3 },
      { key: 'b', value: 'two words', line: 4 },
      { key: 'c', value: '3', line: 5 },
      { key: 'long', value: 'first second', line: 6 },
      { key: 'esc', value: 'tab\thereA', line: 8 },
      { key: 'empty', value: '', line: 9 },
    ]);
  });
});

describe('loadOptions', () => {
  // A test may write several files: every directory goes afterwards.
  const dirs: Array<ReturnType<typeof makeTempDir>> = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) d.remove();
  });

  const file = (text: string) => {
    const tmp = makeTempDir();
    dirs.push(tmp);
    const path = join(tmp.path, 'broker.properties');
    writeFileSync(path, text);
    return path;
  };

  it('rejects a bad enum value naming file, line and the allowed values', () => {
    const path = file('brokerName=broker-a\n\nflushDiskType=SOMETIMES\n');
    let err: unknown;
    try {
      loadOptions(BROKER_SCHEMA, { file: path });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SluiceError);
    const e = err as SluiceError;
    expect(e.code).toBe(Code.BAD_REQUEST);
    expect(e.reason).toBe('CONFIG');
    expect(e.message).toBe(
      `${path}:3: flushDiskType=SOMETIMES is not valid; expected one of ASYNC_FLUSH, SYNC_FLUSH`,
    );
  });

  it('rejects out-of-range integers and non-booleans', () => {
    expect(() => loadOptions(BROKER_SCHEMA, { file: file('listenPort=70000\n') })).toThrow(
      /:1: listenPort=70000 is not valid; expected an integer >= 0 <= 65535/,
    );
    expect(() => loadOptions(BROKER_SCHEMA, { file: file('autoCreateTopicEnable=yes\n') })).toThrow(
      /expected true or false/,
    );
  });

  it('warns about JVM-only and unknown keys but loads the rest', () => {
    const path = file('sendMessageThreadPoolNums=128\nfrobnicate=1\nbrokerName=broker-b\n');
    const loaded = loadOptions(BROKER_SCHEMA, { file: path });
    expect(loaded.options.brokerName).toBe('broker-b');
    expect(loaded.warnings).toEqual([
      `${path}:1: sendMessageThreadPoolNums only applies to the JVM broker; ignored`,
      `${path}:2: unknown key frobnicate; ignored`,
    ]);
  });

  it('applies defaults, then the file, then key=value overrides, then explicit keys', () => {
    const path = file('brokerName=from-file\nlistenPort=10921\nnamesrvAddr=a:1\n');
    const loaded = loadOptions(BROKER_SCHEMA, {
      file: path,
      overrides: ['listenPort=10931'],
      explicit: { namesrvAddr: 'b:2;c:3' },
    });
    expect(loaded.options.brokerName).toBe('from-file');
    expect(loaded.options.listenPort).toBe(10931);
    expect(loaded.options.namesrvAddr).toBe('b:2;c:3');
    expect(loaded.options.flushDiskType).toBe('ASYNC_FLUSH');
    expect(Object.isFrozen(loaded.options)).toBe(true);
  });

  it('exposes the store descriptor bound maxOpenFiles with its default and range', () => {
    expect(loadOptions(BROKER_SCHEMA, {}).options.maxOpenFiles).toBe(DEFAULT_MAX_OPEN_FILES);
    expect(
      loadOptions(BROKER_SCHEMA, { file: file('maxOpenFiles=1024\n') }).options.maxOpenFiles,
    ).toBe(1024);
    expect(() => loadOptions(BROKER_SCHEMA, { file: file('maxOpenFiles=4\n') })).toThrow(
      /:1: maxOpenFiles=4 is not valid; expected an integer >= 16/,
    );
    expect(BROKER_SCHEMA.maxOpenFiles.doc).toMatch(/ulimit -n/);
  });

  it('rejects an override that is not key=value', () => {
    expect(() => loadOptions(BROKER_SCHEMA, { overrides: ['listenPort'] })).toThrow(
      /not key=value/,
    );
  });
});
