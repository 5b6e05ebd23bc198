// The model cache in headless Chromium: a model downloaded from a second local server is kept in
// Cache Storage and loads again, on the page and in an engine worker, after that server is gone.
// sha256 is checked with @noble/hashes here (WebCrypto cannot hash incrementally).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { existing, goldenIds, repoRoot, storiesPath } from '../node/helpers.mjs';
import { TYPES, launchChromium, libFile, skipReasonFor, startServer } from './harness.mjs';

const modelFile = existing(storiesPath);
const skipReason = skipReasonFor(modelFile, storiesPath);
const nodeModules = path.join(repoRoot, 'node_modules');

// No bundler here: an import map says where the package's dependencies are.
const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>pipit cache test</title>
<script type="importmap">{ "imports": {
  "@huggingface/jinja": "/deps/@huggingface/jinja/dist/index.js",
  "@noble/hashes/": "/deps/@noble/hashes/" } }</script></head>
<body><script type="module">
  import * as pipit from '/lib/index.js';
  window.pipit = pipit;
  window.pipitReady = true;
</script></body></html>`;

let app = null;
let modelHost = null;
let browser = null;
let page = null;
let modelUrl = '';
let modelRequests = 0;
const pageErrors = [];

function send(res, status, type, body, extra = {}) {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-store', ...extra });
  res.end(body);
}

function serveApp(req, res) {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/app/test.html') return send(res, 200, TYPES['.html'], Buffer.from(PAGE));
  if (url.pathname.startsWith('/deps/')) {
    const file = path.join(nodeModules, url.pathname.slice('/deps/'.length));
    if (file.startsWith(nodeModules + path.sep) && fs.existsSync(file) && fs.statSync(file).isFile()) {
      return send(res, 200, TYPES['.js'], fs.readFileSync(file));
    }
  }
  const lib = libFile(url.pathname);
  if (lib) return send(res, 200, lib.type, lib.body);
  return send(res, 404, 'text/plain', Buffer.from('not found'));
}

before(async () => {
  if (skipReason) return;
  app = await startServer(serveApp);
  const bytes = fs.readFileSync(modelFile);
  modelHost = await startServer((req, res) => {
    modelRequests += 1;
    send(res, 200, 'application/octet-stream', bytes, { 'Access-Control-Allow-Origin': '*' });
  });
  modelUrl = `${modelHost.base}/stories260K.gguf`;
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${app.base}/app/test.html`);
  await page.waitForFunction(() => window.pipitReady === true, null, { timeout: 20000 });
});

after(async () => {
  await page?.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  for (const s of [app, modelHost]) {
    s?.server.closeAllConnections();
    s?.server.close();
  }
});

function stopModelHost() {
  modelHost.server.closeAllConnections();
  return new Promise((r) => modelHost.server.close(r));
}

test('Cache Storage keeps a download; it loads again with its server stopped', { skip: skipReason ?? false }, async () => {
  const sha = crypto.createHash('sha256').update(fs.readFileSync(modelFile)).digest('hex');
  const golden = goldenIds().slice(0, 12);

  const first = await page.evaluate(async ({ url, sha }) => {
    const { Pipit, cache, IntegrityError } = window.pipit;
    await cache.clear();
    let mismatch = '';
    try {
      await Pipit.load(url, { sha256: 'ab'.repeat(32) });
    } catch (e) {
      mismatch = e instanceof IntegrityError ? 'IntegrityError' : `${e.name}: ${e.message}`;
    }
    const afterMismatch = (await cache.list()).length;
    const model = await Pipit.load(url, { sha256: sha });
    const r = await model.complete('', { temperature: 0, maxTokens: 12 });
    model.dispose();
    return { mismatch, afterMismatch, ids: r.ids, listed: await cache.list() };
  }, { url: modelUrl, sha });
  assert.equal(first.mismatch, 'IntegrityError');
  assert.equal(first.afterMismatch, 0, 'a download failing its sha256 is not cached');
  assert.deepEqual(first.ids, golden);
  assert.equal(first.listed.length, 1);
  assert.equal(first.listed[0].url, modelUrl);
  assert.equal(first.listed[0].size, fs.statSync(modelFile).size);
  assert.equal(modelRequests, 2);

  await stopModelHost();

  const second = await page.evaluate(async (url) => {
    const { Pipit, createEngine } = window.pipit;
    const model = await Pipit.load(url);
    const r = await model.complete('', { temperature: 0, maxTokens: 12 });
    model.dispose();
    // The engine's worker reads the same Cache Storage.
    const engine = await createEngine({ model: url });
    const c = await engine.completions.create({ prompt: '', max_tokens: 12, temperature: 0 });
    engine.dispose();
    return { ids: r.ids, engineText: c.choices[0].text, pageText: r.text };
  }, modelUrl);
  assert.deepEqual(second.ids, golden);
  assert.equal(second.engineText, second.pageText);
  assert.equal(modelRequests, 2, 'no request reached the model server');

  const cleared = await page.evaluate(async (url) => {
    const { Pipit, cache, LoadError } = window.pipit;
    const deleted = await cache.delete(url);
    let error = '';
    try {
      await Pipit.load(url);
    } catch (e) {
      error = e instanceof LoadError ? 'LoadError' : `${e.name}: ${e.message}`;
    }
    return { deleted, error, left: (await cache.list()).length };
  }, modelUrl);
  assert.deepEqual(cleared, { deleted: true, error: 'LoadError', left: 0 });
  assert.deepEqual(pageErrors, []);
});
