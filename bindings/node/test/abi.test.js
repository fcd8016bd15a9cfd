'use strict';
// lib/abi.js is fresh (bindings/gen_abi.py regenerates it into memory), and the package's
// options are the library's.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const WebSocketModule = require('..');
const { WebSocketServer } = WebSocketModule;
const native = require('../lib/native');
const options = require('../lib/options');
const abi = require('../lib/abi');

const GEN = path.resolve(__dirname, '..', '..', 'gen_abi.py');
const PYTHON = process.env.PYTHON || 'python3';

function havePython() {
  try { execFileSync(PYTHON, ['--version'], { stdio: 'ignore' }); return true; } catch (_) { return false; }
}

test('lib/abi.js is what bindings/gen_abi.py makes of include/wsembed.h', { skip: !fs.existsSync(GEN) ? 'not in a checkout' : (!havePython() ? `${PYTHON} not found` : false) }, () => {
  const expected = execFileSync(PYTHON, [GEN, '--print', 'node'], { encoding: 'utf8' });
  const committed = fs.readFileSync(path.join(__dirname, '..', 'lib', 'abi.js'), 'utf8');
  assert.ok(committed === expected, 'bindings/node/lib/abi.js is stale: run bindings/gen_abi.py');
});

test('constants and layouts come from the generated ABI', () => {
  assert.equal(native.RESULT.OK, abi.enums.wsembed_result.WSEMBED_OK);
  assert.equal(native.RESULT.WOULD_BLOCK, abi.enums.wsembed_result.WSEMBED_ERR_WOULD_BLOCK);
  assert.equal(native.EVENT.PONG, abi.enums.wsembed_event_kind.WSEMBED_EVENT_PONG);
  assert.deepEqual(WebSocketModule.RESULT, native.RESULT);
  const { eventLayout, koffi, types, f } = native.load();
  assert.equal(eventLayout.size, koffi.sizeof(types.wsembed_event));
  assert.deepEqual(Object.keys(eventLayout).slice(1), abi.structs.wsembed_event.map(([n]) => n));
  // Every result code has a text from the library.
  for (const code of Object.values(abi.enums.wsembed_result)) {
    const text = f.wsembed_result_text(code);
    assert.ok(text && text !== 'unknown result code', `code ${code}`);
  }
  // Every exported function was declared.
  for (const name of Object.keys(abi.functions)) assert.equal(typeof f[name], 'function', name);
});

const KNOWN_KINDS = new Set(['bool', 'integer', 'bytes', 'milliseconds', 'count', 'text', 'list', 'choice', 'path', 'pem']);

// The keys of `interface ServerOptions` in index.d.ts.
function declaredOptions() {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
  const body = /interface ServerOptions \{([\s\S]*?)\n  \}/.exec(dts)[1];
  return new Set([...body.matchAll(/^\s{4}(\w+)\??:/gm)].map((m) => m[1]));
}

test('every library option is accepted (camelCase and snake_case) and declared in index.d.ts', async () => {
  const list = options.engineOptions();
  const { f } = native.load();
  assert.equal(list.length, Number(f.wsembed_config_option_count()));
  const declared = declaredOptions();
  for (const o of list) {
    assert.ok(KNOWN_KINDS.has(o.kind), `option ${o.name}: kind ${o.kind} has no conversion in lib/options.js`);
    assert.equal(o.camel, options.camelCase(o.name));
    assert.equal(options.snakeCase(o.camel), o.name, `${o.camel} does not map back to ${o.name}`);
    assert.ok(declared.has(o.camel), `engine option ${o.name} (${o.camel}) is missing from ServerOptions in index.d.ts`);
    assert.ok(o.doc.length > 0);
  }
  // Each one, given at its default by camelCase name (tls_* need a pair: left out), starts a server.
  const values = { port: 0 };
  for (const o of list) {
    if (o.name === 'port' || o.name.startsWith('tls_') || o.default === '') continue;
    values[o.camel] = o.kind === 'bool' ? o.default === 'true' || o.default === '1'
      : ['integer', 'bytes', 'milliseconds', 'count'].includes(o.kind) ? Number(o.default) : o.default;
  }
  const wss = new WebSocketServer(values);
  await new Promise((r) => wss.once('listening', r));
  await new Promise((r) => wss.close(r));
  // And by snake_case name.
  const snake = new WebSocketServer({ port: 0, max_buffered_bytes: 1 << 20, ping_events: false });
  await new Promise((r) => snake.once('listening', r));
  await new Promise((r) => snake.close(r));
});

test('the package exposes no option the library lacks, except its documented host options', () => {
  const engine = new Set(options.engineOptions().map((o) => o.camel));
  const host = options.HOST_OPTIONS;
  const aliases = options.WS_ALIASES;
  for (const name of declaredOptions()) {
    assert.ok(engine.has(name) || name in host || name in aliases, `index.d.ts declares ${name}, which is no engine or host option`);
  }
  for (const [name, doc] of Object.entries(host)) {
    assert.ok(!engine.has(name), `host option ${name} shadows an engine option`);
    assert.ok(doc.length > 0);
  }
  for (const [alias, name] of Object.entries(aliases)) {
    assert.ok(options.engineOptions().some((o) => o.name === name), `ws alias ${alias} -> ${name}: no such engine option`);
  }
  // Every ws name that is declared works; anything else is refused rather than ignored.
  assert.throws(() => new WebSocketServer({ port: 0, maxPaylaod: 10 }), /unknown option "maxPaylaod"/);
  assert.throws(() => new WebSocketServer({ port: 0, no_such_option: 1 }), /unknown option/);
  assert.throws(() => new WebSocketServer({ port: 0, maxPayload: 10, maxMessageSize: 20 }), /both set max_message_size/);
  // README documents the host options.
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  for (const name of Object.keys(host)) assert.ok(readme.includes(name), `README.md does not mention host option ${name}`);
});

test('option values are converted by kind; ranges are the engine\'s', () => {
  assert.equal(options.toText('bool', true), '1');
  assert.equal(options.toText('bool', false), '0');
  assert.equal(options.toText('list', ['a', 'b']), 'a,b');
  assert.equal(options.toText('pem', Buffer.from('PEM')), 'PEM');
  assert.equal(options.toText('bytes', 1024), '1024');
  assert.throws(() => new WebSocketServer({ port: 0, maxConnections: -1 }), (e) => e instanceof TypeError && /max_connections/.test(e.message));
  assert.throws(() => new WebSocketServer({ port: 0, pingEvents: 'maybe' }), /ping_events/);
  assert.throws(() => new WebSocketServer({ port: 0, maxMessageSize: 1.5 }), /max_message_size/);
});
