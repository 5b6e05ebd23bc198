// createEngine in Node: the model runs in a worker_threads worker behind the OpenAI-shaped API.
// Every answer is checked against the same model run in this thread (Pipit), so the worker
// boundary, the queue and the prefix cache must not change a single token.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { existing, libDir, storiesPath } from './helpers.mjs';

const pkg = await import(pathToFileURL(path.join(libDir, 'index.js')).href);
const {
  createEngine,
  Pipit,
  PipitError,
  AbortError,
  ContextOverflowError,
  FormatError,
  InvalidArgumentError,
  LoadError,
  WorkerError,
} = pkg;

const modelFile = existing(storiesPath);
const SKIP = `model file missing: ${storiesPath} (set PIPIT_MODELS_DIR)`;
const MESSAGES = [
  { role: 'system', content: 'You tell short stories.' },
  { role: 'user', content: 'Tell me about a cat.' },
];

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

describe('createEngine (worker_threads)', () => {
  let engine = null;
  let local = null; // the same model in this thread, the oracle
  const progress = [];
  before(async () => {
    if (!modelFile) return;
    engine = await createEngine({ model: modelFile, onProgress: (p) => progress.push(p), threads: 1 });
    local = await Pipit.load(modelFile);
  });
  after(() => {
    engine?.dispose();
    local?.dispose();
  });

  test('loads in a worker with progress, and describes the model', async (t) => {
    if (!engine) return t.skip(SKIP);
    const size = fs.statSync(modelFile).size;
    assert.ok(progress.length >= 2, `progress events: ${progress.length}`);
    assert.deepEqual(progress.at(-1), { loaded: size, total: size });
    const info = await engine.info();
    assert.equal(info.architecture, 'llama');
    assert.equal(info.nVocab, 512);
    assert.equal(info.fileBytes, size);
    assert.equal(info.bosToken, '<s>');
    assert.equal(info.eosToken, '</s>');
    assert.equal(info.chatTemplate, null); // stories260K has none
    assert.equal(engine.modelId, 'stories260K');
    // The worker really is another thread: this one has no engine memory for that model.
    assert.deepEqual(await engine.tokenize('Once upon a time'), local.tokenize('Once upon a time'));
    assert.equal(await engine.detokenize([403, 407, 261]), local.detokenize([403, 407, 261]));
  });

  test('a chat completion has the OpenAI shape and the in-thread answer', async (t) => {
    if (!engine) return t.skip(SKIP);
    const r = await engine.chat.completions.create({
      messages: MESSAGES,
      max_tokens: 24,
      temperature: 0,
      chatTemplate: 'chatml',
    });
    assert.match(r.id, /^chatcmpl-[0-9a-f]{24}$/);
    assert.equal(r.object, 'chat.completion');
    assert.ok(Number.isInteger(r.created) && Math.abs(r.created - Date.now() / 1000) < 60);
    assert.equal(r.model, 'stories260K');
    assert.equal(r.choices.length, 1);
    const [choice] = r.choices;
    assert.equal(choice.index, 0);
    assert.equal(choice.message.role, 'assistant');
    assert.equal(typeof choice.message.content, 'string');
    assert.ok(choice.message.content.length > 0);
    assert.ok(['stop', 'length'].includes(choice.finish_reason));
    assert.equal(choice.logprobs, null);
    const u = r.usage;
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    assert.ok(u.completion_tokens > 0 && u.completion_tokens <= 24);
    assert.equal(typeof u.prompt_tokens_details.cached_tokens, 'number');
    assert.ok(r.timings.decodeTokensPerSecond > 0);
    assert.equal(r.timings.prefillTokens + r.timings.reusedTokens, u.prompt_tokens);

    // The oracle: the same conversation in this thread.
    const gen = local.chat(MESSAGES, { maxTokens: 24, temperature: 0, chatTemplate: 'chatml' });
    let result;
    for (;;) {
      const s = await gen.next();
      if (s.done) {
        result = s.value;
        break;
      }
    }
    assert.equal(choice.message.content, result.text);
    assert.equal(u.prompt_tokens, result.promptIds.length);
    assert.equal(u.completion_tokens, result.ids.length);
  });

  test('streamed chunks add up to the non-streamed answer (greedy)', async (t) => {
    if (!engine) return t.skip(SKIP);
    const params = { messages: MESSAGES, max_tokens: 32, temperature: 0, chatTemplate: 'chatml' };
    const whole = await engine.chat.completions.create(params);
    const chunks = await collect(await engine.chat.completions.create({ ...params, stream: true }));
    assert.ok(chunks.length >= 3, `chunks: ${chunks.length}`);
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1);
    assert.notEqual(chunks[0].id, whole.id);
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'stories260K');
      assert.equal(c.choices.length, 1);
    }
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    for (const c of chunks.slice(0, -1)) {
      assert.equal(c.choices[0].finish_reason, null);
      assert.equal(c.usage, undefined);
    }
    const last = chunks.at(-1);
    assert.deepEqual(last.choices[0].delta, {});
    assert.equal(last.choices[0].finish_reason, whole.choices[0].finish_reason);
    const text = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(last.usage.prompt_tokens, whole.usage.prompt_tokens);
    assert.equal(last.usage.completion_tokens, whole.usage.completion_tokens);
    // The same prompt twice: all of it but the last token came from the cache.
    assert.equal(last.usage.prompt_tokens_details.cached_tokens, last.usage.prompt_tokens - 1);
    assert.equal(last.timings.prefillTokens, 1);
  });

  test('completions.create has the Completion shape and equals Pipit.complete', async (t) => {
    if (!engine) return t.skip(SKIP);
    const r = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 40, temperature: 0 });
    const expected = await local.complete('Once upon a time', { maxTokens: 40, temperature: 0 });
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].text, expected.text);
    assert.equal(r.choices[0].finish_reason, expected.finishReason === 'stop' ? 'stop' : 'length');
    assert.equal(r.usage.prompt_tokens, expected.promptIds.length);
    assert.equal(r.usage.completion_tokens, expected.ids.length);

    const chunks = await collect(
      await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stream: true }),
    );
    assert.equal(chunks.map((c) => c.choices[0].text).join(''), expected.text);
    assert.equal(chunks.at(-1).usage.completion_tokens, expected.ids.length);
    // Token ids as the prompt, and options forwarded under their snake_case names.
    const byIds = await engine.completions.create({
      prompt: expected.promptIds,
      max_tokens: 40,
      temperature: 0,
      ignore_eos: true,
    });
    assert.equal(byIds.choices[0].text, expected.text);
  });

  test('non-streamed responses carry OpenAI logprobs when asked, equal to the in-thread ones', async (t) => {
    if (!engine) return t.skip(SKIP);
    const messages = [{ role: 'user', content: 'A cat sat.' }];
    const chat = await engine.chat.completions.create({
      messages, max_tokens: 10, temperature: 0.9, seed: 3, logprobs: true, top_logprobs: 2,
    });
    const gen = local.chat(messages, { maxTokens: 10, temperature: 0.9, seed: 3, topLogprobs: 2 });
    let r = await gen.next();
    while (!r.done) r = await gen.next();
    const content = chat.choices[0].logprobs.content;
    assert.equal(chat.choices[0].message.content, r.value.text);
    assert.equal(content.length, chat.usage.completion_tokens);
    assert.equal(content.length, r.value.logprobs.content.length);
    content.forEach((c, i) => {
      const want = r.value.logprobs.content[i];
      assert.equal(c.token, want.token);
      assert.deepEqual(c.bytes, want.bytes);
      assert.ok(Math.abs(c.logprob - want.logprob) < 1e-4, `${c.logprob} vs ${want.logprob}`);
      assert.deepEqual(c.top_logprobs.map((x) => x.token), want.top_logprobs.map((x) => x.token));
    });
    assert.deepEqual(Object.keys(content[0]).sort(), ['bytes', 'logprob', 'token', 'top_logprobs']);
    assert.equal(content[0].top_logprobs.length, 2);
    // Completions take OpenAI's legacy number form: alternatives per token.
    const completion = await engine.completions.create({ prompt: 'Once', max_tokens: 5, temperature: 0, logprobs: 3 });
    const lp = completion.choices[0].logprobs.content;
    assert.equal(lp.length, 5);
    assert.equal(lp[0].top_logprobs.length, 3);
    assert.equal(lp[0].top_logprobs[0].token, lp[0].token); // greedy: the chosen one is the best
    const plain = await engine.completions.create({ prompt: 'Once', max_tokens: 2 });
    assert.equal(plain.choices[0].logprobs, null);
  });

  test('engine.generate streams like Pipit#generate', async (t) => {
    if (!engine) return t.skip(SKIP);
    const pieces = [];
    const gen = engine.generate('', { maxTokens: 64, temperature: 0 });
    let result;
    for (;;) {
      const r = await gen.next();
      if (r.done) {
        result = r.value;
        break;
      }
      pieces.push(r.value);
    }
    const expected = await local.complete('', { maxTokens: 64, temperature: 0 });
    assert.deepEqual(result.ids, expected.ids);
    assert.equal(pieces.join(''), expected.text);
    assert.equal(result.timings.reusedTokens, 0);
  });

  test('stop texts end the answer before them', async (t) => {
    if (!engine) return t.skip(SKIP);
    const full = await local.complete('Once upon a time', { maxTokens: 60, temperature: 0 });
    const word = ' Lily';
    const at = full.text.indexOf(word);
    assert.ok(at > 0, full.text);
    const r = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 60, temperature: 0, stop: [word, 'zzz'] });
    assert.equal(r.choices[0].text, full.text.slice(0, at));
    assert.equal(r.choices[0].finish_reason, 'stop');
    const chunks = await collect(
      await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 60, temperature: 0, stop: word, stream: true }),
    );
    assert.equal(chunks.map((c) => c.choices[0].text).join(''), full.text.slice(0, at));
  });

  test('an AbortSignal stops a stream at once and the engine stays usable', async (t) => {
    if (!engine) return t.skip(SKIP);
    const expected = await engine.completions.create({ prompt: 'One day', max_tokens: 30, temperature: 0 });
    const controller = new AbortController();
    const stream = await engine.completions.create(
      { prompt: 'Once upon a time', max_tokens: 2000, temperature: 0, ignore_eos: true, stream: true },
      { signal: controller.signal },
    );
    let seen = 0;
    await assert.rejects(
      (async () => {
        for await (const c of stream) {
          if (c.choices[0].text) seen++;
          if (seen === 3) controller.abort();
        }
      })(),
      (e) => e instanceof AbortError && e.kind === 'Aborted',
    );
    assert.equal(seen, 3);
    // An already-aborted signal never reaches the worker.
    await assert.rejects(
      engine.chat.completions.create({ messages: MESSAGES, signal: AbortSignal.abort() }),
      AbortError,
    );
    const again = await engine.completions.create({ prompt: 'One day', max_tokens: 30, temperature: 0 });
    assert.equal(again.choices[0].text, expected.choices[0].text);
  });

  test('leaving a stream early aborts its generation', async (t) => {
    if (!engine) return t.skip(SKIP);
    const stream = await engine.completions.create({
      prompt: 'Once upon a time', max_tokens: 5000, temperature: 0, ignore_eos: true, stream: true,
      // It would run to the end of the 2048-token context; the worker must stop long before.
    });
    for await (const c of stream) if (c.choices[0].text) break;
    const started = performance.now();
    const r = await engine.completions.create({ prompt: 'One day', max_tokens: 4, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.ok(performance.now() - started < 5000);
  });

  test('concurrent requests are queued and each equals its sequential result', async (t) => {
    if (!engine) return t.skip(SKIP);
    const a = { prompt: 'Once upon a time', max_tokens: 40, temperature: 0 };
    const b = { messages: [{ role: 'user', content: 'A dog ran.' }], max_tokens: 40, temperature: 0.9, seed: 7 };
    const seqA = await engine.completions.create(a);
    const seqB = await engine.chat.completions.create(b);
    const streamC = engine.chat.completions.create({ ...b, stream: true });
    const [parA, parB, chunksC, tokens] = await Promise.all([
      engine.completions.create(a),
      engine.chat.completions.create(b),
      streamC.then(collect),
      engine.tokenize('Lily'),
    ]);
    assert.equal(parA.choices[0].text, seqA.choices[0].text);
    assert.equal(parB.choices[0].message.content, seqB.choices[0].message.content);
    assert.equal(chunksC.map((c) => c.choices[0].delta.content ?? '').join(''), seqB.choices[0].message.content);
    assert.deepEqual(tokens, local.tokenize('Lily'));
  });

  test('errors thrown in the worker arrive as the same typed errors', async (t) => {
    if (!engine) return t.skip(SKIP);
    await assert.rejects(
      engine.chat.completions.create({ messages: MESSAGES, temperature: -1 }),
      (e) => e instanceof InvalidArgumentError && /temperature/.test(e.message),
    );
    await assert.rejects(
      engine.completions.create({ prompt: 'x', top_p: 2 }),
      (e) => e instanceof InvalidArgumentError && /topP/.test(e.message),
    );
    await assert.rejects(
      engine.completions.create({ prompt: [1, 99999] }),
      (e) => e instanceof InvalidArgumentError && /out of range/.test(e.message),
    );
    // Checked on this side before anything is sent.
    await assert.rejects(engine.chat.completions.create({ messages: [] }), InvalidArgumentError);
    await assert.rejects(engine.chat.completions.create({ messages: MESSAGES, n: 2 }), InvalidArgumentError);
    await assert.rejects(
      engine.chat.completions.create({ messages: MESSAGES, chatTemplate: 'vicuna' }),
      (e) => e instanceof InvalidArgumentError && /chatml/.test(e.message),
    );
    await assert.rejects(
      engine.completions.create({ prompt: 'x', onToken: () => 1 }),
      (e) => e instanceof InvalidArgumentError && /plain data/.test(e.message),
    );
    // The engine is still fine.
    const r = await engine.completions.create({ prompt: 'Once', max_tokens: 3, temperature: 0 });
    assert.equal(r.usage.completion_tokens, 3);
  });

  test('a prompt longer than the context is a ContextOverflowError', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const small = await createEngine({ model: modelFile, contextLength: 32 });
    try {
      assert.equal((await small.info()).sessionContextLength, 32);
      await assert.rejects(
        small.completions.create({ prompt: 'Once upon a time '.repeat(20), max_tokens: 4 }),
        (e) => e instanceof ContextOverflowError && /holds 32 tokens/.test(e.message),
      );
      const r = await small.completions.create({ prompt: 'Once', max_tokens: 40, temperature: 0, ignore_eos: true });
      assert.equal(r.choices[0].finish_reason, 'length'); // the context filled up
    } finally {
      small.dispose();
    }
  });

  test('unload frees the model; load puts one back', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const e = await createEngine({ model: fs.readFileSync(modelFile) });
    try {
      assert.equal(e.modelId, 'llama'); // bytes have no file name: general.name
      await e.unload();
      await assert.rejects(e.info(), (err) => err instanceof PipitError && err.kind === 'Disposed');
      await assert.rejects(
        e.completions.create({ prompt: 'x' }),
        (err) => err instanceof PipitError && /engine.load/.test(err.message),
      );
      await assert.rejects(e.tokenize('x'), (err) => err instanceof PipitError && err.kind === 'Disposed');
      const info = await e.load(pathToFileURL(modelFile));
      assert.equal(info.nVocab, 512);
      assert.equal(e.modelId, 'stories260K');
      const r = await e.completions.create({ prompt: 'Once upon a time', max_tokens: 10, temperature: 0 });
      assert.equal(r.usage.completion_tokens, 10);
    } finally {
      e.dispose();
    }
  });
});

describe('engine failures', () => {
  test('a file that is not GGUF is a FormatError, a missing one a LoadError', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-engine-'));
    const bad = path.join(dir, 'bad.gguf');
    fs.writeFileSync(bad, 'this is not a model file at all');
    try {
      await assert.rejects(createEngine({ model: bad }), (e) => e instanceof FormatError && /GGUF/.test(e.message));
      await assert.rejects(
        createEngine({ model: path.join(dir, 'missing.gguf') }),
        (e) => e instanceof LoadError && /no such file/.test(e.message),
      );
      await assert.rejects(createEngine({ model: 'x', threads: 0 }), InvalidArgumentError);
      await assert.rejects(createEngine({}), InvalidArgumentError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a worker that dies rejects what is pending with a WorkerError; a new engine works', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    // A worker made by the caller (the `worker` option), so this test can kill it.
    const worker = new Worker(new URL('./worker.js', pathToFileURL(path.join(libDir, 'index.js'))));
    const engine = await createEngine({ model: modelFile, worker });
    const stream = await engine.completions.create({
      prompt: 'Once upon a time', max_tokens: 400, temperature: 0, ignore_eos: true, stream: true,
    });
    const queued = engine.completions.create({ prompt: 'One day', max_tokens: 4 });
    const reading = (async () => {
      for await (const c of stream) {
        if (c.choices[0].text) await worker.terminate();
      }
    })();
    await assert.rejects(reading, (e) => e instanceof WorkerError && e.kind === 'Worker' && /createEngine/.test(e.message));
    await assert.rejects(queued, WorkerError);
    await assert.rejects(engine.completions.create({ prompt: 'x' }), WorkerError);
    await assert.rejects(engine.tokenize('x'), WorkerError);
    engine.dispose(); // harmless after a death

    const fresh = await createEngine({ model: modelFile });
    try {
      const r = await fresh.completions.create({ prompt: 'One day', max_tokens: 4, temperature: 0 });
      assert.equal(r.usage.completion_tokens, 4);
    } finally {
      fresh.dispose();
    }
  });

  test('dispose rejects pending requests and ends the worker', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const engine = await createEngine({ model: modelFile });
    const pending = engine.completions.create({ prompt: 'Once', max_tokens: 400, ignore_eos: true });
    engine.dispose();
    await assert.rejects(pending, (e) => e instanceof PipitError && e.kind === 'Disposed');
    await assert.rejects(engine.info(), (e) => e.kind === 'Disposed');
    assert.equal(engine.disposed, true);
  });
});
