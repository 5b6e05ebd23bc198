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
