#!/usr/bin/env node
// Echo throughput with the Rust load generator of the repository (bench/loadgen), which leaves
// the server its own core: each server is pinned to CPU 1 and the loadgen to CPU 0 (taskset), as
// in bench/run.sh. Compares examples/echo_server.js (wsembed) with bench/ws_echo_server.js (npm
// `ws`) in one run.
//
//   node bench/loadgen_compare.js [--conns 50] [--depth 1] [--size 64] [--seconds 5] [--repeat 1]
//
// Needs <repo>/bench/target/release/loadgen (cargo build --release --manifest-path bench/loadgen/Cargo.toml)
// or LOADGEN=/path/to/loadgen.
'use strict';
const path = require('path');
const fs = require('fs');
const { spawn, spawnSync } = require('child_process');

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : def; };
const CONNS = opt('conns', 50);
const DEPTH = opt('depth', 1);
const SIZE = opt('size', 64);
const SECONDS = opt('seconds', 5);
const REPEAT = opt('repeat', 1);
const ROOT = path.resolve(__dirname, '..');
const LOADGEN = process.env.LOADGEN || path.resolve(ROOT, '..', '..', 'bench', 'target', 'release', 'loadgen');

if (!fs.existsSync(LOADGEN)) {
  console.error(`loadgen not found at ${LOADGEN}: build it with\n  cargo build --release --manifest-path bench/loadgen/Cargo.toml\n(at the repository root) or set LOADGEN=`);
  process.exit(2);
}
const pin = spawnSync('taskset', ['-c', '0', 'true']).status === 0 && require('os').cpus().length >= 2;
const pinned = (cpu, cmd, argv) => (pin ? ['taskset', ['-c', String(cpu), cmd, ...argv]] : [cmd, argv]);

function startServer(argv) {
  return new Promise((resolve, reject) => {
    const [cmd, a] = pinned(1, process.execPath, argv);
    const child = spawn(cmd, a, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`${argv[0]} exited with ${code}`)));
  });
}

function runLoadgen(port, pid, label) {
  return new Promise((resolve, reject) => {
    const [cmd, a] = pinned(0, LOADGEN, ['--mode', 'echo', '--port', String(port), '--conns', String(CONNS),
      '--depth', String(DEPTH), '--size', String(SIZE), '--duration', String(SECONDS), '--warmup', '1',
      '--server-pid', String(pid), '--label', label]);
    const child = spawn(cmd, a, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('exit', (code) => {
      try { resolve(JSON.parse(out.trim().split('\n').pop())); } catch (e) { reject(new Error(`loadgen exit ${code}: ${out}`)); }
    });
  });
}

async function measure(label, argv) {
  const { child, port } = await startServer(argv);
  try {
    return await runLoadgen(port, child.pid, label);
  } finally {
    child.removeAllListeners('exit');
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
  }
}

(async () => {
  console.log(`echo via bench/loadgen: ${CONNS} conns x depth ${DEPTH} x ${SIZE} B binary, ${SECONDS} s after 1 s warmup, ` +
    `${pin ? 'server on CPU 1, loadgen on CPU 0' : 'no CPU pinning'}, node ${process.version}`);
  const best = {};
  for (let r = 0; r < REPEAT; r++) {
    for (const [label, argv] of [['wsembed', ['examples/echo_server.js']], ['ws', ['bench/ws_echo_server.js']]]) {
      const res = await measure(label, argv);
      if (res.error) throw new Error(`${label}: ${res.error}`);
      console.log(`${label.padEnd(8)} ${Math.round(res.msgs_per_s).toString().padStart(8)} msg/s  p50 ${res.p50_us.toFixed(0)} us  ` +
        `p99 ${res.p99_us.toFixed(0)} us  server CPU ${res.server_cpu_us_per_msg.toFixed(2)} us/msg  loadgen CPU ${res.loadgen_cpu_pct.toFixed(0)}%`);
      if (!best[label] || res.msgs_per_s > best[label]) best[label] = res.msgs_per_s;
    }
  }
  console.log(`wsembed / ws: ${(best.wsembed / best.ws).toFixed(2)}x${REPEAT > 1 ? ` (best of ${REPEAT})` : ''}`);
})().catch((e) => { console.error(e); process.exit(1); });
