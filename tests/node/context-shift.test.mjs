// The context policy from JavaScript: 'error' (default) refuses what does not fit, 'shift'
// drops old tokens and goes on, through Pipit and through the engine's OpenAI-style API.
// The logits after a shift are checked against a fresh prefill in the gtest suite
// (tests/native/model_positions_test.cpp), natively and in WASM.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { existing, goldenIds, libDir, storiesPath } from './helpers.mjs';

const { createEngine, Pipit, ContextOverflowError, InvalidArgumentError } = await import(
  pathToFileURL(path.join(libDir, 'index.js')).href
);

const modelFile = existing(storiesPath);
const SKIP = `model file missing: ${storiesPath} (set PIPIT_MODELS_DIR)`;
const CONTEXT = 16;
const LONG_PROMPT = 'Once upon a time there was a little girl who liked to play in the park with her dog';

describe('context shift', () => {
  let model = null;
  before(async () => {
    if (modelFile) model = await Pipit.load(modelFile, { contextLength: CONTEXT });
  });
  after(() => model?.dispose());

  test("'error' refuses a prompt that does not fit and ends generation at the full context", async (t) => {
    if (!model) return t.skip(SKIP);
    assert.ok(model.tokenize(LONG_PROMPT).length > CONTEXT);
    await assert.rejects(
      model.complete(LONG_PROMPT, { temperature: 0, contextShift: 'error' }),
      (e) => e instanceof ContextOverflowError && /holds 16 tokens/.test(e.message),
    );
    const r = await model.complete('', { temperature: 0, maxTokens: 64, ignoreEos: true });
    assert.equal(r.finishReason, 'context');
    assert.equal(r.ids.length, CONTEXT);
    assert.equal(r.timings.droppedTokens, 0);
  });

  test("'shift' generates past the context length", async (t) => {
    if (!model) return t.skip(SKIP);
    const r = await model.complete('', {
      temperature: 0, maxTokens: 60, ignoreEos: true, contextShift: 'shift', nKeep: 1,
    });
    assert.equal(r.finishReason, 'length');
    assert.equal(r.ids.length, 60);
    // BOS + 59 fed back into a context of 16: the first 16 fill it, and each shift (keep BOS,
    // drop half of the other 15) makes room for 7 of the remaining 44: 7 shifts.
    assert.equal(r.timings.droppedTokens, 7 * 7);
    // Until the first shift the context is the plain one: the documented greedy story.
    assert.deepEqual(r.ids.slice(0, CONTEXT), goldenIds().slice(0, CONTEXT));
    // A prompt longer than the context is read through shifts too.
    const long = await model.complete(LONG_PROMPT, {
      temperature: 0, maxTokens: 4, ignoreEos: true, contextShift: 'shift', nDiscard: 3,
    });
    assert.equal(long.ids.length, 4);
    assert.ok(long.timings.droppedTokens > 0);
  });

  test('bad policy options are InvalidArgumentErrors', async (t) => {
    if (!model) return t.skip(SKIP);
    await assert.rejects(model.complete('', { contextShift: 'drop' }), InvalidArgumentError);
    await assert.rejects(model.complete('', { contextShift: 'shift', nKeep: -2 }), InvalidArgumentError);
    await assert.rejects(
      model.complete('', { contextShift: 'shift', nKeep: CONTEXT }),
      (e) => e instanceof InvalidArgumentError && /keep must be from -1 to 15/.test(e.message),
    );
  });

  test('the engine takes context_shift / n_keep / n_discard like llama.cpp server', async (t) => {
    if (!model) return t.skip(SKIP);
    const engine = await createEngine({ model: modelFile, contextLength: CONTEXT, threads: 1 });
    try {
      const options = { temperature: 0, maxTokens: 40, ignoreEos: true, contextShift: 'shift', nKeep: 1, nDiscard: 5 };
      const expected = await model.complete('', options);
      const r = await engine.completions.create({
        prompt: '', max_tokens: 40, temperature: 0, ignore_eos: true,
        context_shift: 'shift', n_keep: 1, n_discard: 5,
      });
      assert.equal(r.choices[0].text, expected.text);
      assert.equal(r.usage.completion_tokens, 40);
      assert.equal(r.timings.droppedTokens, expected.timings.droppedTokens);
      await assert.rejects(
        engine.completions.create({ prompt: LONG_PROMPT, max_tokens: 4 }),
        ContextOverflowError,
      );
    } finally {
      engine.dispose();
    }
  });
});
