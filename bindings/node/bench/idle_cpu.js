#!/usr/bin/env node
// Idle CPU of examples/echo_server.js: utime+stime from /proc/PID/stat over N seconds, with
// a few idle clients connected.   node bench/idle_cpu.js [--seconds 10] [--clients 4]
'use strict';
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const WebSocket = require('ws');

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : def; };
const SECONDS = opt('seconds', 10);
const CLIENTS = opt('clients', 4);
const ticksPerSec = 100; // getconf CLK_TCK on Linux

const ticks = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(x[11]) + Number(x[12]);
};

const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'echo_server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
child.stdout.once('data', async (d) => {
  const port = Number(/:(\d+)/.exec(String(d))[1]);
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => new Promise((r) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    ws.on('open', () => r(ws));
  })));
  await new Promise((r) => setTimeout(r, 1000));
  const t0 = ticks(child.pid);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const used = (ticks(child.pid) - t0) / ticksPerSec;
  console.log(`idle echo_server.js (pid ${child.pid}, ${CLIENTS} idle clients): ${used.toFixed(2)} s CPU in ${SECONDS} s = ${(100 * used / SECONDS).toFixed(2)}%`);
  for (const ws of clients) ws.close();
  child.kill('SIGTERM');
});
