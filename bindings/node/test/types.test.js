'use strict';
// index.d.ts compiles and describes the API as used in test/types-check.ts.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { runNode } = require('./helpers');

test('index.d.ts type-checks a ws-style program', async () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const r = await runNode([tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'commonjs', '--types', 'node',
    path.join(__dirname, 'types-check.ts')], { timeoutMs: 60000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
});
