// GenerateOptions through the TypeScript layer's validation into the engine, on the real
// stories260K model: every call must either generate or fail with a PipitError subclass (never
// a TypeError, an Embind BindingError or a WASM trap), and the model must keep working.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, fuzzLoop, hostileValue, importPackage, modelsDir, randomText } from './support.mjs';

const { Pipit, PipitError } = await importPackage();
const model = await Pipit.load(path.join(modelsDir, 'stories260K', 'stories260K.gguf'), { contextLength: 64 });
const nVocab = model.info.nVocab;

const NAMES = [
  'maxTokens', 'temperature', 'topK', 'topP', 'minP', 'typicalP', 'repeatPenalty',
  'frequencyPenalty', 'presencePenalty', 'penaltyLastN', 'logitBias', 'stop', 'grammar',
  'responseFormat', 'seed', 'ignoreEos', 'addBos', 'parseSpecial', 'cachePrompt', 'topLogits',
  'logprobs', 'topLogprobs', 'signal',
];

function plausible(rng, name) {
  switch (name) {
    case 'maxTokens': return rng.int(0, 6);
    case 'temperature': return rng.pick([0, 0.1, 0.8, 1.5, 100]);
    case 'topK': return rng.int(0, nVocab + 1);
    case 'topP': case 'minP': case 'typicalP': return rng.next();
    case 'repeatPenalty': return rng.next() * 3;
    case 'frequencyPenalty': case 'presencePenalty': return (rng.next() - 0.5) * 4;
    case 'penaltyLastN': return rng.int(-1, 80);
    case 'logitBias': {
      const bias = {};
      for (let n = rng.int(0, 3); n > 0; n--) bias[rng.int(-2, nVocab + 2)] = rng.pick([-Infinity, -5, 0, 3, 100]);
      return rng.chance(0.5) ? bias : new Map(Object.entries(bias).map(([k, v]) => [Number(k), v]));
    }
    case 'stop': return rng.chance(0.5) ? randomText(rng, 3) : [randomText(rng, 2), randomText(rng, 2)];
    case 'grammar': return rng.pick(['root ::= [a-z ]+', 'root ::= "Once" | "Lily"', 'root ::= x', randomText(rng, 6)]);
    case 'responseFormat':
      return rng.pick([{ type: 'text' }, { type: 'json_object' },
        { type: 'json_schema', json_schema: { schema: { type: 'object', properties: { a: { type: 'integer' } } } } },
        { type: 'json_schema', json_schema: { schema: { type: rng.pick(['string', 'nope', 5]) } } },
        { type: 'json_schema', json_schema: {} }]);
    case 'seed': return rng.int(0, 2 ** 31);
    case 'topLogits': case 'topLogprobs': return rng.int(0, 5);
    case 'signal': return rng.chance(0.5) ? AbortSignal.abort() : new AbortController().signal;
    default: return rng.chance(0.5);
  }
}

function randomPrompt(rng) {
  if (rng.chance(0.7)) return randomText(rng, 8);
  const ids = [];
  for (let n = rng.int(0, 6); n > 0; n--) ids.push(rng.chance(0.9) ? rng.int(0, nVocab - 1) : hostileValue(rng));
  return rng.chance(0.8) ? ids : Int32Array.from(ids, (x) => (typeof x === 'number' && Number.isFinite(x) ? x : 0));
}

const outcomes = { generated: 0, refused: 0 };
await fuzzLoop('generate_options', async (rng) => {
  const options = {};
  for (const name of NAMES) {
    if (rng.chance(0.6)) continue;
    options[name] = rng.chance(0.92) ? plausible(rng, name) : hostileValue(rng);
  }
  if (typeof options.maxTokens !== 'number' || options.maxTokens > 16) options.maxTokens = rng.int(0, 6);
  const prompt = randomPrompt(rng);
  try {
    const result = await model.complete(prompt, options);
    assert.equal(typeof result.text, 'string');
    for (const id of result.ids) assert.ok(Number.isInteger(id) && id >= 0 && id < nVocab, `id ${id}`);
    outcomes.generated++;
  } catch (error) {
    outcomes.refused++;
    if (!(error instanceof PipitError) || error.message.length === 0) {
      throw new Error(`untyped error for prompt ${describe(prompt)} options ${describe(options)}: ` +
        `${error?.name}: ${error?.message}`, { cause: error });
    }
  }
});

process.stdout.write(`generate_options: ${outcomes.generated} generated, ${outcomes.refused} refused with a PipitError\n`);

// Whatever was refused along the way, the model still generates.
const after = await model.complete('Once upon a time', { maxTokens: 8, temperature: 0 });
assert.equal(after.ids.length, 8);
model.dispose();
