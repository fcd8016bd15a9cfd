'use strict';
// wsembed's client WebSocket against npm `ws` servers, and npm `ws` clients with
// permessage-deflate against wsembed servers with compression.
const test = require('node:test');
const assert = require('node:assert/strict');
const { once } = require('events');
const crypto = require('crypto');
const ws = require('ws');
const { WebSocket, WebSocketServer } = require('..');
const { withTimeout, waitFor, runNode } = require('./helpers');

const T = 10000;

async function wsServer(options = {}) {
  const srv = new ws.WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  await once(srv, 'listening');
  srv.seen = [];
  srv.on('connection', (sock, req) => {
    srv.seen.push({ sock, req, messages: [], closed: new Promise((r) => sock.on('close', (c, why) => r({ code: c, reason: why.toString() }))) });
    const rec = srv.seen[srv.seen.length - 1];
    sock.on('message', (data, isBinary) => {
      rec.messages.push({ data, isBinary });
      const text = isBinary ? null : data.toString();
      if (text === 'fragments') {
        sock.send('frag-1 ', { fin: false });
        sock.send('frag-2 ', { fin: false });
        sock.send('frag-3', { fin: true });
      } else if (text === 'close-me') {
        sock.close(4001, 'server says bye');
      } else {
        sock.send(data, { binary: isBinary });
      }
    });
  });
  return srv;
}

function collect(client) {
  client.received = [];
  client.on('message', (data, isBinary) => client.received.push({ data, isBinary }));
  client.closed = new Promise((r) => client.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  client.errors = [];
  client.on('error', (e) => client.errors.push(e));
  return client;
}

async function nth(client, n) {
  await waitFor(() => client.received.length >= n, T, `message ${n}`);
  return client.received[n - 1];
}

test('client against an npm ws server: text, binary, fragments, subprotocol, headers, close codes', async () => {
  const srv = await wsServer({ handleProtocols: (set) => (set.has('chat') ? 'chat' : false) });
  const port = srv.address().port;
  try {
    const c = collect(new WebSocket(`ws://127.0.0.1:${port}/path?q=1`, ['nope', 'chat'],
      { headers: { 'X-Token': 'secret-1' }, origin: 'http://origin.test' }));
    assert.equal(c.readyState, WebSocket.CONNECTING);
    assert.throws(() => c.send('early'), /not open/);
    await withTimeout(once(c, 'open'), T, 'open');
    assert.equal(c.readyState, WebSocket.OPEN);
    assert.equal(c.protocol, 'chat');
    assert.equal(c.url, `ws://127.0.0.1:${port}/path?q=1`);
    const rec = srv.seen[0];
    assert.equal(rec.req.headers['x-token'], 'secret-1');
    assert.equal(rec.req.headers.origin, 'http://origin.test');
    assert.equal(rec.req.url, '/path?q=1');

    c.send('hello');
    let m = await nth(c, 1);
    assert.equal(m.isBinary, false); assert.equal(m.data.toString(), 'hello');
    const bin = crypto.randomBytes(70000);
    c.send(bin);
    m = await nth(c, 2);
    assert.equal(m.isBinary, true); assert.ok(m.data.equals(bin));
    c.send('fragments');
    m = await nth(c, 3);
    assert.equal(m.data.toString(), 'frag-1 frag-2 frag-3');
    assert.equal(rec.messages[1].isBinary, true);

    // Close from the client: the ws server sees the code and reason.
    c.close(4000, 'client bye');
    assert.equal(c.readyState, WebSocket.CLOSING);
    assert.deepEqual(await withTimeout(rec.closed, T, 'server close'), { code: 4000, reason: 'client bye' });
    assert.equal((await withTimeout(c.closed, T, 'client close')).code, 4000);
    assert.equal(c.readyState, WebSocket.CLOSED);

    // Close from the server.
    const d = collect(new WebSocket(`ws://127.0.0.1:${port}/`));
    await withTimeout(once(d, 'open'), T, 'open');
    assert.equal(d.protocol, '');
    d.send('close-me');
    assert.deepEqual(await withTimeout(d.closed, T, 'close'), { code: 4001, reason: 'server says bye' });
    assert.deepEqual(d.errors, []);
  } finally {
    for (const s of srv.clients) s.terminate();
    srv.close();
  }
});

test('a refused connection emits error then close 1006', async () => {
  const srv = await wsServer();
  const port = srv.address().port;
  await new Promise((r) => srv.close(r));
  const c = collect(new WebSocket(`ws://127.0.0.1:${port}/`));
  assert.equal((await withTimeout(c.closed, T, 'close')).code, 1006);
  assert.equal(c.errors.length, 1);
  assert.equal(c.errors[0].code, 'WSEMBED_FAILURE_CONNECTION_REFUSED');
});

test('reconnect: the ws server goes away and comes back on the same port', async () => {
  let srv = await wsServer();
  const port = srv.address().port;
  const c = collect(new WebSocket(`ws://127.0.0.1:${port}/`, { reconnect: { minDelayMs: 50, maxDelayMs: 200 } }));
  const reconnects = [];
  c.on('reconnecting', (info) => reconnects.push(info));
  let opens = 0;
  c.on('open', () => { opens++; });
  try {
    await waitFor(() => opens === 1, T, 'first open');
    c.send('one');
    assert.equal((await nth(c, 1)).data.toString(), 'one');
    for (const s of srv.clients) s.terminate();
    await new Promise((r) => srv.close(r));
    await waitFor(() => reconnects.length >= 1, T, 'reconnecting');
    assert.ok(reconnects[0].attempt >= 1);
    assert.equal(typeof reconnects[0].delayMs, 'number');
    assert.equal(c.readyState, WebSocket.CONNECTING);
    srv = await wsServer({ port });
    await waitFor(() => opens === 2, T, 'second open');
    c.send('two');
    await waitFor(() => c.received.some((m) => m.data.toString() === 'two'), T, 'echo after reconnect');
    c.close(1000);
    const closed = await withTimeout(c.closed, T, 'close');
    assert.equal(closed.code, 1000);
  } finally {
    for (const s of srv.clients) s.terminate();
    srv.close();
  }
});

test('the client engine does not keep the process alive', async () => {
  const script = `
    const ws = require('ws');
    const { WebSocket } = require('.');
    const srv = new ws.WebSocketServer({ port: 0, host: '127.0.0.1' }, () => {
      const c = new WebSocket('ws://127.0.0.1:' + srv.address().port + '/');
      srv.on('connection', (s) => s.on('message', (d) => s.send(d)));
      c.on('open', () => c.send('x'));
      c.on('message', () => { c.close(); srv.close(); });
      c.on('close', () => console.log('closed'));
    });`;
  const r = await runNode(['-e', script], { timeoutMs: 10000 });
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /closed/);
});

for (const [name, opts] of [['compression: shared', { compression: 'shared' }], ['perMessageDeflate: true (dedicated)', { perMessageDeflate: true }]]) {
  test(`npm ws client with perMessageDeflate against WebSocketServer(${name})`, async () => {
    const wss = new WebSocketServer({ port: 0, ...opts });
    await once(wss, 'listening');
    const serverExt = [];
    wss.on('connection', (sock) => {
      serverExt.push(sock.extensions);
      sock.on('message', (data, isBinary) => {
        if (!isBinary && data.toString() === 'fragments') {
          // Many small messages and one big one, both compressible.
          sock.send('a'.repeat(5000));
          return;
        }
        sock.send(data, { binary: isBinary });
      });
    });
    const c = collect(new ws.WebSocket(`ws://127.0.0.1:${wss.address().port}/`, { perMessageDeflate: true }));
    try {
      await withTimeout(once(c, 'open'), T, 'open');
      assert.match(c.extensions, /permessage-deflate/);
      await waitFor(() => serverExt.length > 0, T, 'connection');
      assert.match(serverExt[0], /permessage-deflate/);
      const text = 'compressible text '.repeat(1000);
      c.send(text);
      assert.equal((await nth(c, 1)).data.toString(), text);
      const bin = Buffer.alloc(300000, 7);
      c.send(bin);
      const m2 = await nth(c, 2);
      assert.equal(m2.isBinary, true); assert.ok(m2.data.equals(bin));
      // A fragmented compressed message from the client.
      c.send('part one, '.repeat(300), { fin: false });
      c.send('part two, '.repeat(300), { fin: false });
      c.send('the end', { fin: true });
      assert.equal((await nth(c, 3)).data.toString(), 'part one, '.repeat(300) + 'part two, '.repeat(300) + 'the end');
      c.send('fragments');
      assert.equal((await nth(c, 4)).data.toString(), 'a'.repeat(5000));
      const rnd = crypto.randomBytes(1 << 20);
      c.send(rnd);
      assert.ok((await nth(c, 5)).data.equals(rnd));
      const st = wss.stats();
      assert.ok(st.bytesOut < (1 << 20) + 100000, `compressed output expected, got ${st.bytesOut} bytes`);
    } finally {
      c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
}

test('wsembed client with perMessageDeflate against an npm ws server', async () => {
  const srv = await wsServer({ perMessageDeflate: true });
  try {
    const c = collect(new WebSocket(`ws://127.0.0.1:${srv.address().port}/`, { perMessageDeflate: true }));
    await withTimeout(once(c, 'open'), T, 'open');
    assert.match(c.extensions, /permessage-deflate/);
    const text = 'zip '.repeat(10000);
    c.send(text);
    assert.equal((await nth(c, 1)).data.toString(), text);
    c.close();
    await withTimeout(c.closed, T, 'close');
  } finally {
    for (const s of srv.clients) s.terminate();
    srv.close();
  }
});

test('wss:// against an npm ws server on https, with ca as PEM and as a path; untrusted fails', async (t) => {
  const { execFileSync } = require('child_process');
  const fs = require('fs'); const os = require('os'); const path = require('path'); const https = require('https');
  try { execFileSync('openssl', ['version'], { stdio: 'ignore' }); } catch (_) { t.skip('openssl not found'); return; }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsembed-ctls-'));
  const certFile = path.join(dir, 'c.pem'); const keyFile = path.join(dir, 'k.pem');
  // A CA and a leaf it signs (rustls refuses a CA certificate used as the server's own).
  const caFile = path.join(dir, 'ca.pem'); const caKey = path.join(dir, 'ca.key'); const csr = path.join(dir, 'l.csr');
  const ext = path.join(dir, 'ext.cnf');
  fs.writeFileSync(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  const run = (args) => execFileSync('openssl', args, { stdio: 'ignore' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=wsembed test CA', '-keyout', caKey, '-out', caFile, '-days', '1']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', keyFile, '-out', csr]);
  run(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-out', certFile, '-days', '1', '-extfile', ext]);
  const httpsServer = https.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) });
  const srv = new ws.WebSocketServer({ server: httpsServer });
  srv.on('connection', (s) => s.on('message', (d, isBinary) => s.send(d, { binary: isBinary })));
  await new Promise((r) => httpsServer.listen(0, '127.0.0.1', r));
  const port = httpsServer.address().port;
  try {
    for (const ca of [fs.readFileSync(caFile), caFile]) {
      const c = collect(new WebSocket(`wss://localhost:${port}/`, { ca }));
      await withTimeout(once(c, 'open'), T, 'wss open');
      c.send('over tls');
      assert.equal((await nth(c, 1)).data.toString(), 'over tls');
      c.close();
      assert.equal((await withTimeout(c.closed, T, 'close')).code, 1000);
    }
    const bad = collect(new WebSocket(`wss://localhost:${port}/`, { reconnect: true }));
    assert.equal((await withTimeout(bad.closed, T, 'close')).code, 1006);
    assert.equal(bad.errors[0].code, 'WSEMBED_FAILURE_TLS_VERIFICATION');
  } finally {
    for (const s of srv.clients) s.terminate();
    srv.close();
    httpsServer.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('queueWhileConnecting: sends before open are delivered after it', async () => {
  const srv = await wsServer();
  try {
    const c = collect(new WebSocket(`ws://127.0.0.1:${srv.address().port}/`, { queueWhileConnecting: 65536 }));
    assert.equal(c.send('queued early'), true);
    await withTimeout(once(c, 'open'), T, 'open');
    assert.equal((await nth(c, 1)).data.toString(), 'queued early');
    c.terminate();
    assert.equal((await withTimeout(c.closed, T, 'close')).code, 1006);
  } finally {
    for (const s of srv.clients) s.terminate();
    srv.close();
  }
});
