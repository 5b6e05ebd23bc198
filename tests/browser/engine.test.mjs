// createEngine in headless Chromium: the model runs in a module Web Worker, a chat completion
// streams into the page, and the page's own thread keeps running timers while it does.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { existing, repoRoot, storiesPath } from '../node/helpers.mjs';
import { TYPES, launchChromium, libFile, skipReasonFor, startServer, closeAll } from './harness.mjs';

const modelFile = existing(storiesPath);
const jinjaFile = path.join(repoRoot, 'node_modules', '@huggingface', 'jinja', 'dist', 'index.js');
const skipReason = skipReasonFor(modelFile, storiesPath);

// No bundler here, so an import map tells the page where the template engine is.
const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>pipit engine test</title>
<script type="importmap">{ "imports": { "@huggingface/jinja": "/jinja/index.js" } }</script></head>
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
const workerUrls = [];

function serve(req, res) {
  const url = new URL(req.url, 'http://x');
  const send = (status, type, body) => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-store' });
    res.end(body);
  };
  if (url.pathname === '/app/test.html') return send(200, TYPES['.html'], Buffer.from(PAGE));
  if (url.pathname === '/app/model.gguf') return send(200, 'application/octet-stream', fs.readFileSync(modelFile));
  if (url.pathname === '/jinja/index.js') return send(200, TYPES['.js'], fs.readFileSync(jinjaFile));
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
  page.on('worker', (w) => workerUrls.push(w.url()));
  await page.goto(`${base}/app/test.html`);
  await page.waitForFunction(() => window.pipitReady === true, null, { timeout: 20000 });
});

after(async () => {
  await closeAll({ page, browser, server });
});

test('a chat completion streams from a Web Worker while the page keeps ticking', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const out = await page.evaluate(async () => {
    const { createEngine, Pipit } = window.pipit;
    const progress = [];
    // A relative URL: it means the page's directory, not the worker's.
    const engine = await createEngine({ model: 'model.gguf', onProgress: (p) => progress.push(p) });
    try {
      const params = {
        messages: [{ role: 'user', content: 'Tell me a story.' }],
        max_tokens: 600,
        temperature: 0,
        ignore_eos: true,
        chatTemplate: 'chatml',
      };
      // The page's thread: a timer counter that only advances while nothing blocks it.
      let ticks = 0;
      let last = performance.now();
      let longestGap = 0;
      let running = true;
      const tick = () => {
        const now = performance.now();
        longestGap = Math.max(longestGap, now - last);
        last = now;
        ticks++;
        if (running) setTimeout(tick, 1);
      };
      const started = performance.now();
      setTimeout(tick, 1);
      const chunks = [];
      for await (const c of await engine.chat.completions.create({ ...params, stream: true })) chunks.push(c);
      const streamMs = performance.now() - started;
      running = false;
      const whole = await engine.chat.completions.create(params);
      // The page itself never fetched the WASM engine: the model ran in the worker.
      const wasmInPage = performance.getEntriesByType('resource').some((e) => e.name.endsWith('.wasm'));

      // The same request on this thread, for comparison: the timer cannot run meanwhile.
      const local = await Pipit.load('model.gguf');
      let localGap = 0;
      try {
        const t0 = performance.now();
        const gen = local.chat(params.messages, { maxTokens: 600, temperature: 0, ignoreEos: true, chatTemplate: 'chatml' });
        let localText = '';
        let prev = performance.now();
        for (;;) {
          const r = await gen.next();
          if (r.done) break;
          localText += r.value;
          localGap = Math.max(localGap, performance.now() - prev);
          prev = performance.now();
        }
        return {
          chunks, whole, ticks, longestGap, streamMs, localText, localMs: performance.now() - t0,
          progress: progress.at(-1),
          wasmInPage,
        };
      } finally {
        local.dispose();
      }
    } finally {
      engine.dispose();
    }
  });
  const text = out.chunks.map((c) => c.choices[0].delta.content ?? '').join('');
  assert.ok(out.chunks.length > 10, `chunks: ${out.chunks.length}`);
  assert.equal(out.chunks[0].object, 'chat.completion.chunk');
  assert.equal(out.chunks.at(-1).usage.completion_tokens, 600);
  assert.equal(out.chunks.at(-1).choices[0].finish_reason, 'length');
  assert.equal(text, out.whole.choices[0].message.content);
  assert.equal(text, out.localText);
  assert.equal(out.whole.model, 'model');
  const size = fs.statSync(modelFile).size;
  assert.deepEqual(out.progress, { loaded: size, total: size });
  // The page's thread ran its timer all along: many ticks, never a long stall.
  assert.ok(out.ticks >= 10, JSON.stringify({ ticks: out.ticks, ms: out.streamMs }));
  assert.ok(out.longestGap < 500, `longest gap between timer ticks: ${out.longestGap.toFixed(1)} ms`);
  t.diagnostic(
    `stream of 600 tokens: ${out.streamMs.toFixed(0)} ms, ${out.ticks} timer ticks, longest gap ` +
      `${out.longestGap.toFixed(1)} ms (in-thread run: ${out.localMs.toFixed(0)} ms)`,
  );
  // The engine was a module Web Worker of this page.
  assert.deepEqual(workerUrls, [`${base}/lib/worker.js`]);
  assert.equal(out.wasmInPage, false);
  assert.deepEqual(pageErrors, []);
});

test('inside the page: abort, typed errors from the worker, and a dead worker', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const out = await page.evaluate(async () => {
    const { createEngine, AbortError, InvalidArgumentError, FormatError, WorkerError } = window.pipit;
    const engine = await createEngine({ model: '/app/model.gguf' });
    const result = {};
    try {
      const controller = new AbortController();
      const stream = await engine.completions.create(
        { prompt: 'Once upon a time', max_tokens: 1500, ignore_eos: true, temperature: 0, stream: true },
        { signal: controller.signal },
      );
      let seen = 0;
      try {
        for await (const c of stream) {
          if (c.choices[0].text) seen++;
          if (seen === 2) controller.abort();
        }
      } catch (e) {
        result.aborted = e instanceof AbortError;
      }
      result.seen = seen;
      const after = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
      result.after = after.usage.completion_tokens;
      try {
        await engine.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], top_k: -3 });
      } catch (e) {
        result.invalid = e instanceof InvalidArgumentError && /topK/.test(e.message);
      }
    } finally {
      engine.dispose();
    }
    try {
      await createEngine({ model: new Blob([new Uint8Array(64)]) });
    } catch (e) {
      result.format = e instanceof FormatError;
    }
    // A worker of the caller's own making that dies before it can answer.
    try {
      const worker = new Worker('/lib/worker.js', { type: 'module' });
      const loading = createEngine({ model: '/app/model.gguf', worker });
      worker.dispatchEvent(new ErrorEvent('error', { message: 'simulated crash' }));
      await loading;
    } catch (e) {
      result.died = e instanceof WorkerError && /simulated crash/.test(e.message);
    }
    return result;
  });
  assert.deepEqual(out, { aborted: true, seen: 2, after: 8, invalid: true, format: true, died: true });
});
