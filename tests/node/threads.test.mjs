// Node runs the threaded engine (a CommonJS build for worker_threads): two threads must give
// exactly the tokens one thread gives, in this thread and in createEngine's worker.
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { existing, goldenIds, modelsDir, libDir, storiesPath } from './helpers.mjs';

const { Pipit, createEngine } = await import(pathToFileURL(path.join(libDir, 'index.js')).href);

// stories260K has the golden ids; the synthetic Q4_K_M file takes the K-quant and Q6_K
// kernels (and rows split unevenly between two threads) through the same check.
const stories = existing(storiesPath);
const kQuants = existing(path.join(modelsDir, 'synthetic', 'synth-llama-Q4_K_M.gguf'));
// Pipit caps threads at the cores there are.
const oneCore = os.availableParallelism() < 2 ? 'this machine has one core' : false;
const skipStories = oneCore || (stories ? false : `missing ${storiesPath}`);

async function greedyIds(model, prompt, maxTokens) {
  const ids = [];
  for await (const step of model.generateTokens(prompt, { maxTokens, temperature: 0, ignoreEos: true })) {
    if (step.token >= 0) ids.push(step.token);
  }
  return ids;
}

async function runWith(file, threads, prompt, maxTokens) {
  const model = await Pipit.load(file, { threads });
  try {
    const ids = await greedyIds(model, prompt, maxTokens);
    return { info: model.info, ids, text: model.detokenize(ids) };
  } finally {
    model.dispose();
  }
}

test('two threads in Node: the threaded engine, the golden ids of one thread', { skip: skipStories }, async () => {
  const one = await runWith(stories, 1, '', 64);
  const two = await runWith(stories, 2, '', 64);
  assert.equal(two.info.engine, 'pipit-mt');
  assert.equal(two.info.threads, 2);
  assert.equal(one.info.threads, 1);
  assert.deepEqual(two.ids, one.ids);
  const golden = goldenIds();
  if (golden) assert.deepEqual(two.ids, golden);
});

test('two threads give one thread\'s tokens on a K-quant model', { skip: oneCore || (kQuants ? false : 'missing synth-llama-Q4_K_M.gguf') }, async () => {
  const one = await runWith(kQuants, 1, 'The quick brown fox', 32);
  const two = await runWith(kQuants, 2, 'The quick brown fox', 32);
  assert.equal(two.info.threads, 2);
  assert.equal(one.ids.length, 32);
  assert.deepEqual(two.ids, one.ids);
});

test('createEngine in Node computes with two threads inside its worker', { skip: skipStories }, async () => {
  const engine = await createEngine({ model: stories, threads: 2 });
  try {
    const info = await engine.info();
    assert.equal(info.engine, 'pipit-mt');
    assert.equal(info.threads, 2);
    const prompt = 'Once upon a time';
    const r = await engine.completions.create({ prompt, max_tokens: 48, temperature: 0 });
    const local = await runWith(stories, 1, prompt, 48);
    assert.equal(r.usage.completion_tokens, 48);
    assert.equal(r.choices[0].text, local.text);
  } finally {
    engine.dispose();
  }
});

// Node 20 has relaxed SIMD behind a flag: with it, the package picks the relaxed threaded
// engine, whose integer dot products are exact, so the tokens are those of the SIMD128 one.
test('with relaxed SIMD Node runs pipit-mt-relaxed and gets the same tokens', { skip: skipStories || (kQuants ? false : 'missing synth-llama-Q4_K_M.gguf') }, async () => {
  const script = `
    const { Pipit } = await import(${JSON.stringify(pathToFileURL(path.join(libDir, 'index.js')).href)});
    const out = {};
    for (const [name, file, prompt, n] of ${JSON.stringify([['stories', stories, '', 64], ['kQuants', kQuants, 'The quick brown fox', 32]])}) {
      const model = await Pipit.load(file, { threads: 2 });
      const ids = [];
      for await (const s of model.generateTokens(prompt, { maxTokens: n, temperature: 0, ignoreEos: true })) ids.push(s.token);
      out[name] = { engine: model.info.engine, ids };
      model.dispose();
    }
    console.log(JSON.stringify(out));`;
  const { execFileSync } = await import('node:child_process');
  const stdout = execFileSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', script], { encoding: 'utf8' });
  const relaxed = JSON.parse(stdout.trim().split('\n').pop());
  assert.equal(relaxed.stories.engine, 'pipit-mt-relaxed');
  assert.deepEqual(relaxed.stories.ids, (await runWith(stories, 2, '', 64)).ids);
  assert.deepEqual(relaxed.kQuants.ids, (await runWith(kQuants, 2, 'The quick brown fox', 32)).ids);
});
