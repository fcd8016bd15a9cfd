#!/usr/bin/env node
// The compression scenario: a stream of ~200-byte JSON game-state messages broadcast to N
// subscribers (npm ws clients with perMessageDeflate on, as browsers offer it), against
// wsembed's C echo_server --broadcast with compression off/shared/dedicated and npm ws's own
// server with perMessageDeflate. Prints one markdown row per server: bytes on the wire per
// delivered message, server CPU per delivery, server RSS per connection.
//
//   node bench/compression.js [--clients 1000] [--messages 200]
//
// Needs `npm install` in bindings/node (for ws) and `make -C examples/c` (for echo_server).
'use strict';
const path = require('path');
const fs = require('fs');
const { spawn } = require('child_process');
const ROOT = path.resolve(__dirname, '..');
const WebSocket = require(path.join(ROOT, 'bindings/node/node_modules/ws'));

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const CLIENTS = arg('--clients', 1000);
const MESSAGES = arg('--messages', 200);

function statOf(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]); // utime + stime
  const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  return { cpuS: ticks / 100, rssKiB: rss };
}

function gameState(i) {
  return JSON.stringify({ tick: i, players: [1, 2, 3].map((p) => ({ id: p, x: 12.5 + p + i / 7, y: 40.25 - p, hp: 100 - p, state: 'running' })) });
}

function startServer(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (d) => {
      const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(String(d));
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`${cmd} exited ${code}`)));
  });
}

async function run(label, cmd, args) {
  const { child, port } = await startServer(cmd, args);
  const before = statOf(child.pid);
  const clients = [];
  let delivered = 0;
  let extensions = '';
  for (let i = 0; i < CLIENTS; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: true });
    ws.on('message', () => { delivered++; });
    await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
    extensions = String(ws.extensions || '').split(';')[0] + (String(ws.extensions || '').includes('server_no_context_takeover') ? ' (no takeover)' : '');
    clients.push(ws);
  }
  const connected = statOf(child.pid);
  const bytesBefore = clients.reduce((n, ws) => n + ws._socket.bytesRead, 0);
  const cpuBefore = statOf(child.pid).cpuS;
  const sender = clients[0];
  for (let i = 0; i < MESSAGES; i++) sender.send(gameState(i));
  const want = CLIENTS * MESSAGES;
  const deadline = Date.now() + 120000;
  while (delivered < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const after = statOf(child.pid);
  const bytes = clients.reduce((n, ws) => n + ws._socket.bytesRead, 0) - bytesBefore;
  for (const ws of clients) ws.terminate();
  child.kill('SIGTERM');
  const plain = Buffer.byteLength(gameState(MESSAGES / 2));
  return {
    label,
    extensions: extensions || 'none',
    plain,
    wire: bytes / delivered,
    cpuUs: ((after.cpuS - cpuBefore) * 1e6) / delivered,
    rssPerConn: ((connected.rssKiB - before.rssKiB) * 1024) / CLIENTS,
    delivered,
    want,
  };
}

(async () => {
  const echo = path.join(ROOT, 'examples/c/build/echo_server');
  const wsServer = `
    const { WebSocketServer } = require(${JSON.stringify(path.join(ROOT, 'bindings/node/node_modules/ws'))});
    const wss = new WebSocketServer({ port: 0, perMessageDeflate: true, clientTracking: true }, () =>
      console.log('listening on ws://127.0.0.1:' + wss.address().port));
    wss.on('connection', (ws) => ws.on('message', (d, bin) => { for (const c of wss.clients) c.send(d, { binary: bin }); }));`;
  const rows = [];
  rows.push(await run('wsembed C, compression off', echo, ['--port', '0', '--broadcast']));
  rows.push(await run('wsembed C, compression shared', echo, ['--port', '0', '--broadcast', '--deflate', 'shared']));
  rows.push(await run('wsembed C, compression dedicated', echo, ['--port', '0', '--broadcast', '--deflate', 'dedicated']));
  rows.push(await run('npm ws, perMessageDeflate', process.execPath, ['-e', wsServer]));
  const base = rows[0].cpuUs;
  console.log(`\n${CLIENTS} subscribers (npm ws clients, perMessageDeflate on), ${MESSAGES} JSON messages of ~${rows[0].plain} B broadcast\n`);
  console.log('| server | negotiated | wire bytes/msg | server CPU µs/delivery | ÷ off | idle RSS/conn | delivered |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.label} | ${r.extensions} | ${r.wire.toFixed(1)} | ${r.cpuUs.toFixed(3)} | ${(r.cpuUs / base).toFixed(2)}× | ${(r.rssPerConn / 1024).toFixed(2)} KiB | ${r.delivered}/${r.want} |`);
  }
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
