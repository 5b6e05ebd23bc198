// Tokenizers through the npm package: vocab-only GGUFs load with PipitTokenizer (and
// Pipit.loadTokenizer), encode llama.cpp's test vectors to its ids, and work from the CLI.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { cliPath, existing, libDir, modelsDir } from './helpers.mjs';

const { Pipit, PipitTokenizer, FormatError, InvalidArgumentError, PipitError } = await import(
  pathToFileURL(path.join(libDir, 'index.js')).href
);

const vocab = (name) => path.join(modelsDir, 'vocab', `ggml-vocab-${name}.gguf`);
const gpt2Path = existing(vocab('gpt-2'));
const SKIP = `vocab file missing: ${vocab('gpt-2')} (set PIPIT_MODELS_DIR)`;

/** llama.cpp's test-tokenizer-0 vectors: [text, ids][] */
function readVectors(gguf) {
  const inp = fs.readFileSync(`${gguf}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  inp.pop(); // after the last separator
  const out = fs.readFileSync(`${gguf}.out`, 'utf8').split('\n');
  return inp.map((text, i) => [text, out[i].trim() === '' ? [] : out[i].trim().split(/\s+/).map(Number)]);
}

function runCli(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliPath, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('PipitTokenizer', { skip: gpt2Path ? false : SKIP }, () => {
  test('gpt-2 vectors encode to llama.cpp ids and decode back', async () => {
    const tok = await PipitTokenizer.load(gpt2Path);
    try {
      const vectors = readVectors(gpt2Path);
      assert.ok(vectors.length >= 40);
      let passed = 0;
      for (const [text, ids] of vectors) {
        const got = tok.tokenize(text, { addBos: false });
        assert.deepEqual(got, ids, `tokenize(${JSON.stringify(text)})`);
        assert.equal(tok.detokenize(got), text);
        passed++;
      }
      console.log(`gpt-2 vectors through the package: ${passed}/${vectors.length}`);
    } finally {
      tok.dispose();
    }
  });

  test('info, special tokens, end of generation, dispose', async () => {
    const tok = await Pipit.loadTokenizer(fs.readFileSync(gpt2Path));
    assert.equal(tok.info.model, 'gpt2');
    assert.equal(tok.info.pre, 'gpt-2');
    assert.equal(tok.info.nVocab, 50257);
    assert.equal(tok.info.addBos, false);
    assert.ok(tok.isEndOfGeneration(50256));
    assert.deepEqual(tok.tokenize('a<|endoftext|>b', { parseSpecial: true }), [64, 50256, 65]);
    assert.ok(!tok.tokenize('a<|endoftext|>b').includes(50256));
    assert.throws(() => tok.detokenize([50257]), InvalidArgumentError);
    assert.throws(() => tok.tokenize(42), InvalidArgumentError);
    tok.dispose();
    assert.ok(tok.disposed);
    assert.throws(() => tok.tokenize('x'), PipitError);
  });

  test('a vocab-only file cannot be loaded as a model, but its tokenizer can', async () => {
    await assert.rejects(Pipit.load(gpt2Path), PipitError);
    const tok = await PipitTokenizer.load(gpt2Path);
    assert.deepEqual(tok.tokenize('Hello world'), [15496, 995]);
    tok.dispose();
  });

  test('duplicate keys are refused unless allowed (dbrx)', async (t) => {
    const dbrx = existing(path.join(modelsDir, 'vocab', 'extra-pr-branches', 'ggml-vocab-dbrx.gguf'));
    if (!dbrx) return t.skip('dbrx vocab missing');
    await assert.rejects(PipitTokenizer.load(dbrx), FormatError);
    const tok = await PipitTokenizer.load(dbrx, { allowDuplicateKeys: true });
    assert.equal(tok.info.pre, 'dbrx');
    for (const [text, ids] of readVectors(dbrx)) assert.deepEqual(tok.tokenize(text), ids);
    tok.dispose();
  });

  test('pipit tokenize on vocab-only files', async () => {
    const r = await runCli(['tokenize', '--model', gpt2Path, '--text', 'Hello world', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { ids: [15496, 995], pieces: ['Hello', ' world'] });
    const bert = existing(vocab('bert-bge'));
    if (bert) {
      const b = await runCli(['tokenize', '--model', bert, '--text', 'Hello, World!']);
      assert.equal(b.code, 0, b.stderr);
      assert.equal(b.stdout.trim(), '101 7592 1010 2088 999 102');
    }
  });
});
