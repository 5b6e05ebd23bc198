// What JSON-constrained decoding costs per token: the SmolLM2-135M shape (Q8_0, random
// weights) with real vocabularies, the 32k llama SentencePiece one and the 50k GPT-2 one, run
// in WASM through the built package with responseFormat json_object. The grammar's share is
// its masking and advancing time (timings.grammarMs) over the decode time; the target is 10%.
// Models are written by the project's GGUF writer into .cache/bench-models/ when missing.
//   node tests/bench/grammar.bench.mjs [--tokens 48]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

import { libDir, modelsDir, repoRoot } from '../node/helpers.mjs';

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '48' } } });
const maxTokens = Number(values.tokens);
if (!Number.isInteger(maxTokens) || maxTokens < 1) {
  console.error('--tokens takes a positive integer');
  process.exit(2);
}
const writer = path.join(repoRoot, 'build', 'native', 'pipit-gguf');
const cache = path.join(repoRoot, '.cache', 'bench-models');
const { Pipit } = await import(pathToFileURL(path.join(libDir, 'index.js')).href);

const VOCABS = [
  { name: 'llama-spm', size: '32k', file: path.join(modelsDir, 'vocab', 'ggml-vocab-llama-spm.gguf') },
  { name: 'gpt-2', size: '50k', file: path.join(modelsDir, 'vocab', 'ggml-vocab-gpt-2.gguf') },
];

function modelFor(vocab) {
  const file = path.join(cache, `smol-${vocab.name}-Q8_0.gguf`);
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(cache, { recursive: true });
  const r = spawnSync(writer, ['synth', '--out', file, '--n-embd', '576', '--n-layer', '30',
    '--n-head', '9', '--n-head-kv', '3', '--n-ff', '1536', '--n-ctx', '2048', '--type', 'Q8_0',
    '--tied', '--seed', '11', '--vocab-from', vocab.file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pipit-gguf failed: ${r.stderr}`);
  return file;
}

const results = [];
for (const vocab of VOCABS) {
  if (!fs.existsSync(vocab.file)) {
    console.error(`vocab file missing: ${vocab.file} (set PIPIT_MODELS_DIR)`);
    process.exit(1);
  }
  const model = await Pipit.load(modelFor(vocab), { contextLength: 512, threads: 1 });
  const run = async (responseFormat, seed) => {
    const steps = model.generateTokens('', { maxTokens, temperature: 0.8, seed, responseFormat });
    let r = await steps.next();
    while (!r.done) r = await steps.next();
    return r.value.timings;
  };
  await run({ type: 'json_object' }, 1);  // warm-up: the trie and the first grammar states
  let decodeMs = 0, decodeTokens = 0, grammarMs = 0;
  for (let seed = 2; seed < 7; ++seed) {
    const t = await run({ type: 'json_object' }, seed);
    decodeMs += t.decodeMs;
    decodeTokens += t.decodeTokens;
    grammarMs += t.grammarMs;
  }
  model.dispose();
  const share = grammarMs / decodeMs;
  results.push({ vocab: vocab.name, tokens: decodeTokens, grammarMsPerToken: grammarMs / decodeTokens,
    decodeMsPerToken: decodeMs / decodeTokens, overhead: share });
  console.log(`grammar (json_object, ${vocab.name} ${vocab.size}, SmolLM2-135M shape, WASM): ` +
    `${(grammarMs / decodeTokens).toFixed(2)} ms/token masking vs ${(decodeMs / decodeTokens).toFixed(2)} ` +
    `ms/token decode = ${(100 * share).toFixed(1)}% (target <= 10%)`);
}
console.log(JSON.stringify({ bench: 'grammar', format: 'json_object', results }));
