/**
 * .ci/run always ends with its one summary line, whichever step fails, and
 * fails when any test was skipped or left todo. npm is replaced by a stub on
 * PATH so each step's outcome is chosen by the test (the real steps take
 * minutes and are what .ci/run runs in CI).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../common/paths.js';
import { makeTempDir } from '../harness/tmp.js';

const stubs = makeTempDir('sluice-ci-');
afterAll(() => stubs.remove());

const NPM_STUB = `#!/usr/bin/env bash
case "$1" in
  ci) exit "\${STUB_CI:-0}" ;;
  run) [ "$2" = lint ] && exit "\${STUB_LINT:-0}"; exit 0 ;;
  test)
    for a in "$@"; do case "$a" in --outputFile=*) out="\${a#--outputFile=}" ;; esac; done
    if [ -n "\${STUB_RESULTS:-}" ]; then printf '%s' "$STUB_RESULTS" > "$out"; fi
    exit "\${STUB_TEST:-0}" ;;
esac
exit 0
`;
writeFileSync(join(stubs.path, 'npm'), NPM_STUB);
chmodSync(join(stubs.path, 'npm'), 0o755);

function ciRun(env: Record<string, string>): { code: number | null; lastLine: string } {
  const r = spawnSync('bash', [join(PACKAGE_ROOT, '.ci', 'run')], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${stubs.path}:${process.env.PATH}`,
      CI_RESULTS: join(stubs.path, 'results.json'),
      ...env,
    },
    timeout: 30_000,
  });
  const lines = r.stdout.trimEnd().split('\n');
  return { code: r.status, lastLine: lines[lines.length - 1] ?? '' };
}

const report = (o: Record<string, number>) =>
  JSON.stringify({
    numPassedTests: 10,
    numFailedTests: 0,
    numFailedTestSuites: 0,
    numPendingTests: 0,
    numTodoTests: 0,
    ...o,
  });

describe('.ci/run', () => {
  it('a failed npm ci still ends with the summary line', () => {
    const r = ciRun({ STUB_CI: '1' });
    expect(r.lastLine).toBe('0 passed, 1 failed (npm ci)');
    expect(r.code).not.toBe(0);
  });

  it('a failed lint still ends with the summary line', () => {
    const r = ciRun({ STUB_LINT: '1' });
    expect(r.lastLine).toBe('0 passed, 1 failed (lint)');
    expect(r.code).not.toBe(0);
  });

  it('tests that never reported (e.g. the type-check failed) count as a failure', () => {
    const r = ciRun({ STUB_TEST: '1' });
    expect(r.lastLine).toBe('0 passed, 1 failed (test)');
    expect(r.code).not.toBe(0);
  });

  it('fails when a test was skipped or left todo, and says so', () => {
    const r = ciRun({ STUB_RESULTS: report({ numPendingTests: 2, numTodoTests: 1 }) });
    expect(r.lastLine).toBe('10 passed, 0 failed (3 skipped or todo: not allowed)');
    expect(r.code).not.toBe(0);
  });

  it('passes when every test ran and passed', () => {
    const r = ciRun({ STUB_RESULTS: report({}) });
    expect(r.lastLine).toBe('10 passed, 0 failed');
    expect(r.code).toBe(0);
  });

  it('reports failed tests with the exit status of the run', () => {
    const r = ciRun({ STUB_RESULTS: report({ numFailedTests: 2 }), STUB_TEST: '1' });
    expect(r.lastLine).toBe('10 passed, 2 failed');
    expect(r.code).toBe(1);
  });
});
