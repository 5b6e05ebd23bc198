// Model loading in Node: hf:// names, catalog ids, the download cache (a cached model loads
// with the server gone and fetch refused) and the sha256 check.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { existing, goldenIds, libDir, storiesPath } from './helpers.mjs';
import { startServer } from '../browser/harness.mjs';

// Before the package runs: every cache write of this file goes to a directory of its own.
const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-loader-cache-'));
process.env.PIPIT_CACHE_DIR = cacheDir;

const pkg = await import(pathToFileURL(path.join(libDir, 'index.js')).href);
const { Pipit, cache, catalog, createEngine, resolveHfUrl, IntegrityError, InvalidArgumentError, LoadError } = pkg;

const modelFile = existing(storiesPath);
const SKIP = `model file missing: ${storiesPath} (set PIPIT_MODELS_DIR)`;
const modelBytes = modelFile ? fs.readFileSync(modelFile) : null;
const modelSha = modelBytes ? crypto.createHash('sha256').update(modelBytes).digest('hex') : '';
const WRONG_SHA = 'ab'.repeat(32);

async function greedyIds(model, n = 16) {
  const r = await model.complete('', { temperature: 0, maxTokens: n });
  return r.ids;
}

// fetch that fails the test if anything tries the network.
async function withFetchRefused(f) {
  const real = globalThis.fetch;
  const tried = [];
  globalThis.fetch = async (url) => {
    tried.push(String(url));
    throw new TypeError('network refused by the test');
  };
  try {
    return { value: await f(), tried };
  } finally {
    globalThis.fetch = real;
  }
}

after(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

describe('names', () => {
  test('hf:// becomes a Hugging Face resolve URL, with or without a revision', () => {
    assert.equal(
      resolveHfUrl('hf://HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q8_0.gguf'),
      'https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/resolve/main/smollm2-135m-instruct-q8_0.gguf',
    );
    assert.equal(
      resolveHfUrl('hf://ggml-org/models@9a1b2c/tinyllamas/stories260K.gguf'),
      'https://huggingface.co/ggml-org/models/resolve/9a1b2c/tinyllamas/stories260K.gguf',
    );
    assert.equal(resolveHfUrl('https://example.org/x.gguf'), 'https://example.org/x.gguf');
    assert.throws(() => resolveHfUrl('hf://only-owner/file.gguf'), InvalidArgumentError);
    assert.throws(() => resolveHfUrl('hf://o/r/../secret.gguf'), InvalidArgumentError);
  });

  test('the catalog lists real Hugging Face files with a sane shape', () => {
    const ids = catalog.map((e) => e.id);
    for (const id of ['smollm2-135m-instruct', 'smollm2-360m-instruct', 'qwen2.5-0.5b-instruct', 'tinyllama-1.1b-chat']) {
      assert.ok(ids.includes(id), `${id} is in the catalog`);
    }
    assert.equal(new Set(ids).size, ids.length, 'ids are unique');
    for (const e of catalog) {
      assert.match(e.url, /^https:\/\/huggingface\.co\/[^/]+\/[^/]+\/resolve\/main\/.+\.gguf$/);
      assert.ok(e.sha256 === null || /^[0-9a-f]{64}$/.test(e.sha256), `${e.id} sha256`);
      assert.ok(e.sizeBytes === null || Number.isSafeInteger(e.sizeBytes), `${e.id} sizeBytes`);
      assert.ok(e.license.length > 0 && e.quant.length > 0 && e.name.length > 0);
      assert.ok(Object.isFrozen(e));
    }
  });

  test('a catalog id loads from its URL (fetch answered locally)', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const entry = catalog.find((e) => e.id === 'stories260k');
    const real = globalThis.fetch;
    const asked = [];
    globalThis.fetch = async (url) => {
      asked.push(String(url));
      return new Response(modelBytes, { headers: { 'content-length': String(modelBytes.length) } });
    };
    let model;
    try {
      model = await Pipit.load('stories260k', { cache: false });
    } finally {
      globalThis.fetch = real;
    }
    try {
      assert.deepEqual(asked, [entry.url]);
      assert.deepEqual(await greedyIds(model), goldenIds().slice(0, 16));
    } finally {
      model.dispose();
    }
  });
});

describe('cache and sha256 through a local server', () => {
  let server = null;
  let base = '';
  let requests = 0;
  before(async () => {
    if (!modelFile) return;
    ({ server, base } = await startServer((req, res) => {
      requests += 1;
      if (req.url.startsWith('/model')) {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': modelBytes.length });
        res.end(modelBytes);
      } else {
        res.writeHead(404).end();
      }
    }));
  });
  after(() => {
    server?.closeAllConnections();
    server?.close();
  });

  test('a download is cached, and loads again with the server stopped and fetch refused', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const url = `${base}/model-a.gguf`;
    const progress = [];
    const first = await Pipit.load(url, { onProgress: (p) => progress.push(p) });
    const golden = await greedyIds(first);
    first.dispose();
    assert.deepEqual(golden, goldenIds().slice(0, 16));
    assert.deepEqual(progress.at(-1), { loaded: modelBytes.length, total: modelBytes.length });
    const listed = await cache.list();
    const entry = listed.find((e) => e.url === url);
    assert.ok(entry, `cache.list() has ${url}: ${JSON.stringify(listed)}`);
    assert.equal(entry.size, modelBytes.length);
    assert.ok(Math.abs(entry.storedAt - Date.now()) < 60_000);

    const before = requests;
    const { value: again, tried } = await withFetchRefused(() => Pipit.load(url));
    try {
      assert.deepEqual(tried, [], 'no fetch for a cached model');
      assert.equal(requests, before);
      assert.deepEqual(await greedyIds(again), golden);
    } finally {
      again.dispose();
    }

    assert.equal(await cache.delete(url), true);
    assert.equal(await cache.delete(url), false);
    assert.ok(!(await cache.list()).some((e) => e.url === url));
    await assert.rejects(withFetchRefused(() => Pipit.load(url)), LoadError);
  });

  test('cache: false neither stores nor reads the cache', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const url = `${base}/model-nocache.gguf`;
    (await Pipit.load(url, { cache: false })).dispose();
    assert.ok(!(await cache.list()).some((e) => e.url === url));
    (await Pipit.load(url)).dispose();
    const before = requests;
    await assert.rejects(withFetchRefused(() => Pipit.load(url, { cache: false })), LoadError);
    assert.equal(requests, before);
  });

  test('sha256: the right hash loads, a wrong one throws IntegrityError and caches nothing', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const url = `${base}/model-sha.gguf`;
    await assert.rejects(Pipit.load(url, { sha256: WRONG_SHA }), (e) => {
      assert.ok(e instanceof IntegrityError, String(e));
      assert.match(e.message, new RegExp(`SHA-256 ${modelSha}, but ${WRONG_SHA} was expected`));
      return true;
    });
    assert.ok(!(await cache.list()).some((e) => e.url === url), 'a mismatching download is not cached');
    const model = await Pipit.load(url, { sha256: modelSha.toUpperCase() });
    model.dispose();
    await assert.rejects(Pipit.load(modelFile, { sha256: 'xyz' }), InvalidArgumentError);
    (await Pipit.load(modelFile, { sha256: modelSha })).dispose();
    await assert.rejects(Pipit.load(modelBytes, { sha256: WRONG_SHA }), IntegrityError);
  });

  test('a corrupted cached copy fails its sha256 and is removed', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const url = `${base}/model-corrupt.gguf`;
    (await Pipit.load(url)).dispose();
    const file = fs.readdirSync(cacheDir).filter((n) => n.endsWith('.gguf'))
      .map((n) => path.join(cacheDir, n))
      .find((f) => JSON.parse(fs.readFileSync(f.replace(/\.gguf$/, '.json'), 'utf8')).url === url);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(file, bytes);
    await assert.rejects(Pipit.load(url, { sha256: modelSha }), IntegrityError);
    assert.ok(!(await cache.list()).some((e) => e.url === url));
    (await Pipit.load(url, { sha256: modelSha })).dispose();
  });

  test('an engine worker uses the same cache and reports IntegrityError', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const url = `${base}/model-engine.gguf`;
    const engine = await createEngine({ model: url });
    try {
      const before = requests;
      await engine.load(url);
      assert.equal(requests, before, 'the second load came from the cache');
      const r = await engine.completions.create({ prompt: '', max_tokens: 8, temperature: 0 });
      assert.ok(r.choices[0].text.length > 0);
      await assert.rejects(engine.load(url, { sha256: WRONG_SHA }), IntegrityError);
    } finally {
      engine.dispose();
    }
  });

  test('cache.clear() empties the cache and leaves foreign files alone', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const foreign = path.join(cacheDir, 'notes.txt');
    fs.writeFileSync(foreign, 'not pipit');
    (await Pipit.load(`${base}/model-clear.gguf`)).dispose();
    assert.ok((await cache.list()).length > 0);
    await cache.clear();
    assert.deepEqual(await cache.list(), []);
    assert.deepEqual(fs.readdirSync(cacheDir), ['notes.txt']);
  });
});

describe('bytes to an engine', () => {
  test('a whole ArrayBuffer is transferred to the worker, a partial view is copied', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const whole = new Uint8Array(modelBytes).buffer;
    const engine = await createEngine({ model: whole });
    try {
      assert.equal(whole.byteLength, 0, 'the caller\'s buffer was detached by the transfer');
      const padded = new Uint8Array(modelBytes.length + 16);
      padded.set(modelBytes, 16);
      const view = padded.subarray(16);
      await engine.load(view);
      assert.equal(padded.byteLength, modelBytes.length + 16, 'a view of part of a buffer stays');
      const r = await engine.completions.create({ prompt: '', max_tokens: 8, temperature: 0 });
      assert.ok(r.choices[0].text.startsWith(' Once upon a time'), r.choices[0].text);
    } finally {
      engine.dispose();
    }
  });
});
