// The built package in headless Chromium: stories260K loaded by URL gives the golden ids, and
// a typed error crosses into the page.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { GOLDEN_TEXT_START, existing, goldenIds, libDir, storiesPath } from '../node/helpers.mjs';
import { TYPES, launchChromium, libFile, skipReasonFor, startServer, closeAll } from './harness.mjs';

const modelFile = existing(storiesPath);
const skipReason = skipReasonFor(modelFile, storiesPath);

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>pipit test</title></head>
<body><script type="module">
  import * as pipit from '/lib/index.js';
  window.pipit = pipit;
  window.pipitReady = true;
</script></body></html>`;

let server = null;
let browser = null;
let page = null;
let base = '';
const pageErrors = [];

function serve(req, res) {
  const url = new URL(req.url, 'http://x');
  const send = (status, type, body) => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-store' });
    res.end(body);
  };
  if (url.pathname === '/test.html') return send(200, TYPES['.html'], Buffer.from(PAGE));
  if (url.pathname === '/model.gguf') return send(200, 'application/octet-stream', fs.readFileSync(modelFile));
  if (url.pathname === '/truncated.gguf') {
    return send(200, 'application/octet-stream', fs.readFileSync(modelFile).subarray(0, 5000));
  }
  const lib = libFile(url.pathname);
  if (lib) return send(200, lib.type, lib.body);
  return send(404, 'text/plain', Buffer.from('not found'));
}

before(async () => {
  if (skipReason) return;
  ({ server, base } = await startServer(serve));
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${base}/test.html`);
  await page.waitForFunction(() => window.pipitReady === true, null, { timeout: 20000 });
});

after(async () => {
  await closeAll({ page, browser, server });
});

test('greedy 64 tokens in Chromium give the golden ids', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const out = await page.evaluate(async (url) => {
    const events = [];
    const model = await window.pipit.Pipit.load(url, { onProgress: (p) => events.push(p) });
    try {
      const pieces = [];
      const gen = model.generate('', { temperature: 0, maxTokens: 64 });
      for (;;) {
        const r = await gen.next();
        if (r.done) return { result: r.value, pieces, last: events.at(-1), info: model.info };
        pieces.push(r.value);
      }
    } finally {
      model.dispose();
    }
  }, `${base}/model.gguf`);
  assert.deepEqual(out.result.ids, goldenIds());
  assert.deepEqual(out.result.promptIds, [1]);
  assert.equal(out.pieces.join(''), out.result.text);
  assert.ok(out.result.text.trimStart().startsWith(GOLDEN_TEXT_START), out.result.text);
  const size = fs.statSync(modelFile).size;
  assert.deepEqual(out.last, { loaded: size, total: size });
  assert.equal(out.info.nVocab, 512);
  assert.deepEqual(pageErrors, []);
});

test('a seed gives the same tokens and log-probabilities in Chromium as in Node', async (t) => {
  if (skipReason) return t.skip(skipReason);
  // Every sampler stage at once, so a platform difference in any of them would show.
  const options = {
    temperature: 1.3, topK: 0, topP: 0.97, minP: 0.02, typicalP: 0.95, repeatPenalty: 1.1,
    frequencyPenalty: 0.2, presencePenalty: 0.1, penaltyLastN: 16, maxTokens: 40, seed: 424242,
    ignoreEos: true, logprobs: true,
  };
  const { Pipit } = await import(pathToFileURL(path.join(libDir, 'index.js')).href);
  const local = await Pipit.load(modelFile);
  const inNode = await local.complete('Once upon a time', options);
  local.dispose();
  const inPage = await page.evaluate(async ({ url, options }) => {
    const model = await window.pipit.Pipit.load(url);
    try {
      return await model.complete('Once upon a time', options);
    } finally {
      model.dispose();
    }
  }, { url: `${base}/model.gguf`, options });
  assert.equal(inNode.ids.length, 40);
  assert.deepEqual(inPage.ids, inNode.ids);
  assert.equal(inPage.text, inNode.text);
  assert.deepEqual(inPage.logprobs, inNode.logprobs);
});

test('a truncated file is a FormatError inside the page', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const out = await page.evaluate(async (url) => {
    try {
      await window.pipit.Pipit.load(url);
      return { loaded: true };
    } catch (e) {
      return {
        name: e.name,
        kind: e.kind,
        message: e.message,
        isFormat: e instanceof window.pipit.FormatError,
        isPipit: e instanceof window.pipit.PipitError,
      };
    }
  }, `${base}/truncated.gguf`);
  assert.equal(out.loaded, undefined, 'the truncated file must not load');
  assert.equal(out.isFormat, true, JSON.stringify(out));
  assert.equal(out.isPipit, true);
  assert.equal(out.kind, 'Format');
  assert.match(out.message, /truncated/);
});

test('a missing URL is a LoadError inside the page', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const out = await page.evaluate(async (url) => {
    try {
      await window.pipit.Pipit.load(url);
      return null;
    } catch (e) {
      return { isLoad: e instanceof window.pipit.LoadError, message: e.message };
    }
  }, `${base}/absent.gguf`);
  assert.equal(out?.isLoad, true, JSON.stringify(out));
  assert.match(out.message, /404/);
});
