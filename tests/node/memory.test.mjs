// A model and context that cannot fit in WASM memory fail at load with OutOfMemoryError, before
// anything large is allocated, with a message that says what was needed, what is free and what
// context would fit; the engine then loads and runs a small model as if nothing happened.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { existing, libDir, modelsDir, storiesPath, GOLDEN_TEXT_START } from './helpers.mjs';

const { Pipit, OutOfMemoryError } = await import(pathToFileURL(path.join(libDir, 'index.js')).href);

// 26 layers x 4 KV heads x 32 dims: 26.6 KB of keys and values per position.
const gemmaPath = path.join(modelsDir, 'synthetic', 'synth-gemma2-Q8_0.gguf');

test('a context too large for WASM memory fails with OutOfMemoryError, then a small model loads', {
  skip: !existing(gemmaPath) || !existing(storiesPath) ? `missing ${gemmaPath} or ${storiesPath}` : false,
}, async () => {
  const small = await Pipit.load(storiesPath, { contextLength: 64 });
  const heapBefore = small.wasmMemoryBytes;
  small.dispose();

  // 200k positions x 26.6 KB = 5.3 GB of KV cache: more than a 4 GB wasm32 heap can hold.
  const error = await Pipit.load(gemmaPath, { contextLength: 200_000 }).then(
    () => assert.fail('the 5 GB context loaded'),
    (e) => e,
  );
  assert.ok(error instanceof OutOfMemoryError, `${error?.name}: ${error?.message}`);
  // The keys and values alone are 5078.1 MB; attention's per-position scratch adds a few MB.
  const kvMb = Number(/a context of 200000 tokens \(KV cache and attention (\d+\.\d) MB/.exec(error.message)?.[1]);
  assert.ok(kvMb >= 5078 && kvMb < 5100, error.message);
  assert.match(error.message, /but only \d+\.\d MB of the \d+\.\d MB memory limit are free/);
  const fits = Number(/contextLength \((\d+) tokens fit now\)/.exec(error.message)?.[1]);
  assert.ok(fits > 100_000 && fits < 170_000, `advised context ${fits}`);

  // Refused before allocating: the heap grew by the 11 MB file copy at most, not gigabytes.
  const model = await Pipit.load(storiesPath, { contextLength: 64 });
  assert.ok(model.wasmMemoryBytes - heapBefore < 64 << 20,
    `heap grew from ${heapBefore} to ${model.wasmMemoryBytes} bytes`);
  const result = await model.complete('', { maxTokens: 12, temperature: 0 });
  // An empty prompt is BOS alone, so the text is a continuation with its leading space.
  assert.ok(GOLDEN_TEXT_START.startsWith(result.text.trimStart()), result.text);
  assert.ok(result.text.length > 20, result.text);
  model.dispose();
});
