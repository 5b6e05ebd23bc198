// The threaded engine in headless Chromium: a cross-origin isolated page (COOP/COEP) computes
// with two threads and gets the same golden ids as one thread; a plain page falls back to the
// single-thread engine. Chromium has relaxed SIMD, so both pages get the -relaxed builds; pages
// where WebAssembly.validate says no to it (as in a browser without it) get the SIMD128 ones,
// and the same ids.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { existing, goldenIds, libDir, storiesPath } from '../node/helpers.mjs';
import { launchChromium, libFile, skipReasonFor, startServer } from './harness.mjs';

const modelFile = existing(storiesPath);
const threadedEngine = path.join(libDir, 'wasm', 'pipit-mt.js');
const skipReason =
  skipReasonFor(modelFile, storiesPath) ??
  (!fs.existsSync(threadedEngine) ? `the threaded engine ${threadedEngine} is not built` : null);

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>threads</title></head>
<body><script>
  if (location.search === '?without-relaxed-simd') WebAssembly.validate = () => false;
</script><script type="module">
  import * as pipit from '/lib/index.js';
  window.pipit = pipit;
  window.pipitReady = true;
</script></body></html>`;

let server = null;
let browser = null;
let base = '';

// Pages under /isolated/ carry the headers that make a page cross-origin isolated.
function serve(req, res) {
  const url = new URL(req.url, 'http://x');
  const headers = { 'Cache-Control': 'no-store' };
  if (url.pathname.startsWith('/isolated/') || req.headers.referer?.includes('/isolated/')) {
    headers['Cross-Origin-Opener-Policy'] = 'same-origin';
    headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
  }
  const send = (status, type, body) => {
    res.writeHead(status, { ...headers, 'Content-Type': type, 'Content-Length': body.length });
    res.end(body);
  };
  if (url.pathname.endsWith('/test.html')) return send(200, 'text/html; charset=utf-8', Buffer.from(PAGE));
  if (url.pathname === '/model.gguf') return send(200, 'application/octet-stream', fs.readFileSync(modelFile));
  const lib = libFile(url.pathname);
  if (lib) return send(200, lib.type, lib.body);
  return send(404, 'text/plain', Buffer.from('not found'));
}

before(async () => {
  if (skipReason) return;
  ({ server, base } = await startServer(serve));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await new Promise((r) => (server ? server.close(r) : r()));
});

async function greedyIn(where, threads, query = '') {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/${where}/test.html${query}`);
    await page.waitForFunction(() => window.pipitReady === true, null, { timeout: 20000 });
    return await page.evaluate(async (threads) => {
      const model = await window.pipit.Pipit.load('/model.gguf', { threads });
      const ids = [];
      for await (const step of model.generateTokens('', { maxTokens: 64, temperature: 0 })) ids.push(step.token);
      const result = { isolated: crossOriginIsolated, threads: model.info.threads, engine: model.info.engine, ids };
      model.dispose();
      return result;
    }, threads);
  } finally {
    await page.close();
  }
}

test('an isolated page computes with two threads and gets the golden ids', { skip: skipReason ?? false }, async () => {
  const r = await greedyIn('isolated', 2);
  assert.equal(r.isolated, true);
  assert.equal(r.threads, 2);
  assert.equal(r.engine, 'pipit-mt-relaxed');
  assert.deepEqual(r.ids, goldenIds());
});

test('a plain page falls back to one thread', { skip: skipReason ?? false }, async () => {
  const r = await greedyIn('plain', 2);
  assert.equal(r.isolated, false);
  assert.equal(r.threads, 1);
  assert.equal(r.engine, 'pipit-relaxed');
  assert.deepEqual(r.ids, goldenIds());
});

test('without relaxed SIMD both pages get the SIMD128 engines and the golden ids', { skip: skipReason ?? false }, async () => {
  const isolated = await greedyIn('isolated', 2, '?without-relaxed-simd');
  assert.equal(isolated.engine, 'pipit-mt');
  assert.equal(isolated.threads, 2);
  assert.deepEqual(isolated.ids, goldenIds());
  const plain = await greedyIn('plain', 2, '?without-relaxed-simd');
  assert.equal(plain.engine, 'pipit');
  assert.deepEqual(plain.ids, goldenIds());
});
