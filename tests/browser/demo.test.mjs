// The demo site in headless Chromium, built the way `npm run build:site -- --model` builds it
// (stories260K bundled) and served WITHOUT COOP/COEP headers, so that cross-origin isolation
// must come from the site's own service worker. Every host but the test server is refused at
// the resolver. Screenshots go to build/artifacts/ and must not be blank.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { existing, libDir, repoRoot, storiesPath } from '../node/helpers.mjs';
import { TYPES, launchChromium, skipReasonFor, startServer } from './harness.mjs';

const modelFile = existing(storiesPath);
const siteDir = path.join(repoRoot, 'build', 'test-site');
const artifacts = path.join(repoRoot, 'build', 'artifacts');
const skipReason =
  skipReasonFor(modelFile, storiesPath) ??
  (!fs.existsSync(path.join(libDir, 'wasm', 'pipit.js')) ? 'the WASM engine is not built (web/lib/wasm)' : null) ??
  (!fs.existsSync(path.join(repoRoot, 'node_modules', 'vite')) ? 'vite is not installed (npm ci)' : null);

const SITE_TYPES = { ...TYPES, '.css': 'text/css; charset=utf-8', '.json': 'application/json' };

let server = null;
let base = '';
let browser = null;
const sockets = new Set();

const DEMO_CSP =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; connect-src 'self'; " +
  "style-src 'self'; img-src 'self' data:";

function serve(req, res) {
  const pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  let file = pathname === '/model.gguf' ? modelFile : path.join(siteDir, pathname);
  if (pathname.endsWith('/')) file = path.join(file, 'index.html');
  if (!file.startsWith(siteDir + path.sep) && file !== modelFile) return res.writeHead(403).end();
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) return res.writeHead(404).end('not found');
  const body = fs.readFileSync(file);
  res.writeHead(200, {
    'Content-Type': SITE_TYPES[path.extname(file)] ?? 'application/octet-stream',
    'Content-Length': body.length,
    'Cache-Control': 'no-cache',
    // The demo runs under the policy the README documents (blob: for the pthread worker that
    // Vite inlines): it evaluates no code.
    'Content-Security-Policy': DEMO_CSP,
  });
  res.end(body);
}

before(async () => {
  if (skipReason) return;
  const started = Date.now();
  const { buildSite } = await import('../../web/scripts/build-site.mjs');
  // The page's types are checked by npm run build:site; the test needs only the bundle.
  await buildSite({ out: siteDir, model: modelFile, typecheck: false });
  console.log(`# site built in ${Date.now() - started} ms`);
  fs.mkdirSync(artifacts, { recursive: true });
  ({ server, base } = await startServer(serve));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // Nothing but the test server can be reached, from the page or its workers.
  browser = await launchChromium(['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1']);
});

after(async () => {
  await browser?.close();
  if (server?.listening) await new Promise((r) => server.close(r));
});

// A page of a fresh context, cross-origin isolated by the service worker (it reloads once).
async function isolatedPage(query = '', viewport = { width: 1280, height: 900 }) {
  const started = Date.now();
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (/Content Security Policy/.test(m.text())) errors.push(m.text());
  });
  await page.goto(`${base}/${query}`);
  await page.waitForFunction(() => window.crossOriginIsolated === true, null, { timeout: 20000 });
  console.log(`# isolated by the service worker after ${Date.now() - started} ms`);
  return { context, page, errors };
}

// Pixel variance of a PNG, decoded by the page itself: a blank screenshot has ~0.
async function variance(page, png) {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const canvas = new OffscreenCanvas(img.width, img.height);
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, img.width, img.height).data;
    let sum = 0;
    let sq = 0;
    const n = data.length / 4;
    for (let i = 0; i < data.length; i += 4) {
      const y = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
      sum += y;
      sq += y * y;
    }
    return sq / n - (sum / n) ** 2;
  }, png.toString('base64'));
}

async function screenshot(page, name, target = page) {
  const file = path.join(artifacts, `${name}.png`);
  const png = await (target === page ? page.screenshot({ path: file, fullPage: true }) : target.screenshot({ path: file }));
  const v = await variance(page, png);
  assert.ok(v > 50, `${name}.png looks blank (pixel variance ${v.toFixed(1)})`);
}

// Waits for an element's text to start with `prefix`; a timeout reports what the page showed.
async function waitForText(page, selector, prefix, timeout = 20000) {
  try {
    await page.waitForFunction(
      ([sel, p]) => document.querySelector(sel)?.textContent?.startsWith(p),
      [selector, prefix],
      { timeout },
    );
  } catch (e) {
    const shown = await page.evaluate(() => ({
      status: document.querySelector('#load-status')?.textContent,
      error: document.querySelector('#error')?.textContent,
      attention: document.querySelector('#attention-status')?.textContent,
    }));
    throw new Error(`${selector} never started with ${JSON.stringify(prefix)}: ${JSON.stringify(shown)}`, { cause: e });
  }
}

async function generate(page, prompt, maxTokens) {
  await page.check('input[name="mode"][value="complete"]');
  await page.fill('#temperature', '0');
  await page.fill('#max-tokens', String(maxTokens));
  await page.fill('#prompt', prompt);
  await page.click('#send');
  await page.waitForSelector('#stats dd[data-stat="Decode"]', { timeout: 30000 });
  return page.textContent('.bubble.assistant .text');
}

test('the demo loads stories260K, generates, and shows stats, tokens and attention', { skip: skipReason ?? false }, async () => {
  const { context, page, errors } = await isolatedPage('?model=/model.gguf');
  const t0 = Date.now();
  const mark = (what) => console.log(`# ${what} at ${Date.now() - t0} ms`);
  try {
    await waitForText(page, '#load-status', 'Loaded');
    assert.match(await page.textContent('#stats dd[data-stat="Threads"]'), /^\d+$/);
    assert.equal(await page.textContent('#stats dd[data-stat="Build"]'), 'threaded (pipit-mt-relaxed.wasm), relaxed SIMD');
    assert.equal(await page.isHidden('#isolation'), true, 'an isolated page shows no threads-off notice');
    // Long tasks on the page's main thread, observed from before the generation starts.
    await page.evaluate(() => {
      window.longTasks = [];
      new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration)))
        .observe({ type: 'longtask' });
    });
    mark('loaded');
    const text = await generate(page, 'Once upon a time', 48);
    mark('generated');
    assert.ok(text.startsWith(', there was a little girl named Lily.'), `greedy text: ${JSON.stringify(text)}`);
    const decode = await page.textContent('#stats dd[data-stat="Decode"]');
    assert.match(decode, /^47 tokens, [\d.]+ tokens\/s$/, 'the first token comes from the prefill');
    assert.ok(Number(/, ([\d.]+) tokens/.exec(decode)[1]) > 0);
    assert.match(await page.textContent('#stats dd[data-stat="Context"]'), /^\d+ of \d+ tokens$/);
    assert.match(await page.textContent('#stats dd[data-stat="Weights"]'), /F32 ×48; file 1.1 MB/);

    // Token view: one chip per token; greedy sampling always takes the top alternative.
    assert.equal(await page.locator('#token-chips .chip').count(), 48);
    await page.locator('#token-chips .chip').nth(3).focus();
    assert.match(await page.textContent('#token-detail p'), /rank 1 of/);
    assert.equal(await page.locator('#token-detail tbody tr').count(), 5);
    assert.equal(await page.locator('#token-detail tr.sampled').count(), 1);

    // Attention view: requested after the generation; mean over heads of layer 0 first.
    await waitForText(page, '#attention-status', 'Layer 0');
    const n = await page.locator('#attention-tokens .chip').count();
    assert.ok(n >= 48, `${n} context tokens`);
    await page.selectOption('#layer', String(4));
    await waitForText(page, '#attention-status', 'Layer 4');
    await page.selectOption('#head', '2');
    await page.locator('#attention-tokens .chip').nth(10).click();
    assert.match(await page.textContent('#attention-status'), /^Token 10 .* attends most to token \d+/);
    assert.equal(await page.locator('#attention-tokens .chip.query').count(), 1);
    // The heatmap's upper triangle is empty, its lower triangle is not.
    const triangle = await page.evaluate(() => {
      const c = document.querySelector('#heatmap');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const at = (x, y) => d[(Math.floor(y) * c.width + Math.floor(x)) * 4];
      return { upper: at(c.width * 0.9, c.height * 0.1), lower: at(c.width * 0.1, c.height * 0.9) };
    });
    assert.ok(triangle.upper > triangle.lower, JSON.stringify(triangle));

    mark('attention');
    const longest = Math.max(0, ...(await page.evaluate(() => window.longTasks)));
    console.log(`# longest main-thread task during generation: ${longest.toFixed(0)} ms`);
    assert.ok(longest <= 100, `the main thread was blocked for ${longest} ms`);

    await screenshot(page, 'demo-desktop');
    await screenshot(page, 'demo-tokens', page.locator('#tokens-panel'));
    await screenshot(page, 'demo-attention', page.locator('#attention-panel'));
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than a phone`);
    await screenshot(page, 'demo-phone');
    mark('screenshots');
    // The downloaded model is kept, listed with its size, and can be deleted.
    await page.click('#cache-details summary');
    assert.match(await page.textContent('#cache-list'), /model\.gguf \(1\.1 MB\)/);
    await page.click('#cache-list button');
    await page.waitForFunction(() => document.querySelector('#cache-list')?.textContent === 'None yet.');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('without isolation the page says threads are off and still generates', { skip: skipReason ?? false }, async () => {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  const page = await context.newPage();
  try {
    await page.goto(`${base}/?model=/model.gguf`);
    await waitForText(page, '#load-status', 'Loaded');
    assert.match(await page.textContent('#isolation'), /Threads are off: this page is not cross-origin isolated/);
    assert.equal(await page.textContent('#stats dd[data-stat="Threads"]'), '1 (not cross-origin isolated)');
    assert.equal(await page.textContent('#stats dd[data-stat="Build"]'), 'single thread (pipit-relaxed.wasm), relaxed SIMD');
    assert.ok((await generate(page, 'Once upon a time', 8)).length > 0);
    // Chat: the system prompt and message go through a chat template (ChatML for this model).
    await page.check('input[name="mode"][value="chat"]');
    await page.fill('#max-tokens', '8');
    await page.fill('#prompt', 'Hello');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelectorAll('.bubble').length === 2 && !document.querySelector('#send').disabled);
    assert.equal(await page.textContent('.bubble.user .text'), 'Hello');
    assert.equal(await page.textContent('#error'), '');
    assert.match(await page.textContent('#stats dd[data-stat="Prefill"]'), /^(\d+) tokens/);
    // Stop ends a long generation early and the page is ready for the next one.
    await page.check('input[name="mode"][value="complete"]');
    await page.fill('#prompt', 'Once upon a time');
    // As long as the page allows: stories260K writes 1000 tokens in a fraction of a second,
    // which a click from the test can lose the race against.
    await page.fill('#max-tokens', '4096');
    await page.click('#send');
    await page.waitForSelector('#token-chips .chip');
    await page.click('#stop');
    await page.waitForFunction(() => !document.querySelector('#send').disabled, null, { timeout: 10000 });
    const chips = await page.locator('#token-chips .chip').count();
    assert.ok(chips > 0 && chips < 4096, `${chips} tokens after stop`);
  } finally {
    await context.close();
  }
});

// Last: it stops the server.
test('the built site works offline: nothing but the test server, then not even that', { skip: skipReason ?? false }, async () => {
  const { context, page, errors } = await isolatedPage();
  try {
    // The service worker precached the site, the bundled model included.
    await page.waitForFunction(async () => (await caches.keys()).some((k) => k.startsWith('pipit-site-')), null, { timeout: 20000 });
    await page.waitForFunction(() => document.querySelector('#catalog option')?.textContent?.includes('bundled'));
    await new Promise((r) => {
      server.close(r);
      for (const s of sockets) s.destroy();
    });
    await page.reload();
    await page.waitForFunction(() => window.crossOriginIsolated === true, null, { timeout: 20000 });
    await page.waitForFunction(() => document.querySelector('#catalog option')?.textContent?.includes('bundled'));
    await page.click('#load-catalog');
    await waitForText(page, '#load-status', 'Loaded');
    const text = await generate(page, 'Once upon a time', 16);
    assert.ok(text.startsWith(', there was a little girl'), JSON.stringify(text));
    await waitForText(page, '#attention-status', 'Layer 0');
    await screenshot(page, 'site-offline');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});
