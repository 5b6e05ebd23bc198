// Split GGUF sets (llama.cpp gguf-split's NAME-00001-of-00003.gguf): stories260K written as 3
// files by pipit-gguf loads from its first file's path or URL, or from its files as an array
// in any order, with the whole file's greedy ids and one progress over all the bytes; a missing
// file is a typed error naming it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { existing, goldenIds, libDir, repoRoot, storiesPath } from './helpers.mjs';
import { startServer } from '../browser/harness.mjs';

const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-split-cache-'));
process.env.PIPIT_CACHE_DIR = cacheDir;

const { Pipit, createEngine, FormatError, InvalidArgumentError, LoadError } = await import(
  pathToFileURL(path.join(libDir, 'index.js')).href
);

const GGUF_TOOL = existing(path.join(repoRoot, 'build', 'native', 'pipit-gguf'));
const modelFile = existing(storiesPath);
const SKIP = !modelFile
  ? `model file missing: ${storiesPath} (set PIPIT_MODELS_DIR)`
  : !GGUF_TOOL
    ? 'build/native/pipit-gguf is not built (node web/scripts/build.mjs --native)'
    : null;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-split-'));
const partName = (i) => `stories-0000${i}-of-00003.gguf`;
const partPaths = [1, 2, 3].map((i) => path.join(dir, partName(i)));
let partSizes = [];
let golden = [];
let goldenText = '';

async function greedyIds(model) {
  return (await model.complete('', { temperature: 0, maxTokens: 16 })).ids;
}

before(async () => {
  if (SKIP) return;
  const r = spawnSync(GGUF_TOOL, ['split', modelFile, '--parts', '3', '--out', path.join(dir, 'stories')], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`pipit-gguf split failed: ${r.stderr}`);
  partSizes = partPaths.map((p) => fs.statSync(p).size);
  const whole = await Pipit.load(modelFile);
  const result = await whole.complete('', { temperature: 0, maxTokens: 16 });
  golden = result.ids;
  goldenText = result.text;
  whole.dispose();
  assert.deepEqual(golden, goldenIds().slice(0, 16));
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(cacheDir, { recursive: true, force: true });
});

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

describe('split GGUF sets', () => {
  test('the first file path brings the others: same ids, one progress over all bytes', async (t) => {
    if (SKIP) return t.skip(SKIP);
    const progress = [];
    const model = await Pipit.load(partPaths[0], { onProgress: (p) => progress.push(p) });
    try {
      assert.deepEqual(await greedyIds(model), golden);
      assert.equal(model.info.fileBytes, sum(partSizes));
    } finally {
      model.dispose();
    }
    const total = sum(partSizes);
    assert.ok(progress.every((p) => p.total === total), JSON.stringify(progress));
    assert.deepEqual(progress.at(-1), { loaded: total, total });
    const loaded = progress.map((p) => p.loaded);
    assert.deepEqual(loaded, [...loaded].sort((a, b) => a - b), 'loaded never goes back');
  });

  test('files in an array, in any order (Files from a picker), load as one model', async (t) => {
    if (SKIP) return t.skip(SKIP);
    const files = [3, 1, 2].map((i) => new File([fs.readFileSync(partPaths[i - 1])], partName(i)));
    const model = await Pipit.load(files);
    try {
      assert.deepEqual(await greedyIds(model), golden);
    } finally {
      model.dispose();
    }
    // Without the third file, the engine names what is missing.
    await assert.rejects(Pipit.load(files.slice(1)), (e) => e instanceof FormatError && /part 3 of 3 is missing/.test(e.message));
  });

  test('a missing file, or a later file given alone, is a typed error naming it', async (t) => {
    if (SKIP) return t.skip(SKIP);
    const lonely = path.join(dir, 'lonely');
    fs.mkdirSync(lonely);
    fs.copyFileSync(partPaths[0], path.join(lonely, partName(1)));
    fs.copyFileSync(partPaths[1], path.join(lonely, partName(2)));
    await assert.rejects(
      Pipit.load(path.join(lonely, partName(1))),
      (e) => e instanceof LoadError && e.message.includes(partName(3)) && /file 3 of 3/.test(e.message),
    );
    await assert.rejects(
      Pipit.load(partPaths[1]),
      (e) => e instanceof InvalidArgumentError && e.message.includes(partName(1)),
    );
  });

  describe('through a local server', () => {
    let server = null;
    let base = '';
    const asked = [];
    before(async () => {
      if (SKIP) return;
      ({ server, base } = await startServer((req, res) => {
        asked.push(`${req.method} ${req.url}`);
        const file = path.join(dir, path.basename(req.url));
        if (!req.url.startsWith('/m/') || !fs.existsSync(file)) return res.writeHead(404).end();
        const bytes = fs.readFileSync(file);
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length });
        res.end(bytes);
      }));
    });
    after(() => {
      server?.closeAllConnections();
      server?.close();
    });

    test('the first file URL brings the others, each cached; a cached set loads with no network', async (t) => {
      if (SKIP) return t.skip(SKIP);
      const progress = [];
      const url = `${base}/m/${partName(1)}`;
      const model = await Pipit.load(url, { onProgress: (p) => progress.push(p) });
      try {
        assert.deepEqual(await greedyIds(model), golden);
      } finally {
        model.dispose();
      }
      const total = sum(partSizes);
      assert.deepEqual(progress.at(-1), { loaded: total, total });
      for (const i of [1, 2, 3]) assert.ok(asked.includes(`GET /m/${partName(i)}`), asked.join(', '));

      const real = globalThis.fetch;
      globalThis.fetch = async () => {
        throw new TypeError('network refused by the test');
      };
      let again;
      try {
        again = await Pipit.load(url);
      } finally {
        globalThis.fetch = real;
      }
      try {
        assert.deepEqual(await greedyIds(again), golden);
      } finally {
        again.dispose();
      }
    });

    test('createEngine takes the first file URL; a set missing a file on the server fails typed', async (t) => {
      if (SKIP) return t.skip(SKIP);
      const engine = await createEngine({ model: `${base}/m/${partName(1)}`, cache: false });
      try {
        assert.equal(engine.modelId, 'stories');
        const r = await engine.completions.create({ prompt: '', max_tokens: 16, temperature: 0 });
        assert.equal(r.choices[0].text, goldenText);
      } finally {
        await engine.dispose();
      }
      fs.copyFileSync(partPaths[0], path.join(dir, 'gone-00001-of-00002.gguf'));
      await assert.rejects(
        Pipit.load(`${base}/m/gone-00001-of-00002.gguf`, { cache: false }),
        (e) => e instanceof LoadError && /file 2 of 2/.test(e.message) && /HTTP 404/.test(e.message),
      );
    });
  });
});
