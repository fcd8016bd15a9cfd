'use strict';
// Handshake approval (verifyClient, handleProtocols, 'handshake'), TLS, origin and rate limits,
// stats(): the npm `ws` client against a wsembed server hosted in this process.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { once } = require('events');
const { execFileSync } = require('child_process');
const WebSocket = require('ws');
const { startServer, connect, nextMessage, withTimeout, waitFor, url } = require('./helpers');

function closeServer(wss) {
  return new Promise((resolve) => wss.close(() => resolve()));
}

// Resolves with the HTTP status of a refused upgrade ('unexpected-response'), or 'open'.
function upgradeOutcome(address, options = {}, protocols = undefined) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(address, protocols, options);
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', () => resolve({ status: res.statusCode, body }));
    });
    ws.on('open', () => { resolve({ status: 101, ws }); });
    ws.on('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
}

test('verifyClient(info, cb): accepts with the cookie seen, rejects with 401 and a message', async () => {
  const seen = [];
  const wss = await startServer({
    verifyClient(info, cb) {
      seen.push({ origin: info.origin, secure: info.secure, cookie: info.req.headers.cookie, url: info.req.url });
      if (/session=good/.test(info.req.headers.cookie || '')) {
        info.req.user = 'ann';
        setTimeout(() => cb(true), 5); // answering later is fine
      } else {
        cb(false, 401, 'who are you?');
      }
    },
  });
  const connections = [];
  wss.on('connection', (s, req) => {
    connections.push(req);
    s.on('message', (d) => s.send(`${req.user}: ${d}`));
  });

  const ok = await upgradeOutcome(url(wss, '/chat?x=1'), { headers: { Cookie: 'session=good; theme=dark', Origin: 'https://app.example' } });
  assert.equal(ok.status, 101);
  ok.ws.send('hi');
  assert.equal((await once(ok.ws, 'message'))[0].toString(), 'ann: hi');
  // The request of 'connection' is the one verifyClient saw.
  assert.equal(connections[0].user, 'ann');
  assert.deepEqual(seen[0], { origin: 'https://app.example', secure: false, cookie: 'session=good; theme=dark', url: '/chat?x=1' });

  const bad = await upgradeOutcome(url(wss), { headers: { Cookie: 'session=bad' } });
  assert.equal(bad.status, 401);
  assert.equal(bad.body, 'who are you?');
  assert.equal(connections.length, 1);
  ok.ws.close();

  // The one-argument form: false -> 401.
  const wss2 = await startServer({ verifyClient: (info) => info.req.url === '/yes' });
  assert.equal((await upgradeOutcome(url(wss2, '/no'))).status, 401);
  const yes = await upgradeOutcome(url(wss2, '/yes'));
  assert.equal(yes.status, 101);
  yes.ws.close();
  await closeServer(wss2);
  await closeServer(wss);
});

test('handleProtocols picks one of the offered subprotocols', async () => {
  const offered = [];
  const wss = await startServer({
    handleProtocols(protocols, request) {
      offered.push([...protocols]);
      assert.equal(typeof request.url, 'string');
      return protocols.has('v2.chat') ? 'v2.chat' : false;
    },
  });
  const got = [];
  wss.on('connection', (s) => got.push(s.protocol));
  const c = await connect(wss, '/', ['v1.chat', 'v2.chat']);
  assert.equal(c.protocol, 'v2.chat');
  await waitFor(() => got.length === 1, 5000, 'connection');
  assert.deepEqual(got, ['v2.chat']);
  assert.deepEqual(offered, [['v1.chat', 'v2.chat']]);
  // false: no subprotocol (the subprotocols option, empty here, decides); the ws client then
  // fails the connection itself, as it does against a ws server.
  const d = new WebSocket(url(wss), ['v1.chat']);
  const [err] = await withTimeout(once(d, 'error'), 5000, 'client error');
  assert.match(err.message, /Server sent no subprotocol/);
  c.close();
  await closeServer(wss);
});

test("the 'handshake' event (approveHandshakes) accepts or rejects with any status", async () => {
  const wss = await startServer({ approveHandshakes: true, path: '/ws' });
  wss.on('handshake', (hs, request) => {
    assert.equal(hs.request, request);
    if (request.headers['x-token'] === 'ok') hs.accept(); else hs.reject(403, 'no token');
  });
  assert.deepEqual(await upgradeOutcome(url(wss, '/ws'), { headers: { 'X-Token': 'nope' } }), { status: 403, body: 'no token' });
  // With approval on, the path option answers 400 before the upgrade, like ws.
  assert.equal((await upgradeOutcome(url(wss, '/other'), { headers: { 'X-Token': 'ok' } })).status, 400);
  const ok = await upgradeOutcome(url(wss, '/ws'), { headers: { 'X-Token': 'ok' } });
  assert.equal(ok.status, 101);
  ok.ws.close();
  await closeServer(wss);
});

test('wss:// echo with a self-signed certificate (tls: { cert, key } and { certFile, keyFile })', async (t) => {
  let hasOpenssl = true;
  try { execFileSync('openssl', ['version'], { stdio: 'ignore' }); } catch (_) { hasOpenssl = false; }
  if (!hasOpenssl) { t.skip('openssl not found: cannot make a test certificate'); return; }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsembed-tls-'));
  const certFile = path.join(dir, 'c.pem'); const keyFile = path.join(dir, 'k.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile, '-days', '1'], { stdio: 'ignore' });
    const cert = fs.readFileSync(certFile);
    for (const tls of [{ cert, key: fs.readFileSync(keyFile, 'utf8') }, { certFile, keyFile }]) {
      const seen = [];
      const wss = await startServer({ tls, verifyClient: (info) => { seen.push(info.secure); return true; } });
      wss.on('connection', (s) => s.on('message', (d, isBinary) => s.send(d, { binary: isBinary })));
      const c = new WebSocket(`wss://localhost:${wss.address().port}/`, { ca: cert });
      await withTimeout(once(c, 'open'), 5000, 'wss open');
      c.send('over tls');
      const [data, isBinary] = await withTimeout(once(c, 'message'), 5000, 'tls echo');
      assert.deepEqual([data.toString(), isBinary], ['over tls', false]);
      c.send(Buffer.alloc(100000, 7));
      const [big] = await withTimeout(once(c, 'message'), 5000, 'tls echo (large)');
      assert.equal(big.length, 100000);
      assert.deepEqual(seen, [true]);
      c.close();
      await once(c, 'close');
      await closeServer(wss);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('tls needs a certificate and a key', () => {
  const { WebSocketServer } = require('..');
  assert.throws(() => new WebSocketServer({ port: 0, tls: { cert: 'x' } }), /tls needs/);
  assert.throws(() => new WebSocketServer({ port: 0, tls: { cert: 'not pem', key: 'not pem' } }), /TLS certificate/);
});

test('allowedOrigins: other browser origins get 403, listed ones and non-browser clients connect', async () => {
  const wss = await startServer({ allowedOrigins: ['https://good.example', 'http://localhost:3000'] });
  assert.equal((await upgradeOutcome(url(wss), { headers: { Origin: 'https://evil.example' } })).status, 403);
  const good = await upgradeOutcome(url(wss), { headers: { Origin: 'https://good.example' } });
  assert.equal(good.status, 101);
  const none = await upgradeOutcome(url(wss));
  assert.equal(none.status, 101);
  good.ws.close(); none.ws.close();
  await closeServer(wss);
});

test('maxMessagesPerSec: a client over the limit is closed with 1008; rateLimitPolicy drop drops', async () => {
  const wss = await startServer({ maxMessagesPerSec: 5 });
  const c = await connect(wss);
  for (let i = 0; i < 50; i++) c.send(`m${i}`);
  assert.equal((await withTimeout(c.closed, 5000, 'rate-limit close')).code, 1008);
  await waitFor(() => wss.stats().closesPolicy === 1, 5000, 'closesPolicy');
  await closeServer(wss);

  const dropping = await startServer({ maxMessagesPerSec: 5, rateLimitPolicy: 'drop' });
  let received = 0;
  dropping.on('connection', (s) => s.on('message', () => { received++; }));
  const d = await connect(dropping);
  for (let i = 0; i < 50; i++) d.send(`m${i}`);
  await waitFor(() => dropping.stats().rateLimited > 0 && received + dropping.stats().rateLimited === 50, 5000, 'drops');
  assert.ok(received >= 5 && received < 50, `received ${received}`);
  assert.equal(d.readyState, WebSocket.OPEN);
  d.close();
  await closeServer(dropping);
});

test('maxConnectionsPerIp: one more connection from the same address gets 429', async () => {
  const wss = await startServer({ maxConnectionsPerIp: 2 });
  const a = await connect(wss); const b = await connect(wss);
  assert.equal((await upgradeOutcome(url(wss))).status, 429);
  a.close(); b.close();
  await closeServer(wss);
});

test('stats() counts handshakes, messages, bytes and closes; the last snapshot stays after close', async () => {
  const wss = await startServer({ allowedOrigins: ['https://ok.example'] });
  const s0 = wss.stats();
  // One key per field of struct wsembed_stats, in order (derived, so new counters appear).
  const fields = require('../lib/abi').structs.wsembed_stats.map(([name]) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase()));
  assert.deepEqual(Object.keys(s0), fields);
  for (const k of ['openConnections', 'handshakesAccepted', 'messagesIn', 'closesPolicy', 'droppedCommands', 'queuedBytes',
    'queuedCommandBytes']) assert.ok(fields.includes(k), k);
  for (const v of Object.values(s0)) assert.equal(v, 0);
  wss.on('connection', (s) => s.on('message', (d) => s.send(d)));
  const a = await connect(wss); const b = await connect(wss);
  assert.equal((await upgradeOutcome(url(wss), { headers: { Origin: 'https://bad.example' } })).status, 403);
  for (let i = 0; i < 3; i++) { a.send('hello'); await nextMessage(a); }
  b.send('x');
  await nextMessage(b);
  a.close(1000);
  await a.closed;
  await waitFor(() => wss.stats().closesClean === 1, 5000, 'clean close counted');
  const s = wss.stats();
  assert.equal(s.openConnections, 1);
  assert.equal(s.handshakesAccepted, 2);
  assert.equal(s.handshakesRejected, 1);
  assert.equal(s.messagesIn, 4);
  assert.equal(s.messagesOut, 4);
  assert.ok(s.bytesIn > 16 && s.bytesOut > 16, JSON.stringify(s));
  b.terminate();
  await b.closed;
  await closeServer(wss);
  const last = wss.stats();
  assert.equal(last.openConnections, 0);
  assert.equal(last.handshakesAccepted, 2);
  assert.ok(last.closesClean + last.closesDropped >= 2, JSON.stringify(last, (k, v) => (typeof v === 'bigint' ? String(v) : v)));
});
