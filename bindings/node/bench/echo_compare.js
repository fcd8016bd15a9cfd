#!/usr/bin/env node
// Echo throughput: examples/echo_server.js (wsembed) vs the same server on npm `ws`, under the
// same load in one run. Each server runs in its own process; this process runs the load: several
// `ws` clients in closed loop (each sends one message and waits for its echo before the next).
//
//   node bench/echo_compare.js [--clients 8] [--seconds 5] [--size 64] [--binary] [--c]
//
// --c also measures the C examples/c/build/echo_server when it is built.
'use strict';
const path = require('path');
const fs = require('fs');
const { spawn } = require('child_process');
const WebSocket = require('ws');

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : def; };
const CLIENTS = opt('clients', 8);
const SECONDS = opt('seconds', 5);
const SIZE = opt('size', 64);
const BINARY = args.includes('--binary');
const WITH_C = args.includes('--c');
const ROOT = path.resolve(__dirname, '..');

function cpuTicks(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime (clock ticks, usually 100/s)
}

function startServer(cmd, argv) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`${cmd} exited with ${code}`)));
  });
}

async function load(port) {
  const payload = BINARY ? Buffer.alloc(SIZE, 0x61) : 'a'.repeat(SIZE);
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  })));
  // Warm up for 0.5 s, then count for SECONDS.
  let counting = false; let count = 0; let running = true;
  for (const ws of clients) {
    ws.on('message', () => { if (counting) count++; if (running) ws.send(payload); });
    ws.send(payload);
  }
  await new Promise((r) => setTimeout(r, 500));
  counting = true;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  counting = false; running = false;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await Promise.all(clients.map((ws) => new Promise((r) => { ws.on('close', r); ws.close(); })));
  return count / secs;
}

async function measure(name, cmd, argv) {
  const { child, port } = await startServer(cmd, argv);
  const cpu0 = cpuTicks(child.pid);
  const t0 = Date.now();
  const rate = await load(port);
  const cpuSecs = (cpuTicks(child.pid) - cpu0) / 100;
  const wall = (Date.now() - t0) / 1000;
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  console.log(`${name.padEnd(28)} ${Math.round(rate).toString().padStart(8)} msg/s   server CPU ${(100 * cpuSecs / wall).toFixed(0)}%`);
  return rate;
}

(async () => {
  console.log(`echo, ${CLIENTS} clients in closed loop, ${SIZE}-byte ${BINARY ? 'binary' : 'text'} messages, ${SECONDS} s each, node ${process.version}`);
  const results = {};
  results.wsembed = await measure('wsembed examples/echo_server.js', process.execPath, ['examples/echo_server.js']);
  results.ws = await measure('ws bench/ws_echo_server.js', process.execPath, ['bench/ws_echo_server.js']);
  const cEcho = path.resolve(ROOT, '..', '..', 'examples', 'c', 'build', 'echo_server');
  if (WITH_C && fs.existsSync(cEcho)) results.c = await measure('C examples/c echo_server', cEcho, []);
  console.log(`wsembed / ws: ${(results.wsembed / results.ws).toFixed(2)}x`);
})().catch((e) => { console.error(e); process.exit(1); });
