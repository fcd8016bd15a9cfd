'use strict';
const { once } = require('events');
const { spawn } = require('child_process');
const path = require('path');
const WebSocket = require('ws');
const { WebSocketServer } = require('..');

const PKG_DIR = path.resolve(__dirname, '..');

/** Starts a wsembed server on a free port and resolves once it is listening. */
async function startServer(options = {}) {
  const wss = new WebSocketServer({ port: 0, ...options });
  await once(wss, 'listening');
  return wss;
}

function url(wss, p = '/') {
  return `ws://127.0.0.1:${wss.address().port}${p}`;
}

/** An npm `ws` client that records what it receives. */
async function connect(wss, p = '/', protocols) {
  const ws = new WebSocket(url(wss, p), protocols);
  ws.received = [];
  ws.on('message', (data, isBinary) => ws.received.push({ data, isBinary }));
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('error', () => {}); // failures surface as close events / rejected waits
  await once(ws, 'open');
  return ws;
}

/** Resolves with the next message of a ws client not yet taken (text decoded). */
async function nextMessage(ws, timeoutMs = 5000) {
  ws.taken = ws.taken || 0;
  await waitFor(() => ws.received.length > ws.taken, timeoutMs, 'message');
  const { data, isBinary } = ws.received[ws.taken++];
  return { data: isBinary ? data : data.toString(), isBinary };
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms); }),
  ]);
}

async function waitFor(predicate, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Runs `node args...` in the package directory; resolves {code, signal, stdout, stderr, ms}. */
function runNode(args, { env = {}, timeoutMs = 15000, input } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, args, { cwd: PKG_DIR, env: { ...process.env, ...env } });
    let stdout = ''; let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

/** Spawns a long-running example and resolves once it printed its "listening on" line. */
function spawnExample(script, args = [], env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(PKG_DIR, 'examples', script), ...args],
      { cwd: PKG_DIR, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; let err = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${script} did not start: ${out} ${err}`)); }, 10000);
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, port: Number(m[1]), output: () => out, errors: () => err }); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${script} exited (${code}): ${out} ${err}`)); });
  });
}

/** Stops a spawned example with SIGTERM; resolves with its exit code. */
async function stopExample(child, timeoutMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  child.removeAllListeners('exit');
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = await withTimeout(exited, timeoutMs, 'example exit');
  return code;
}

module.exports = { startServer, connect, url, nextMessage, withTimeout, waitFor, runNode, spawnExample, stopExample, PKG_DIR };
