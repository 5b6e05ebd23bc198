// The sampler chain, stop strings, logprobs, grammars and JSON response formats through the
// npm package (the WASM engine).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { cliPath, existing, libDir, modelsDir, storiesPath } from './helpers.mjs';

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

  test('a stop string split across two tokens is found, and none of it is shown', async (t) => {
    if (!model) return t.skip(SKIP);
    const { steps, result: full } = await run(model, 'Once', { temperature: 0, maxTokens: 40 });
    // The end of one piece and the start of the next, both at least 2 characters long.
    const k = steps.findIndex((s, i) => i > 0 && s.text.length >= 2 && steps[i + 1]?.text.length >= 2);
    assert.ok(k > 0, 'no two neighbouring pieces of 2+ characters');
    const stop = steps[k].text.slice(-2) + steps[k + 1].text.slice(0, 2);
    const cut = full.text.indexOf(stop);
    const pieces = [];
    const gen = model.generate('Once', { temperature: 0, maxTokens: 40, stop: ['zzzz', stop] });
    let r = await gen.next();
    for (; !r.done; r = await gen.next()) pieces.push(r.value);
    assert.equal(r.value.finishReason, 'stop');
    assert.equal(r.value.text, full.text.slice(0, cut));
    assert.equal(pieces.join(''), r.value.text);
  });

  test('maxTokens ends with length; ignoreEos generates past the end-of-text token', async (t) => {
    if (!model) return t.skip(SKIP);
    const eos = model.info.eosId;
    // A bias that makes the end-of-text token the best choice at every step.
    const ending = { temperature: 0, maxTokens: 6, logitBias: { [eos]: 100 } };
    const ended = (await run(model, 'Once', ending)).result;
    assert.equal(ended.finishReason, 'stop');
    assert.deepEqual(ended.ids, []);
    const past = (await run(model, 'Once', { ...ending, ignoreEos: true })).result;
    assert.equal(past.finishReason, 'length');
    assert.deepEqual(past.ids, Array(6).fill(eos));
    const full = (await run(model, 'Once', { temperature: 0, maxTokens: 12 })).result;
    const short = (await run(model, 'Once', { temperature: 0, maxTokens: 5 })).result;
    assert.equal(short.finishReason, 'length');
    assert.deepEqual(short.ids, full.ids.slice(0, 5));
  });

  test('logprobs are collected in the result of complete, generate and chat', async (t) => {
    if (!model) return t.skip(SKIP);
    const options = { temperature: 0.9, seed: 5, maxTokens: 12, topLogprobs: 2 };
    const { steps, result } = await run(model, 'Once', options);
    assert.equal(result.logprobs.content.length, result.ids.length);
    assert.deepEqual(result.logprobs.content, steps.filter((s) => s.token >= 0).map((s) => s.logprobs));
    for (const lp of result.logprobs.content) {
      assert.equal(lp.top_logprobs.length, 2);
      assert.ok(lp.logprob <= lp.top_logprobs[0].logprob);
      assert.ok(lp.top_logprobs[1].logprob <= lp.top_logprobs[0].logprob);
    }
    // The tokens' bytes, in order, are the generated text.
    const bytes = result.logprobs.content.flatMap((lp) => lp.bytes);
    assert.equal(new TextDecoder().decode(new Uint8Array(bytes)), result.text);
    const again = await model.complete('Once', options);
    assert.deepEqual(again.logprobs, result.logprobs);
    const gen = model.generate('Once', { ...options, topLogprobs: 0, logprobs: true, stop: 'zzz' });
    let r = await gen.next();
    while (!r.done) r = await gen.next();
    assert.deepEqual(r.value.ids, result.ids);
    assert.deepEqual(r.value.logprobs.content.map((c) => c.logprob), result.logprobs.content.map((c) => c.logprob));
    assert.deepEqual(r.value.logprobs.content[0].top_logprobs, []);
    const chat = model.chat([{ role: 'user', content: 'Hi' }], { maxTokens: 6, temperature: 0, logprobs: true });
    for (r = await chat.next(); !r.done; r = await chat.next());
    assert.equal(r.value.logprobs.content.length, r.value.ids.length);
    assert.equal((await model.complete('Once', { maxTokens: 3 })).logprobs, undefined);
  });

  test('pipit generate takes several --stop texts and stops at the first to appear', async (t) => {
    if (!model) return t.skip(SKIP);
    const cli = (args) => new Promise((resolve) => {
      execFile(process.execPath, [cliPath, 'generate', '--model', storiesPath, '--prompt', 'Once upon a time',
        '-n', '30', '--temp', '0', ...args], (err, stdout, stderr) => resolve({ code: err?.code ?? 0, stdout, stderr }));
    });
    const full = (await run(model, 'Once upon a time', { temperature: 0, maxTokens: 30 })).result.text;
    const at = full.indexOf('girl');
    assert.ok(at > 0, full);
    const stopped = await cli(['--stop', 'not in the text', '--stop', 'girl', '--stop=named']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout, `${full.slice(0, at)}\n`); // the CLI ends its output with a newline
    assert.equal((await cli(['--stop', ''])).code, 2);
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
