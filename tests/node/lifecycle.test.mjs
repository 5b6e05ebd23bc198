// Lifecycles and errors at the package's edge: repeated load/unload must not leak, aborts stop
// within one token and leave a working model, a crashed worker becomes a typed error, and every
// bad input reaches JavaScript as a typed Error with a message that says what to do.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { existing, libDir, modelsDir, storiesPath } from './helpers.mjs';

const indexUrl = pathToFileURL(path.join(libDir, 'index.js'));
const {
  AbortError,
  ContextOverflowError,
  FormatError,
  InvalidArgumentError,
  Pipit,
  PipitTokenizer,
  UnsupportedError,
  WorkerError,
  createEngine,
} = await import(indexUrl.href);

const storiesFile = existing(storiesPath);
// 13 MB of f32 weights: a model leaked per cycle would show at once.
const bigPath = path.join(modelsDir, 'synthetic', 'synth-llama-F32.gguf');
const bigFile = existing(bigPath);
const dbrxPath = path.join(modelsDir, 'vocab', 'extra-pr-branches', 'ggml-vocab-dbrx.gguf');
const SKIP = `model files missing under ${modelsDir} (set PIPIT_MODELS_DIR)`;
const CYCLES = 50;
const MB = 1024 * 1024;

async function drain(gen) {
  const steps = [];
  for (;;) {
    const r = await gen.next();
    if (r.done) return { steps, result: r.value };
    steps.push(r.value);
  }
}

describe('load/unload cycles', () => {
  test(`${CYCLES} Pipit.load + dispose cycles keep WASM memory and RSS flat`, async (t) => {
    if (!bigFile) return t.skip(SKIP);
    const bytes = new Uint8Array(fs.readFileSync(bigFile));
    let wasmAfterWarmup = 0;
    let rssAfterWarmup = 0;
    let last = null;
    for (let i = 0; i < CYCLES; i++) {
      const model = await Pipit.load(bytes, { contextLength: 64 });
      const r = await model.complete('', { temperature: 0, maxTokens: 2, ignoreEos: true });
      if (last !== null) assert.deepEqual(r.ids, last, `cycle ${i} generated other tokens`);
      last = r.ids;
      if (i === 4) {
        wasmAfterWarmup = model.wasmMemoryBytes;
        rssAfterWarmup = process.memoryUsage().rss;
      }
      if (i === CYCLES - 1) {
        // The heap never shrinks, so with nothing leaked it stops growing once the first
        // cycles have sized it; one file's worth of slack allows for fragmentation, while a
        // leak of even 1/45 of the model per cycle would exceed it.
        assert.ok(
          model.wasmMemoryBytes <= wasmAfterWarmup + bytes.length,
          `WASM memory grew from ${wasmAfterWarmup} to ${model.wasmMemoryBytes} bytes`,
        );
      }
      model.dispose();
    }
    // RSS also counts V8's own heap and the copies of the file made while loading; 64 MB is a
    // fifth of what leaking the model in every cycle would add (45 x 13 MB).
    const grown = process.memoryUsage().rss - rssAfterWarmup;
    assert.ok(grown < 64 * MB, `RSS grew by ${(grown / MB).toFixed(1)} MB over ${CYCLES - 5} cycles`);
  });

  test(`${CYCLES} engine load + unload cycles, and new engines after disposed ones, keep RSS flat`, async (t) => {
    if (!bigFile) return t.skip(SKIP);
    const engine = await createEngine({ model: bigFile, contextLength: 64 });
    try {
      const expected = await engine.completions.create({ prompt: '', max_tokens: 2, temperature: 0, ignore_eos: true });
      let rssAfterWarmup = 0;
      for (let i = 0; i < CYCLES; i++) {
        await engine.unload();
        await assert.rejects(engine.tokenize('x'), (e) => e.kind === 'Disposed' && /engine.load/.test(e.message));
        await engine.load(bigFile, { contextLength: 64 });
        if (i === 4) rssAfterWarmup = process.memoryUsage().rss;
      }
      const again = await engine.completions.create({ prompt: '', max_tokens: 2, temperature: 0, ignore_eos: true });
      assert.equal(again.choices[0].text, expected.choices[0].text);
      // The worker shares this process: its WASM heap is part of RSS. Same bound and reason
      // as above.
      const grown = process.memoryUsage().rss - rssAfterWarmup;
      assert.ok(grown < 64 * MB, `RSS grew by ${(grown / MB).toFixed(1)} MB over ${CYCLES - 5} cycles`);
    } finally {
      engine.dispose();
    }
    // Engines made and disposed one after another: each worker and its heap must go.
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 5; i++) {
      const e = await createEngine({ model: bigFile, contextLength: 64 });
      assert.equal((await e.info()).nLayer > 0, true);
      e.dispose();
    }
    const grown = process.memoryUsage().rss - rssBefore;
    assert.ok(grown < 64 * MB, `RSS grew by ${(grown / MB).toFixed(1)} MB over 5 engines`);
  });
});

describe('aborts', () => {
  test('an abort during decoding stops within one token; the next generation is right', async (t) => {
    if (!storiesFile) return t.skip(SKIP);
    const model = await Pipit.load(storiesFile, { contextLength: 256 });
    try {
      const expected = await model.complete('One day', { temperature: 0, maxTokens: 12 });
      const controller = new AbortController();
      const gen = model.generateTokens('Once upon a time', {
        temperature: 0, maxTokens: 200, ignoreEos: true, signal: controller.signal,
      });
      let seen = 0;
      await assert.rejects(
        (async () => {
          for (let r = await gen.next(); !r.done; r = await gen.next()) {
            if (++seen === 3) controller.abort(new Error('user pressed stop'));
          }
        })(),
        (e) => e instanceof AbortError && /generation aborted: user pressed stop/.test(e.message),
      );
      // Three tokens were handed out, three were evaluated: nothing ran past the abort.
      assert.equal(model.lastGeneration.timings.decodeTokens, 3);
      const again = await model.complete('One day', { temperature: 0, maxTokens: 12 });
      assert.deepEqual(again.ids, expected.ids);
    } finally {
      model.dispose();
    }
  });

  test('an abort during a long prefill stops between slices; sliced prefills compute the same', async (t) => {
    if (!storiesFile) return t.skip(SKIP);
    const model = await Pipit.load(storiesFile, { contextLength: 2048 });
    try {
      const prompt = 'Once upon a time there was a little dog. '.repeat(60);
      const n = model.tokenize(prompt).length;
      assert.ok(n > 2 * 256, `${n} prompt tokens: three slices at least`);
      // Without a signal nothing could stop it: one call into WASM.
      const whole = await model.complete(prompt, { temperature: 0, maxTokens: 8 });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 0); // fires at the first pause between slices
      await assert.rejects(
        model.complete(prompt, { temperature: 0, maxTokens: 8, signal: controller.signal }),
        AbortError,
      );
      const stopped = model.lastGeneration.timings;
      assert.ok(stopped.prefillTokens < n, `stopped after ${stopped.prefillTokens} of ${n} tokens`);
      assert.equal(stopped.prefillTokens % 256, 0);
      const signal = new AbortController().signal;
      const sliced = await model.complete(prompt, { temperature: 0, maxTokens: 8, signal });
      assert.deepEqual(sliced.ids, whole.ids);
      assert.equal(sliced.timings.prefillTokens, n);
      assert.equal(sliced.timings.reusedTokens, 0);
      // A longer prompt on the cached one prefills, in slices, only what is new.
      const more = model.tokenize(prompt.slice(0, 300), { addBos: false });
      const longer = await model.complete([...sliced.promptIds, ...more], {
        temperature: 0, maxTokens: 4, cachePrompt: true, signal,
      });
      assert.equal(longer.timings.reusedTokens, n);
      assert.equal(longer.timings.reusedTokens + longer.timings.prefillTokens, longer.promptIds.length);
      const fresh = await model.complete(longer.promptIds, { temperature: 0, maxTokens: 4 });
      assert.deepEqual(longer.ids, fresh.ids);
    } finally {
      model.dispose();
    }
  });

  test('an engine aborted during a long prefill rejects at once and answers the next request right', async (t) => {
    if (!storiesFile) return t.skip(SKIP);
    const engine = await createEngine({ model: storiesFile, contextLength: 2048 });
    try {
      const short = { prompt: 'One day', max_tokens: 12, temperature: 0 };
      const expected = await engine.completions.create(short);
      const longPrompt = 'Once upon a time there was a little dog. '.repeat(140); // ~1400 tokens
      const controller = new AbortController();
      const pieces = [];
      const stream = await engine.completions.create(
        { prompt: longPrompt, max_tokens: 500, temperature: 0, ignore_eos: true, stream: true },
        { signal: controller.signal },
      );
      // The request is in the worker, prefilling; abort before any token has come back.
      setTimeout(() => controller.abort(), 5);
      await assert.rejects(
        (async () => {
          for await (const c of stream) pieces.push(c.choices[0].text);
        })(),
        (e) => e instanceof AbortError && /aborted/.test(e.message),
      );
      assert.deepEqual(pieces.filter((p) => p !== ''), []);
      // Queued behind the aborted request: it runs only once the worker has dropped that one
      // (at the next pause between prefill slices), and it must give a fresh engine's answer.
      const after = await engine.completions.create(short);
      assert.equal(after.choices[0].text, expected.choices[0].text);
      assert.equal(after.usage.completion_tokens, 12);
    } finally {
      engine.dispose();
    }
  });
});

describe('worker crashes', () => {
  test('a worker that throws is a WorkerError for pending and later calls; a new engine works', async (t) => {
    if (!storiesFile) return t.skip(SKIP);
    // pipit's worker, plus a fault: the first generate request makes the thread throw. The
    // fault listens only once pipit's worker does: the port starts delivering as soon as any
    // listener is attached, and pipit's worker would miss the load request.
    const source = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(new URL('./worker.js', indexUrl).href)}).then(() => {
        parentPort.on('message', (m) => {
          if (m.type === 'generate') setTimeout(() => { throw new Error('simulated crash'); }, 20);
        });
      });
    `;
    const engine = await createEngine({ model: storiesFile, worker: new Worker(source, { eval: true }) });
    const pending = engine.completions.create({ prompt: 'Once', max_tokens: 2000, ignore_eos: true });
    const queued = engine.tokenize('x');
    const isCrash = (e) => e instanceof WorkerError && /simulated crash/.test(e.message) && /createEngine/.test(e.message);
    await assert.rejects(pending, isCrash);
    await assert.rejects(queued, isCrash);
    await assert.rejects(engine.completions.create({ prompt: 'x' }), isCrash);
    const fresh = await createEngine({ model: storiesFile });
    try {
      const r = await fresh.completions.create({ prompt: 'One day', max_tokens: 4, temperature: 0 });
      assert.equal(r.usage.completion_tokens, 4);
    } finally {
      fresh.dispose();
    }
  });
});

// GGUF v3 layout, enough to find where a test should break a real file.
function ggufLayout(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 24; // magic, version, tensor count, metadata count
  const count = (offset) => Number(view.getBigUint64(offset, true));
  const string = () => {
    const n = count(at);
    const text = Buffer.from(bytes.subarray(at + 8, at + 8 + n)).toString('utf8');
    const start = at + 8;
    at += 8 + n;
    return { text, start };
  };
  const SIZES = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skipValue = (type) => {
    if (type === 8) return string();
    if (type === 9) {
      const inner = view.getUint32(at, true);
      const n = count(at + 4);
      at += 12;
      for (let i = 0; i < n; i++) skipValue(inner);
      return null;
    }
    at += SIZES[type];
    return null;
  };
  const metadata = new Map();
  for (let i = 0, n = count(16); i < n; i++) {
    const key = string().text;
    const type = view.getUint32(at, true);
    at += 4;
    metadata.set(key, skipValue(type));
  }
  const tensorTypeOffsets = [];
  for (let i = 0, n = count(8); i < n; i++) {
    string();
    at += 4 + 8 * view.getUint32(at, true);
    tensorTypeOffsets.push(at);
    at += 12;
  }
  return { metadata, tensorTypeOffsets };
}

describe('typed errors for bad input', () => {
  test('broken, hostile and unsupported files', async (t) => {
    if (!storiesFile) return t.skip(SKIP);
    const good = new Uint8Array(fs.readFileSync(storiesFile));
    const layout = ggufLayout(good);
    const variant = (change) => {
      const copy = new Uint8Array(good);
      change(new DataView(copy.buffer), copy);
      return copy;
    };
    const cases = [
      ['truncated', good.subarray(0, 3000), FormatError, /truncated/],
      ['not GGUF', new TextEncoder().encode('<html>404 not found</html>'), FormatError, /GGUF/],
      ['lying metadata count', variant((v) => v.setBigUint64(16, 1n << 60n, true)), FormatError,
        /claims 1152921504606846976 metadata entries, more than a \d+-byte file can hold/],
      ['lying tensor count', variant((v) => v.setBigUint64(8, 1n << 40n, true)), FormatError,
        /claims 1099511627776 tensors/],
      ['unknown architecture', variant((_, b) => {
        b.set(new TextEncoder().encode('mamba'), layout.metadata.get('general.architecture').start);
      }), UnsupportedError, /architecture 'mamba' is not supported; pipit supports: llama/],
      ['unknown tensor type', variant((v) => v.setUint32(layout.tensorTypeOffsets[0], 99, true)),
        UnsupportedError, /tensor '.+' has tensor type id 99, which is unknown/],
    ];
    for (const [name, bytes, type, message] of cases) {
      await assert.rejects(Pipit.load(bytes), (e) => {
        assert.ok(e instanceof type, `${name}: ${e.constructor.name}: ${e.message}`);
        assert.match(e.message, message, name);
        return true;
      });
    }
    // The same errors arrive from a worker, typed the same.
    const [name, bytes, type, message] = cases[4];
    await assert.rejects(createEngine({ model: bytes }), (e) => e instanceof type && message.test(e.message), name);
  });

  test('the real malformed dbrx vocabulary (duplicate keys) says how to accept it', async (t) => {
    const dbrx = existing(dbrxPath);
    if (!dbrx) return t.skip(`${dbrxPath} missing`);
    const duplicate = (e) =>
      e instanceof FormatError && /'general.file_type' appears more than once/.test(e.message) &&
      /allowDuplicateKeys/.test(e.message);
    await assert.rejects(Pipit.load(dbrx), duplicate);
    await assert.rejects(PipitTokenizer.load(dbrx), duplicate);
    await assert.rejects(createEngine({ model: dbrx }), duplicate);
    // Accepted, it is a vocabulary of an architecture pipit does not run.
    await assert.rejects(
      Pipit.load(dbrx, { allowDuplicateKeys: true }),
      (e) => e instanceof UnsupportedError && /architecture 'dbrx' is not supported/.test(e.message),
    );
  });

  test('invalid options and an over-long prompt, in this thread and from a worker', async (t) => {
    if (!storiesFile) return t.skip(SKIP);
    const model = await Pipit.load(storiesFile, { contextLength: 64 });
    const engine = await createEngine({ model: storiesFile, contextLength: 64 });
    try {
      const cases = [
        [{ temperature: -1 }, { temperature: -1 }, InvalidArgumentError, /temperature must be a number >= 0 \(0 = greedy\), got -1/],
        [{ topP: 1.5 }, { top_p: 1.5 }, InvalidArgumentError, /topP must be a number in \(0, 1\], got 1.5/],
        [{ maxTokens: -1 }, { max_tokens: -1 }, InvalidArgumentError, /maxTokens must be an integer from 0 to \d+, got -1/],
        [{ responseFormat: { type: 'yaml' } }, { response_format: { type: 'yaml' } }, InvalidArgumentError,
          /responseFormat.type must be 'text', 'json_object' or 'json_schema', got yaml/],
        [{ topLogprobs: -2 }, { top_logprobs: -2 }, InvalidArgumentError, /topLogprobs must be an integer from 0/],
      ];
      for (const [options, params, type, message] of cases) {
        await assert.rejects(model.complete('x', options), (e) => e instanceof type && message.test(e.message),
          JSON.stringify(options));
        await assert.rejects(engine.completions.create({ prompt: 'x', ...params }),
          (e) => e instanceof type && message.test(e.message), JSON.stringify(params));
      }
      const long = 'Once upon a time there was a dog. '.repeat(20);
      const overflow = (e) =>
        e instanceof ContextOverflowError && /do not fit in the context: it holds 64 tokens/.test(e.message) &&
        /larger contextLength/.test(e.message);
      await assert.rejects(model.complete(long), overflow);
      await assert.rejects(engine.completions.create({ prompt: long }), overflow);
      // Both still work after every refusal.
      const a = await model.complete('One day', { temperature: 0, maxTokens: 5 });
      const b = await engine.completions.create({ prompt: 'One day', max_tokens: 5, temperature: 0 });
      assert.equal(b.choices[0].text, a.text);
    } finally {
      model.dispose();
      engine.dispose();
    }
  });
});
