'use strict';
// Two Chromium pages on two C chat servers (examples/c/build/chat_server) joined by Redis:
// a message typed on page A (server 1) appears on page B (server 2).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const { once } = require('events');
const { withTimeout } = require('./helpers');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const REPO = path.resolve(__dirname, '..', '..', '..');
const CHAT = path.join(REPO, 'examples', 'c', 'build', 'chat_server');
function which(cmd) {
  try { return execFileSync('sh', ['-c', `command -v ${cmd}`]).toString().trim() || null; } catch (_) { return null; }
}
const REDIS = which('redis-server');
const skip = !fs.existsSync(CHROMIUM) ? `${CHROMIUM} not found`
  : !fs.existsSync(CHAT) ? `${CHAT} not found: run \`cargo build --release && make -C examples/c\``
    : !REDIS ? 'redis-server not found: install it (apt-get install -y redis-server)' : false;
if (skip) console.log(`# SKIP browser+redis test: ${skip}`);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

// One inline Redis command; resolves with the raw reply text.
function redisCommand(port, command) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    sock.on('data', (d) => {
      buf += d;
      const m = /^\$(\d+)\r\n/.exec(buf);
      if (buf.startsWith('+') || buf.startsWith('-') || buf.startsWith(':')) { if (buf.includes('\r\n')) { sock.end(); resolve(buf); } }
      else if (m && buf.length >= m[0].length + Number(m[1])) { sock.end(); resolve(buf.slice(m[0].length)); }
    });
    sock.on('error', reject);
    sock.write(`${command}\r\n`);
  });
}

function spawnChat(redisPort) {
  return new Promise((resolve, reject) => {
    const child = spawn(CHAT, ['--port', '0', '--redis', `redis://127.0.0.1:${redisPort}`,
      '--static', path.join(REPO, 'examples', 'chat')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; let err = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`chat_server did not start: ${out} ${err}`)); }, 10000);
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, port: Number(m[1]) }); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`chat_server exited (${code}): ${out} ${err}`)); });
  });
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.removeAllListeners('exit');
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  try { await withTimeout(exited, 5000, 'exit'); } catch (_) { child.kill('SIGKILL'); }
}

test('two chromium pages on two C chat servers joined by Redis chat with each other', { skip, timeout: 90000 }, async () => {
  const { chromium } = require('playwright-core');
  const redisPort = await freePort();
  const redis = spawn(REDIS, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let s1 = null; let s2 = null; let browser = null;
  try {
    const pingOk = async () => { try { return (await redisCommand(redisPort, 'PING')).startsWith('+PONG'); } catch (_) { return false; } };
    const end = Date.now() + 10000;
    while (!(await pingOk())) {
      if (Date.now() > end) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    s1 = await spawnChat(redisPort);
    s2 = await spawnChat(redisPort);
    // Both bridges subscribed (a client with sub>0 or psub>0 each) before anyone chats.
    const subscribers = async () => (await redisCommand(redisPort, 'CLIENT LIST')).split('\n')
      .filter((l) => /\b(sub|psub)=[1-9]/.test(l)).length;
    const end2 = Date.now() + 10000;
    while ((await subscribers()) < 2) {
      if (Date.now() > end2) throw new Error('the chat servers did not subscribe to Redis');
      await new Promise((r) => setTimeout(r, 50));
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    const context = await browser.newContext();
    const [a, b] = [await context.newPage(), await context.newPage()];
    const pageErrors = [];
    for (const p of [a, b]) p.on('pageerror', (e) => pageErrors.push(e.message));
    await a.goto(`http://127.0.0.1:${s1.port}/`);
    await b.goto(`http://127.0.0.1:${s2.port}/`);
    for (const p of [a, b]) await p.waitForSelector('#status[data-state="connected"]', { timeout: 15000 });
    await a.fill('#name', 'anna');
    await a.fill('#input', 'hello across redis');
    await a.press('#input', 'Enter');
    const line = b.locator('#messages li', { hasText: 'hello across redis' });
    await line.waitFor({ timeout: 10000 });
    assert.equal(await line.locator('.author').textContent(), 'anna');
    await b.fill('#name', 'bert');
    await b.fill('#input', 'and back');
    await b.press('#input', 'Enter');
    await a.locator('#messages li', { hasText: 'and back' }).waitFor({ timeout: 10000 });
    assert.deepEqual(pageErrors, []);
  } finally {
    if (browser) await browser.close();
    await stop(s1 && s1.child);
    await stop(s2 && s2.child);
    await stop(redis);
  }
});
