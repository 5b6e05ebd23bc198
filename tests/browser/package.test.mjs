// The npm package as a user gets it: `npm pack`, installed (offline) into a fresh temporary
// project, then used from a Node script and from a page built with Vite in headless Chromium,
// once cross-origin isolated (threaded engine) and once not (single-thread engine).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { existing, goldenIds, repoRoot, storiesPath } from '../node/helpers.mjs';
import { TYPES, launchChromium, skipReasonFor, startServer } from './harness.mjs';

const run = promisify(execFile);
const modelFile = existing(storiesPath);
const vite = await import('vite').catch(() => null);
const skipReason =
  skipReasonFor(modelFile, storiesPath) ?? (vite ? null : 'vite is not installed (npm install)');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const NODE_SCRIPT = `import { Pipit, createEngine, catalog } from 'pipit';
const model = await Pipit.load(process.argv[2]);
const r = await model.complete('', { temperature: 0, maxTokens: 12 });
model.dispose();
const engine = await createEngine({ model: process.argv[2] });
const c = await engine.chat.completions.create({
  messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, temperature: 0 });
engine.dispose();
console.log(JSON.stringify({ ids: r.ids, object: c.object, catalog: catalog.map((e) => e.id) }));
`;

const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>pipit + vite</title></head>
<body><script type="module" src="./main.js"></script></body></html>`;

const MAIN = `import { Pipit, createEngine, catalog } from 'pipit';
window.runPipit = async (url) => {
  const model = await Pipit.load(url, { cache: false });
  const r = await model.complete('', { temperature: 0, maxTokens: 12 });
  const threads = model.info.threads;
  model.dispose();
  const engine = await createEngine({ model: url, cache: false });
  const c = await engine.completions.create({ prompt: '', max_tokens: 12, temperature: 0 });
  engine.dispose();
  return { ids: r.ids, pageText: r.text, engineText: c.choices[0].text, threads,
    isolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency, catalog: catalog.length };
};
window.pipitReady = true;
`;

let work = '';
let project = '';
let server = null;
let base = '';
let browser = null;
const timings = {};

// page.evaluate has no time limit of its own: a page that never answers fails, not hangs.
function withTimeout(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function timed(label, f) {
  const start = Date.now();
  try {
    return await f();
  } finally {
    timings[label] = Date.now() - start;
  }
}

before(async () => {
  if (skipReason) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-package-'));
  project = path.join(work, 'app');
  fs.mkdirSync(project);
});

after(async () => {
  await browser?.close().catch(() => undefined);
  if (server) {
    server.closeAllConnections();
    server.close();
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
  if (Object.keys(timings).length) process.stdout.write(`# package test timings (ms): ${JSON.stringify(timings)}\n`);
});

test('npm pack gives a tarball with the engine, types and catalog', { skip: skipReason ?? false }, async () => {
  const { stdout } = await timed('pack', () =>
    run(npm, ['pack', '--json', '--pack-destination', work], { cwd: repoRoot }));
  const [info] = JSON.parse(stdout);
  const files = info.files.map((f) => f.path);
  for (const f of ['web/lib/index.js', 'web/lib/index.d.ts', 'web/lib/worker.js', 'web/lib/catalog.json',
    'web/lib/wasm/pipit.js', 'web/lib/wasm/pipit.wasm', 'web/lib/wasm/pipit-mt.js',
    'web/lib/wasm/pipit-mt.wasm', 'web/lib/wasm/pipit-mt.worker.js', 'web/lib/wasm/pipit-relaxed.js',
    'web/lib/wasm/pipit-relaxed.wasm', 'web/lib/wasm/pipit-mt-relaxed.js', 'web/lib/wasm/pipit-mt-relaxed.wasm',
    'web/lib/wasm/node/pipit-mt-relaxed.js', 'package.json', 'README.md']) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  assert.ok(!files.some((f) => f.endsWith('.gguf')), 'no model file is packed');

  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // --offline: nothing comes from the network. The package's own dependencies are packed from
  // the repository's node_modules and installed beside it (the npm cache of a machine that ran
  // `npm ci` holds their tarballs but not always the registry documents npm would consult).
  const { dependencies } = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const deps = [];
  for (const name of Object.keys(dependencies)) {
    const { stdout: packed } = await run(npm, ['pack', '--json', '--pack-destination', work, path.join(repoRoot, 'node_modules', name)], { cwd: repoRoot });
    deps.push(path.join(work, JSON.parse(packed)[0].filename));
  }
  await timed('install', () =>
    run(npm, ['install', '--offline', '--no-audit', '--no-fund', path.join(work, info.filename), ...deps], { cwd: project }));
  const installed = JSON.parse(fs.readFileSync(path.join(project, 'node_modules', 'pipit', 'package.json'), 'utf8'));
  assert.equal(installed.version, info.version);
});

test('the installed package runs from a Node script', { skip: skipReason ?? false }, async () => {
  fs.writeFileSync(path.join(project, 'node.mjs'), NODE_SCRIPT);
  const { stdout } = await timed('node', () =>
    run(process.execPath, ['node.mjs', modelFile], {
      cwd: project,
      env: { ...process.env, PIPIT_CACHE_DIR: path.join(work, 'cache') },
    }));
  const out = JSON.parse(stdout.trim().split('\n').pop());
  assert.deepEqual(out.ids, goldenIds().slice(0, 12));
  assert.equal(out.object, 'chat.completion');
  assert.ok(out.catalog.includes('smollm2-135m-instruct'));
});

test('a Vite build of a page using the package runs in Chromium, with and without threads', { skip: skipReason ?? false }, async () => {
  fs.writeFileSync(path.join(project, 'index.html'), PAGE);
  fs.writeFileSync(path.join(project, 'main.js'), MAIN);
  const dist = path.join(project, 'dist');
  await timed('vite', () =>
    vite.build({
      root: project,
      base: './',
      configFile: false,
      logLevel: 'error',
      // The engine's worker loads code on demand, which only ES-module workers can.
      worker: { format: 'es' },
      build: { outDir: dist, emptyOutDir: true },
    }));
  const emitted = fs.readdirSync(path.join(dist, 'assets'));
  // (The 2 KB pthread worker is inlined as a data: URL; the isolated page below runs it.)
  for (const pattern of [/^pipit-.*\.wasm$/, /^pipit-mt-.*\.wasm$/]) {
    assert.ok(emitted.some((f) => pattern.test(f)), `Vite emitted ${pattern}: ${emitted.join(' ')}`);
  }

  const model = fs.readFileSync(modelFile);
  ({ server, base } = await startServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const isolated = url.pathname.startsWith('/isolated/');
    const rel = url.pathname.replace(/^\/(isolated|plain)\//, '');
    const headers = isolated
      ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }
      : {};
    let body = null;
    let type = 'application/octet-stream';
    if (rel === 'model.gguf') body = model;
    else {
      const file = path.join(dist, rel === '' ? 'index.html' : rel);
      if (file.startsWith(dist + path.sep) && fs.existsSync(file) && fs.statSync(file).isFile()) {
        body = fs.readFileSync(file);
        type = TYPES[path.extname(file)] ?? type;
      }
    }
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, ...headers });
    res.end(body);
  }));

  browser = await timed('chromium', () => launchChromium());
  const golden = goldenIds().slice(0, 12);
  for (const mode of ['isolated', 'plain']) {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      const out = await timed(`page-${mode}`, async () => {
        await page.goto(`${base}/${mode}/`);
        await page.waitForFunction(() => window.pipitReady === true, null, { timeout: 20000 });
        return withTimeout(page.evaluate((url) => window.runPipit(url), `${base}/${mode}/model.gguf`),
          60_000, `the ${mode} page`);
      });
      assert.equal(out.isolated, mode === 'isolated');
      assert.deepEqual(out.ids, golden, mode);
      assert.equal(out.engineText, out.pageText, mode);
      assert.ok(out.catalog > 0);
      // Isolated: the threaded engine with a pthread per core; otherwise one thread.
      assert.equal(out.threads, mode === 'isolated' ? out.cores : 1, mode);
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  }
});
