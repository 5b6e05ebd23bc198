// The npm package (web/lib, built from web/src) and its CLI against real model files.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import {
  GOLDEN_TEXT_START,
  cliPath,
  existing,
  goldenIds,
  libDir,
  modelsDir,
  referenceDir,
  storiesPath,
} from './helpers.mjs';

const pkg = await import(pathToFileURL(path.join(libDir, 'index.js')).href);
const {
  Pipit,
  PipitError,
  FormatError,
  ContextOverflowError,
  InvalidArgumentError,
  AbortError,
  LoadError,
} = pkg;

const modelFile = existing(storiesPath);
const SKIP = `model file missing: ${storiesPath} (set PIPIT_MODELS_DIR)`;

function runCli(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, ...args], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('stories260K through the package', () => {
  let model = null;
  before(async () => {
    if (modelFile) model = await Pipit.load(modelFile);
  });
  after(() => model?.dispose());

  test('greedy 64 tokens from BOS give the golden ids and text', async (t) => {
    if (!model) return t.skip(SKIP);
    const golden = goldenIds();
    const pieces = [];
    const gen = model.generate('', { temperature: 0, maxTokens: 64 });
    let result;
    for (;;) {
      const r = await gen.next();
      if (r.done) {
        result = r.value;
        break;
      }
      assert.equal(typeof r.value, 'string');
      pieces.push(r.value);
    }
    assert.deepEqual(result.promptIds, [1]);
    assert.deepEqual(result.ids, golden);
    assert.equal(result.finishReason, 'length');
    assert.equal(pieces.join(''), result.text);
    assert.ok(
      result.text.trimStart().startsWith(GOLDEN_TEXT_START),
      `generated text: ${JSON.stringify(result.text)}`,
    );
    assert.ok(model.detokenize(result.ids).startsWith(GOLDEN_TEXT_START));
    assert.equal(result.timings.prefillTokens, 1);
    assert.ok(result.timings.decodeTokensPerSecond > 0);
  });

  test('generateTokens yields ids with top logits, highest first', async (t) => {
    if (!model) return t.skip(SKIP);
    const golden = goldenIds();
    const steps = [];
    for await (const s of model.generateTokens([1], { temperature: 0, maxTokens: 8, topLogits: 5 })) {
      steps.push(s);
    }
    assert.deepEqual(
      steps.map((s) => s.token),
      golden.slice(0, 8),
    );
    for (const s of steps) {
      assert.equal(s.topLogits.length, 5);
      assert.equal(s.topLogits[0][0], s.token, 'greedy picks the highest logit');
      for (let i = 1; i < 5; i++) assert.ok(s.topLogits[i - 1][1] >= s.topLogits[i][1]);
    }
  });

  test('tokenize matches the llama.cpp reference prompts', async (t) => {
    if (!model) return t.skip(SKIP);
    const refPath = path.join(referenceDir, 'stories260K.json');
    if (!fs.existsSync(refPath)) return t.skip(`reference missing: ${refPath}`);
    const ref = JSON.parse(fs.readFileSync(refPath, 'utf8'));
    assert.ok(ref.runs.length >= 3);
    for (const run of ref.runs) {
      assert.deepEqual(model.tokenize(run.prompt), run.prompt_tokens, `prompt ${JSON.stringify(run.prompt)}`);
    }
    assert.deepEqual(model.tokenize('Once upon a time', { addBos: false }), [403, 407, 261, 378]);
  });

  test('info describes the file', async (t) => {
    if (!model) return t.skip(SKIP);
    const info = model.info;
    assert.equal(info.architecture, 'llama');
    assert.equal(info.nVocab, 512);
    assert.equal(info.contextLength, 2048);
    assert.equal(info.nEmbd, 64);
    assert.equal(info.nLayer, 5);
    assert.equal(info.nHead, 8);
    assert.equal(info.nHeadKv, 4);
    assert.equal(info.nFf, 172);
    assert.equal(info.fileBytes, fs.statSync(modelFile).size);
    assert.equal(info.bosId, 1);
    assert.equal(info.eosId, 2);
    assert.equal(info.addBos, true);
    const counts = Object.fromEntries(
      Object.entries(info.tensorTypes).map(([k, v]) => [k.toLowerCase(), v]),
    );
    assert.deepEqual(counts, { f32: 48 });
  });

  test('seeded sampling repeats itself', async (t) => {
    if (!model) return t.skip(SKIP);
    const opts = { temperature: 1.0, topK: 0, topP: 1, seed: 1234, maxTokens: 40, ignoreEos: true };
    const a = await model.complete('Once upon a time', opts);
    const b = await model.complete('Once upon a time', opts);
    assert.equal(a.ids.length, 40);
    assert.deepEqual(a.ids, b.ids);
    assert.equal(a.seed, 1234);
    // Another seed samples another story (40 tokens at temperature 1 colliding is not plausible).
    const c = await model.complete('Once upon a time', { ...opts, seed: 99 });
    assert.notDeepEqual(c.ids, a.ids);
  });

  test('an AbortSignal stops generation, and the model stays usable', async (t) => {
    if (!model) return t.skip(SKIP);
    const controller = new AbortController();
    const seen = [];
    await assert.rejects(
      (async () => {
        for await (const piece of model.generate('', { temperature: 0, maxTokens: 64, signal: controller.signal })) {
          seen.push(piece);
          if (seen.length === 3) controller.abort();
        }
      })(),
      (e) => e instanceof AbortError && e instanceof PipitError,
    );
    assert.equal(seen.length, 3);
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(model.complete('', { signal: aborted.signal }), AbortError);
    const again = await model.complete('', { temperature: 0, maxTokens: 4 });
    assert.deepEqual(again.ids, goldenIds().slice(0, 4));
  });

  test('invalid options are InvalidArgumentErrors', async (t) => {
    if (!model) return t.skip(SKIP);
    const bad = [
      { maxTokens: -1 },
      { maxTokens: 1.5 },
      { temperature: -0.1 },
      { temperature: Number.NaN },
      { topK: -3 },
      { topP: 0 },
      { topP: 1.2 },
      { seed: -1 },
      { ignoreEos: 'yes' },
      { topLogits: 100000 },
    ];
    for (const options of bad) {
      await assert.rejects(model.complete('hi', options), InvalidArgumentError, JSON.stringify(options));
    }
    await assert.rejects(model.complete([1, 9999], {}), /out of range/);
    assert.throws(() => model.detokenize([1, -4]), InvalidArgumentError);
    assert.throws(() => model.tokenize(42), InvalidArgumentError);
    await assert.rejects(Pipit.load(modelFile, { contextLength: -5 }), InvalidArgumentError);
    await assert.rejects(Pipit.load(42), InvalidArgumentError);
  });
});

describe('loading', () => {
  test('from Uint8Array, ArrayBuffer, Blob, path and file: URL', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const bytes = fs.readFileSync(modelFile);
    const sources = {
      Uint8Array: new Uint8Array(bytes),
      ArrayBuffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
      Blob: new Blob([bytes]),
      path: modelFile,
      'file: URL': pathToFileURL(modelFile).href,
    };
    for (const [kind, source] of Object.entries(sources)) {
      const events = [];
      const m = await Pipit.load(source, { onProgress: (p) => events.push(p) });
      try {
        assert.equal(m.info.fileBytes, bytes.length, kind);
        const last = events.at(-1);
        assert.deepEqual(last, { loaded: bytes.length, total: bytes.length }, kind);
        const r = await m.complete('', { temperature: 0, maxTokens: 8 });
        assert.deepEqual(r.ids, goldenIds().slice(0, 8), kind);
      } finally {
        m.dispose();
      }
    }
  });

  test('from http, streaming with progress (with and without Content-Length)', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const bytes = fs.readFileSync(modelFile);
    const server = http.createServer((req, res) => {
      if (req.url === '/model.gguf') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
        // Several writes so that the client sees more than one chunk.
        const step = 200000;
        for (let i = 0; i < bytes.length; i += step) res.write(bytes.subarray(i, i + step));
        res.end();
      } else if (req.url === '/chunked.gguf') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(bytes.subarray(0, 500000));
        res.end(bytes.subarray(500000));
      } else {
        res.writeHead(404).end('not found');
      }
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${server.address().port}`;
    try {
      for (const name of ['model.gguf', 'chunked.gguf']) {
        const events = [];
        const m = await Pipit.load(`${base}/${name}`, { onProgress: (p) => events.push({ ...p }) });
        try {
          assert.ok(events.length >= 2, `${name}: ${events.length} progress events`);
          assert.deepEqual(events.at(-1), { loaded: bytes.length, total: bytes.length }, name);
          for (let i = 1; i < events.length; i++) assert.ok(events[i].loaded >= events[i - 1].loaded);
          const r = await m.complete('', { temperature: 0, maxTokens: 8 });
          assert.deepEqual(r.ids, goldenIds().slice(0, 8), name);
        } finally {
          m.dispose();
        }
      }
      await assert.rejects(Pipit.load(`${base}/missing.gguf`), (e) => e instanceof LoadError && /404/.test(e.message));
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('a missing file or unreachable server is a LoadError', async () => {
    await assert.rejects(
      Pipit.load(path.join(modelsDir, 'no-such-model.gguf')),
      (e) => e instanceof LoadError && /no such file/.test(e.message),
    );
    await assert.rejects(Pipit.load('http://127.0.0.1:9/x.gguf'), LoadError);
  });

  test('a truncated file is a FormatError that says so', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const bytes = fs.readFileSync(modelFile);
    for (const n of [5000, 200000, bytes.length - 1]) {
      await assert.rejects(
        Pipit.load(bytes.subarray(0, n)),
        (e) => e instanceof FormatError && /truncated|past the end/.test(e.message),
        `first ${n} bytes`,
      );
    }
  });

  test('a file that is not GGUF is a FormatError', async () => {
    const text = new TextEncoder().encode('this is a plain text file, not a model\n'.repeat(10));
    await assert.rejects(
      Pipit.load(text),
      (e) => e instanceof FormatError && e.kind === 'Format' && /GGUF/.test(e.message),
    );
  });

  test('a prompt longer than the context is a ContextOverflowError', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const m = await Pipit.load(modelFile, { contextLength: 8 });
    try {
      assert.equal(m.info.sessionContextLength, 8);
      const prompt = 'Once upon a time there was a little girl who liked to play';
      assert.ok(m.tokenize(prompt).length > 8);
      await assert.rejects(
        m.complete(prompt, { temperature: 0 }),
        (e) => e instanceof ContextOverflowError && /context/.test(e.message),
      );
      // Generation that runs into the end of the context stops with finishReason 'context'.
      const r = await m.complete('', { temperature: 0, maxTokens: 64, ignoreEos: true });
      assert.equal(r.finishReason, 'context');
      assert.ok(r.ids.length > 0 && r.ids.length <= 8);
      assert.deepEqual(r.ids, goldenIds().slice(0, r.ids.length));
    } finally {
      m.dispose();
    }
  });

  test('a disposed model throws a clear error', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const m = await Pipit.load(modelFile);
    m.dispose();
    m.dispose(); // twice is harmless
    assert.equal(m.disposed, true);
    assert.throws(() => m.tokenize('x'), (e) => e instanceof PipitError && /disposed/.test(e.message));
    assert.throws(() => m.info, /disposed/);
    await assert.rejects(m.complete(''), /disposed/);
  });
});

describe('CLI', () => {
  test('generate --json gives the golden ids', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const { code, stdout, stderr } = await runCli([
      'generate', '--model', modelFile, '--prompt', '', '-n', '64', '--temp', '0', '--json',
      '--top-logits', '3',
    ]);
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split('\n');
    const out = JSON.parse(lines.at(-1));
    assert.deepEqual(out.prompt_ids, [1]);
    assert.deepEqual(out.ids, goldenIds());
    assert.ok(out.text.trimStart().startsWith(GOLDEN_TEXT_START));
    for (const k of ['load_ms', 'prefill_tok_s', 'decode_tok_s']) {
      assert.equal(typeof out.timings[k], 'number', k);
    }
    assert.equal(out.top_logits.length, 64);
    assert.equal(out.top_logits[0].length, 3);
    assert.equal(out.top_logits[0][0][0], out.ids[0]);
  });

  test('generate streams text', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const { code, stdout, stderr } = await runCli([
      'generate', '--model', modelFile, '--prompt', 'Once upon a time', '-n', '20', '--temp', '0',
    ]);
    assert.equal(code, 0, stderr);
    assert.ok(stdout.startsWith(', there was a little girl named Lily.'), JSON.stringify(stdout));
  });

  test('tokenize --json and info --json', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    let r = await runCli(['tokenize', '--model', modelFile, '--text', 'Once upon a time', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).ids, [1, 403, 407, 261, 378]);
    r = await runCli(['tokenize', '--model', modelFile, '--text', 'Once upon a time', '--no-bos', '--json']);
    assert.deepEqual(JSON.parse(r.stdout).ids, [403, 407, 261, 378]);
    r = await runCli(['info', '--model', modelFile, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.architecture, 'llama');
    assert.equal(info.nVocab, 512);
    assert.equal(info.nLayer, 5);
  });

  test('bad arguments exit with 2 and one line on stderr; runtime errors with 1', async () => {
    const cases = [
      ['generate', '--prompt', 'x'],
      ['generate', '--model', 'm.gguf', '--prompt', 'x', '-n', '-3'],
      ['generate', '--model', 'm.gguf', '--prompt', 'x', '--temp', 'hot'],
      ['generate', '--model', 'm.gguf', '--prompt', 'x', '--bogus'],
      ['tokenize', '--model'],
      ['frobnicate'],
    ];
    for (const args of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^pipit: /);
    }
    const missing = await runCli(['info', '--model', path.join(modelsDir, 'nope.gguf')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /LoadError/);
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /pipit generate/);
  });
});
