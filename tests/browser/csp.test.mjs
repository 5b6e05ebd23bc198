// The package under a strict Content-Security-Policy: no 'unsafe-eval', no inline script
// other than the page's import map (allowed by its hash), WebAssembly through
// 'wasm-unsafe-eval', workers and fetches from the page's own origin only. A model loads and
// generates on the page, in a Web Worker (createEngine, with a chat template rendered by
// @huggingface/jinja), and with the threaded engine on a cross-origin isolated page; the
// browser must report no CSP violation anywhere.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { existing, goldenIds, repoRoot, storiesPath } from '../node/helpers.mjs';
import { TYPES, launchChromium, libFile, skipReasonFor, startServer } from './harness.mjs';

const modelFile = existing(storiesPath);
const jinjaFile = path.join(repoRoot, 'node_modules', '@huggingface', 'jinja', 'dist', 'index.js');
const skipReason = skipReasonFor(modelFile, storiesPath);

const IMPORT_MAP = '{ "imports": { "@huggingface/jinja": "/jinja/index.js" } }';
const IMPORT_MAP_HASH = createHash('sha256').update(IMPORT_MAP).digest('base64');
// What README.md documents, plus the import map's hash (a page without a bundler needs it).
export const CSP = [
  "default-src 'self'",
  `script-src 'self' 'wasm-unsafe-eval' 'sha256-${IMPORT_MAP_HASH}'`,
  "worker-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
].join('; ');

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>pipit under CSP</title>
<script type="importmap">${IMPORT_MAP}</script></head>
<body><script type="module" src="/app/main.js"></script></body></html>`;

// External, as the policy allows no inline module script. Violations are counted on the page.
const MAIN = `import * as pipit from '/lib/index.js';
window.violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.violations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || ''));
});
window.pipit = pipit;
window.pipitReady = true;
`;

let server = null;
let browser = null;
const consoleErrors = [];

function serve(req, res) {
  const url = new URL(req.url, 'http://x');
  const isolated = url.searchParams.has('isolated') || req.headers.referer?.includes('isolated');
  // A page whose policy forgot 'wasm-unsafe-eval': loading must say so, not report a crash.
  const noWasm = url.searchParams.has('no-wasm') || req.headers.referer?.includes('no-wasm');
  const send = (status, type, body) => {
    const headers = {
      'Content-Type': type,
      'Content-Length': body.length,
      'Cache-Control': 'no-store',
      'Content-Security-Policy': noWasm ? CSP.replace(" 'wasm-unsafe-eval'", '') : CSP,
    };
    if (isolated) {
      headers['Cross-Origin-Opener-Policy'] = 'same-origin';
      headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
    }
    res.writeHead(status, headers);
    res.end(body);
  };
  if (url.pathname === '/app/test.html') return send(200, TYPES['.html'], Buffer.from(PAGE));
  if (url.pathname === '/app/main.js') return send(200, TYPES['.js'], Buffer.from(MAIN));
  if (url.pathname === '/app/model.gguf') return send(200, 'application/octet-stream', fs.readFileSync(modelFile));
  if (url.pathname === '/jinja/index.js') return send(200, TYPES['.js'], fs.readFileSync(jinjaFile));
  const lib = libFile(url.pathname);
  if (lib) return send(200, lib.type, lib.body);
  return send(404, 'text/plain', Buffer.from('not found'));
}

async function openPage(query) {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  await page.goto(`${server.base}/app/test.html${query}`);
  await page.waitForFunction(() => window.pipitReady === true, null, { timeout: 20000 });
  return page;
}

before(async () => {
  if (skipReason) return;
  server = await startServer(serve);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close().catch(() => undefined);
  if (server) {
    server.server.closeAllConnections();
    await new Promise((r) => server.server.close(r));
  }
});

test('under the documented CSP the package generates on the page and in a worker', { skip: skipReason ?? false }, async () => {
  const page = await openPage('');
  const out = await page.evaluate(async () => {
    const { Pipit, createEngine } = window.pipit;
    const model = await Pipit.load('model.gguf');
    const local = await model.complete('', { maxTokens: 24, temperature: 0 });
    const chatText = await (async () => {
      let s = '';
      for await (const piece of model.chat([{ role: 'user', content: 'Hi' }], { maxTokens: 8, temperature: 0, chatTemplate: 'chatml' })) s += piece;
      return s;
    })();
    model.dispose();
    const engine = await createEngine({ model: 'model.gguf' });
    try {
      const reply = await engine.chat.completions.create({
        messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, temperature: 0, chatTemplate: 'chatml',
      });
      return { ids: local.ids, text: local.text, chatText, workerText: reply.choices[0].message.content, violations: window.violations };
    } finally {
      engine.dispose();
    }
  });
  const golden = goldenIds();
  if (golden) assert.deepEqual(out.ids, golden.slice(0, 24));
  assert.ok(out.text.trimStart().startsWith('Once upon a time'), out.text);
  assert.ok(out.chatText.length > 0);
  assert.equal(out.workerText, out.chatText);
  assert.deepEqual(out.violations, []);
  assert.deepEqual(consoleErrors.filter((m) => /Content Security Policy|EvalError|unsafe-eval/i.test(m)), []);
  await page.close();
});

test('under the documented CSP the threaded engine runs on an isolated page', { skip: skipReason ?? false }, async () => {
  const page = await openPage('?isolated=1');
  const out = await page.evaluate(async () => {
    const model = await window.pipit.Pipit.load('model.gguf', { threads: 2 });
    try {
      const r = await model.complete('', { maxTokens: 24, temperature: 0 });
      return { isolated: crossOriginIsolated, threads: model.info.threads, ids: r.ids, violations: window.violations };
    } finally {
      model.dispose();
    }
  });
  assert.equal(out.isolated, true);
  assert.equal(out.threads, 2);
  const golden = goldenIds();
  if (golden) assert.deepEqual(out.ids, golden.slice(0, 24));
  assert.deepEqual(out.violations, []);
  assert.deepEqual(consoleErrors.filter((m) => /Content Security Policy|EvalError|unsafe-eval/i.test(m)), []);
  await page.close();
});

test('a policy without wasm-unsafe-eval makes loading fail with a LoadError that says what to add', { skip: skipReason ?? false }, async () => {
  const page = await openPage('?no-wasm=1');
  const error = await page.evaluate(async () => {
    try {
      await window.pipit.Pipit.load('model.gguf');
      return null;
    } catch (e) {
      return { name: e.name, message: e.message };
    }
  });
  assert.equal(error?.name, 'LoadError');
  assert.match(error.message, /Content-Security-Policy does not allow WebAssembly: add 'wasm-unsafe-eval' to its script-src/);
  await page.close();
});
