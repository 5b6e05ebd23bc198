// The sampler chain, stop strings, logprobs, grammars and JSON response formats through the
// npm package (the WASM engine).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { existing, libDir, modelsDir, storiesPath } from './helpers.mjs';

const { Pipit, InvalidArgumentError } = await import(pathToFileURL(path.join(libDir, 'index.js')).href);

const synthPath = path.join(modelsDir, 'synthetic', 'synth-llama-Q8_0.gguf');
const SKIP = `model files missing under ${modelsDir} (set PIPIT_MODELS_DIR)`;

async function run(model, prompt, options) {
  const steps = [];
  const gen = model.generateTokens(prompt, options);
  for (;;) {
    const r = await gen.next();
    if (r.done) return { steps, result: r.value };
    steps.push(r.value);
  }
}

const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 10 },
    age: { type: 'integer' },
    pets: { type: 'array', items: { enum: ['cat', 'dog'] }, maxItems: 3 },
    alive: { type: 'boolean' },
  },
  required: ['name', 'pets'],
};

function validate(v) {
  assert.equal(typeof v, 'object');
  assert.ok(v !== null && !Array.isArray(v));
  assert.deepEqual(
    Object.keys(v).filter((k) => !(k in SCHEMA.properties)),
    [],
    'no additional properties',
  );
  assert.equal(typeof v.name, 'string');
  assert.ok([...v.name].length <= 10);
  if ('age' in v) assert.ok(Number.isInteger(v.age));
  assert.ok(Array.isArray(v.pets) && v.pets.length <= 3);
  for (const p of v.pets) assert.ok(p === 'cat' || p === 'dog');
  if ('alive' in v) assert.equal(typeof v.alive, 'boolean');
}

describe('constrained output through the package', () => {
  let synth = null;
  let stories = null;
  before(async () => {
    if (existing(synthPath)) synth = await Pipit.load(synthPath, { contextLength: 1024 });
    if (existing(storiesPath)) stories = await Pipit.load(storiesPath, { contextLength: 512 });
  });
  after(() => {
    synth?.dispose();
    stories?.dispose();
  });

  test('json_schema outputs parse and validate over many seeds', async (t) => {
    if (!synth) return t.skip(SKIP);
    for (let seed = 0; seed < 16; seed++) {
      const { result } = await run(synth, '', {
        seed, temperature: 1, topK: 0, topP: 1, maxTokens: 800,
        responseFormat: { type: 'json_schema', json_schema: { schema: SCHEMA } },
      });
      assert.equal(result.finishReason, 'stop', result.text);
      validate(JSON.parse(result.text));
      assert.ok(result.timings.grammarMs >= 0);
    }
  });

  test('a GBNF grammar constrains the text and ends generation', async (t) => {
    if (!stories) return t.skip(SKIP);
    const { result } = await run(stories, 'Once upon a time', {
      temperature: 0.9, seed: 3, maxTokens: 100,
      grammar: 'root ::= " " ("yes" | "no") ", " [a-z]{2,8} "."\n',
    });
    assert.match(result.text, /^ (yes|no), [a-z]{2,8}\.$/);
    assert.equal(result.finishReason, 'stop');
  });

  test('invalid grammars and schemas are InvalidArgumentErrors naming the place', async (t) => {
    if (!stories) return t.skip(SKIP);
    await assert.rejects(run(stories, 'x', { grammar: 'root ::= "a"\nb ::= [a-\n' }), (e) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.match(e.message, /line 2, column 7: unterminated character class/);
      return true;
    });
    await assert.rejects(
      run(stories, 'x', {
        responseFormat: {
          type: 'json_schema',
          json_schema: { schema: { type: 'object', properties: { a: { type: 'string', pattern: 'x' } } } },
        },
      }),
      (e) => e instanceof InvalidArgumentError && /\/properties\/a\/pattern/.test(e.message),
    );
    await assert.rejects(run(stories, 'x', { minP: 2 }), InvalidArgumentError);
    await assert.rejects(run(stories, 'x', { logitBias: { 99999: 1 } }), InvalidArgumentError);
    await assert.rejects(run(stories, 'x', { stop: [''] }), InvalidArgumentError);
  });
});

describe('sampling options through the package', () => {
  let model = null;
  before(async () => {
    if (existing(storiesPath)) model = await Pipit.load(storiesPath, { contextLength: 256 });
  });
  after(() => model?.dispose());

  test('stop strings end generation and are not shown', async (t) => {
    if (!model) return t.skip(SKIP);
    const full = (await run(model, '', { temperature: 0, maxTokens: 30 })).result.text;
    const at = full.indexOf('little');
    assert.ok(at > 0, full);
    const { result } = await run(model, '', { temperature: 0, maxTokens: 30, stop: ['ittl'] });
    assert.equal(result.text, full.slice(0, at + 1));
    assert.equal(result.finishReason, 'stop');
  });

  test('logprobs come in the OpenAI shape', async (t) => {
    if (!model) return t.skip(SKIP);
    const { steps } = await run(model, 'Once', { temperature: 0, maxTokens: 5, topLogprobs: 3 });
    for (const s of steps.filter((x) => x.token >= 0)) {
      const lp = s.logprobs;
      assert.equal(typeof lp.token, 'string');
      assert.ok(lp.logprob <= 0);
      assert.ok(Array.isArray(lp.bytes));
      assert.equal(lp.top_logprobs.length, 3);
      assert.deepEqual(lp.top_logprobs[0], { token: lp.token, logprob: lp.logprob, bytes: lp.bytes });
      assert.ok(lp.top_logprobs[1].logprob <= lp.top_logprobs[0].logprob);
    }
  });

  test('the same seed gives the same tokens; logit bias bans', async (t) => {
    if (!model) return t.skip(SKIP);
    const opts = { temperature: 1.5, topK: 0, topP: 1, minP: 0.01, repeatPenalty: 1.2,
      frequencyPenalty: 0.3, presencePenalty: 0.2, typicalP: 0.95, maxTokens: 24, seed: 77 };
    const a = (await run(model, 'Once', opts)).result.ids;
    const b = (await run(model, 'Once', opts)).result.ids;
    assert.deepEqual(a, b);
    const banned = a[0];
    const c = (await run(model, 'Once', { ...opts, logitBias: { [banned]: -Infinity } })).result.ids;
    assert.ok(!c.includes(banned));
  });
});
