// Tokenizer speed through the built package (web/lib, WASM): encodes ~2 MB of English-like
// text with the GPT-2 vocabulary and prints MB/s, then one JSON line for `npm run bench`:
//   {"bench":"tokenizer","vocab":"gpt-2","mbPerSecond":...,...}
// The text is generated (seeded), so every run encodes the same bytes.
//   node tests/bench/tokenizer.bench.mjs [--mb 2] [--runs 5]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

import { libDir, modelsDir } from '../node/helpers.mjs';

const { values } = parseArgs({
  options: { mb: { type: 'string', default: '2' }, runs: { type: 'string', default: '5' } },
});
const targetBytes = Math.round(Number(values.mb) * 1e6);
const runs = Number(values.runs);
if (!(targetBytes > 0) || !Number.isInteger(runs) || runs < 1) {
  console.error('--mb must be a positive number and --runs a positive integer');
  process.exit(2);
}

const vocabPath = path.join(modelsDir, 'vocab', 'ggml-vocab-gpt-2.gguf');
if (!fs.existsSync(vocabPath)) {
  console.error(`vocab file missing: ${vocabPath} (set PIPIT_MODELS_DIR)`);
  process.exit(1);
}
const { PipitTokenizer } = await import(pathToFileURL(path.join(libDir, 'index.js')).href);

// Common English words drawn with a Zipf-like bias, in sentences and paragraphs.
const WORDS = (
  'the of and to a in is it you that he was for on are with as I his they be at one have this ' +
  'from or had by hot word but what some we can out other were all there when up use your how ' +
  'said an each she which do their time if will way about many then them write would like so ' +
  'these her long make thing see him two has look more day could go come did number sound no ' +
  'most people my over know water than call first who may down side been now find any new work ' +
  'part take get place made live where after back little only round man year came show every ' +
  'good me give our under name very through just form sentence great think say help low line ' +
  'differ turn cause much mean before move right boy old too same tell does set three want air ' +
  "well also play small end put home read hand port large spell add even land here must big don't " +
  "it's high such follow act why ask men change went light kind off need house picture try us " +
  'again animal point mother world near build self earth father head stand own page should ' +
  'country found answer school grow study still learn plant cover food sun four between state ' +
  'keep eye never last let thought city tree cross farm hard start might story saw far sea draw ' +
  'left late run while press close night real life few north open seem together next white ' +
  'children begin got walk example ease paper group always music those both mark often letter ' +
  'until mile river car feet care second book carry took science eat room friend began idea ' +
  'fish mountain stop once base hear horse cut sure watch color face wood main enough plain ' +
  'girl usual young ready above ever red list though feel talk bird soon body dog family ' +
  'direct pose leave song measure door product black short numeral class wind question happen ' +
  'complete ship area half rock order fire south problem piece told knew pass since top whole ' +
  'king space heard best hour better true during hundred five remember step early hold west ' +
  'ground interest reach fast verb sing listen six table travel less morning ten simple several'
).split(' ');

function englishLike(bytes) {
  let seed = 0x2545f491;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const parts = [];
  let size = 0;
  while (size < bytes) {
    const sentenceWords = 6 + Math.floor(rand() * 14);
    let sentence = '';
    for (let i = 0; i < sentenceWords; i++) {
      let w = WORDS[Math.floor(WORDS.length * rand() * rand())];
      if (i === 0) w = w[0].toUpperCase() + w.slice(1);
      sentence += (i ? ' ' : '') + w;
      if (i < sentenceWords - 1 && rand() < 0.08) sentence += ',';
    }
    if (rand() < 0.05) sentence += ` ${1 + Math.floor(rand() * 2000)}`;
    sentence += rand() < 0.9 ? '.' : '?';
    sentence += rand() < 0.12 ? '\n\n' : ' ';
    parts.push(sentence);
    size += sentence.length;
  }
  return parts.join('');
}

const text = englishLike(targetBytes);
const bytes = Buffer.byteLength(text, 'utf8');
const tok = await PipitTokenizer.load(vocabPath);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// Whole text in one call, and the same text as 4 KB prompts (each call starts cold: the word
// cache lives for one call).
const chunks = [];
for (let i = 0; i < text.length; i += 4096) chunks.push(text.slice(i, i + 4096));
let tokens = tok.tokenize(text, { addBos: false }).length; // warm-up
for (const c of chunks.slice(0, 50)) tok.tokenize(c, { addBos: false });

const whole = [];
const wholeCpu = []; // this process's CPU time: steadier than wall time on a shared machine
const chunked = [];
for (let r = 0; r < runs; r++) {
  let t0 = performance.now();
  const c0 = process.cpuUsage();
  tokens = tok.tokenize(text, { addBos: false }).length;
  const c = process.cpuUsage(c0);
  whole.push(performance.now() - t0);
  wholeCpu.push((c.user + c.system) / 1000);
  t0 = performance.now();
  for (const c of chunks) tok.tokenize(c, { addBos: false });
  chunked.push(performance.now() - t0);
}
tok.dispose();

const mbps = (ms) => bytes / 1e6 / (ms / 1000);
const wholeMbps = mbps(median(whole));
const chunkMbps = mbps(median(chunked));
const cpuMbps = mbps(median(wholeCpu));
console.log(
  `tokenizer (gpt-2, WASM): ${(bytes / 1e6).toFixed(2)} MB -> ${tokens} tokens; ` +
    `whole text ${wholeMbps.toFixed(1)} MB/s (${cpuMbps.toFixed(1)} MB/s of CPU time), ` +
    `4 KB prompts ${chunkMbps.toFixed(1)} MB/s (median of ${runs})`,
);
console.log(
  JSON.stringify({
    bench: 'tokenizer',
    vocab: 'gpt-2',
    engine: 'wasm',
    bytes,
    tokens,
    runs,
    mbPerSecond: Number(wholeMbps.toFixed(2)),
    mbPerSecondCpu: Number(cpuMbps.toFixed(2)),
    mbPerSecondPrompts4k: Number(chunkMbps.toFixed(2)),
    msWhole: whole.map((x) => Number(x.toFixed(1))),
    msPrompts4k: chunked.map((x) => Number(x.toFixed(1))),
  }),
);
