// The test runner's own reading of each tier's output (web/scripts/test.mjs): a wrong count here
// would make `npm test` report green on a red suite.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

import { judge, parseGtest, parseNodeTap } from '../../web/scripts/test.mjs';

test('gtest summary: passed, failed and skipped counts, singular or plural', () => {
  const out = [
    '[==========] 5 tests from 2 test suites ran. (12 ms total)',
    '[  PASSED  ] 3 tests.',
    '[  SKIPPED ] 1 test, listed below:',
    '[  SKIPPED ] A.b',
    '[  FAILED  ] 1 test, listed below:',
    '[  FAILED  ] A.c',
    '',
    ' 1 FAILED TEST',
  ].join('\n');
  assert.deepEqual(parseGtest(out), { passed: 3, failed: 1, skipped: 1 });
  assert.deepEqual(parseGtest('[  PASSED  ] 1 test.\n'), { passed: 1, failed: 0, skipped: 0 });
});

test('gtest summary through colour codes, and none at all', () => {
  assert.deepEqual(parseGtest('\x1b[0;32m[  PASSED  ] \x1b[m7 tests.\n'), { passed: 7, failed: 0, skipped: 0 });
  // A per-test FAILED line is not the count line.
  assert.equal(parseGtest('[ RUN      ] A.b\n[  FAILED  ] A.b (0 ms)\n'), undefined);
  assert.equal(parseGtest(''), undefined);
});

test('node --test TAP summary: cancelled counts as failed, todo as skipped', () => {
  const tap = ['TAP version 13', '# tests 9', '# pass 5', '# fail 1', '# cancelled 1', '# skipped 1', '# todo 1'].join('\n');
  assert.deepEqual(parseNodeTap(tap), { passed: 5, failed: 2, skipped: 2 });
  assert.equal(parseNodeTap('TAP version 13\n'), undefined);
});

test('a crash, a time-out or a non-zero exit fails the tier whatever the counts say', () => {
  const ok = { passed: 4, failed: 0, skipped: 0 };
  assert.equal(judge('t', { code: 0 }, ok).status, 'ok');
  assert.equal(judge('t', { code: 1 }, ok).failed, 1);
  assert.equal(judge('t', { code: null, signal: 'SIGSEGV' }, undefined).failed, 1);
  assert.equal(judge('t', { code: 0, timedOut: true }, ok).status, 'FAILED');
  assert.equal(judge('t', { code: 0 }, undefined).status, 'FAILED');
  assert.equal(judge('t', { code: 1 }, { passed: 2, failed: 3, skipped: 0 }).failed, 3);
});

test('the real node --test TAP reporter is read correctly', () => {
  const child = `
    const { test } = require('node:test');
    test('a', () => {});
    test('b', { skip: true }, () => {});
    test('c', () => { throw new Error('x'); });`;
  // Without the parent runner's context variable the child reports in TAP on its stdout.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const run = spawnSync(process.execPath, ['--test-reporter=tap', '-e', child], { encoding: 'utf8', env });
  assert.notEqual(run.status, 0);
  assert.deepEqual(parseNodeTap(run.stdout), { passed: 1, failed: 1, skipped: 1 });
});
