'use strict';
// A real browser (Debian's chromium, driven by playwright-core) against examples/chat_server.js.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { spawnExample, stopExample } = require('./helpers');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const OUT_DIR = path.resolve(__dirname, '..', 'test-output');
const skip = fs.existsSync(CHROMIUM) ? false
  : `${CHROMIUM} not found: install it with \`apt-get install -y chromium\` to run the browser test`;
if (skip) console.log(`# SKIP browser test: ${skip}`);

test('two chromium pages chat through examples/chat_server.js and reconnect after a restart', { skip, timeout: 90000 }, async () => {
  const { chromium } = require('playwright-core');
  fs.mkdirSync(OUT_DIR, { recursive: true });
  let server = await spawnExample('chat_server.js', ['--port', '0']);
  const { port } = server;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
    const [alice, bob] = [await context.newPage(), await context.newPage()];
    const pageErrors = [];
    for (const p of [alice, bob]) p.on('pageerror', (e) => pageErrors.push(e.message));
    const connected = (p) => p.waitForSelector('#status[data-state="connected"]', { timeout: 15000 });
    for (const p of [alice, bob]) {
      await p.goto(`http://127.0.0.1:${port}/`);
      await connected(p);
    }
    // The chat server turns compression on ('shared'); the page shows sock.extensions.
    for (const p of [alice, bob]) {
      await p.waitForFunction(() => document.getElementById('extensions').textContent.includes('permessage-deflate'),
        null, { timeout: 10000 });
      assert.match(await p.locator('#extensions').textContent(), /permessage-deflate/);
    }
    await alice.fill('#name', 'alice');
    await bob.fill('#name', 'bob');

    // A message typed in one page appears in the other.
    await alice.fill('#input', 'hello from alice');
    await alice.press('#input', 'Enter');
    const line = bob.locator('#messages li', { hasText: 'hello from alice' });
    await line.waitFor({ timeout: 10000 });
    assert.equal(await line.locator('.author').textContent(), 'alice');
    assert.equal(await line.locator('.text').textContent(), 'hello from alice');

    // HTML in a message shows as text, never as markup.
    const html = '<b id="injected">bold</b><img src=x onerror="window.pwned=1">';
    await bob.fill('#input', html);
    await bob.click('#send');
    for (const p of [alice, bob]) {
      const li = p.locator('#messages li .text', { hasText: '<b id="injected">' });
      await li.waitFor({ timeout: 10000 });
      assert.equal(await li.textContent(), html);
      assert.equal(await p.locator('#injected').count(), 0);
      assert.equal(await p.locator('#messages img').count(), 0);
      assert.equal(await p.evaluate(() => window.pwned), undefined);
    }

    // The server restarts on the same port: both pages notice and reconnect by themselves.
    assert.equal(await stopExample(server.child), 0);
    for (const p of [alice, bob]) await p.waitForSelector('#status[data-state="disconnected"]', { timeout: 10000 });
    server = await spawnExample('chat_server.js', ['--port', String(port)]);
    for (const p of [alice, bob]) await connected(p);
    await bob.fill('#input', 'back again');
    await bob.press('#input', 'Enter');
    await alice.locator('#messages li', { hasText: 'back again' }).waitFor({ timeout: 10000 });

    await alice.screenshot({ path: path.join(OUT_DIR, 'chat-alice.png') });
    await bob.screenshot({ path: path.join(OUT_DIR, 'chat-bob.png') });
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
    await stopExample(server.child);
  }
});
