// A 5-turn chat on stories260K through the built package, once reusing the KV cache of the
// conversation's unchanged start (what Pipit#chat does) and once prefilling every turn from
// scratch; prints what reuse saved, then one JSON line for `npm run bench`:
//   {"bench":"chat","turns":5,"promptTokens":...,"reusedTokens":...,"prefillMsReused":...,...}
//   node tests/bench/chat.bench.mjs [--turns 5] [--tokens 16]
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { libDir, storiesPath } from '../node/helpers.mjs';

const { values } = parseArgs({
  options: { turns: { type: 'string', default: '5' }, tokens: { type: 'string', default: '16' } },
});
const turns = Number(values.turns);
const answerTokens = Number(values.tokens);
if (!Number.isInteger(turns) || turns < 1 || !Number.isInteger(answerTokens) || answerTokens < 1) {
  console.error('--turns and --tokens take positive integers');
  process.exit(2);
}
if (!fs.existsSync(storiesPath)) {
  console.error(`model file missing: ${storiesPath} (set PIPIT_MODELS_DIR)`);
  process.exit(1);
}
const { Pipit } = await import(pathToFileURL(path.join(libDir, 'index.js')).href);

const QUESTIONS = [
  'Tell me a story about a dog.',
  'What did the dog find?',
  'Who was its friend?',
  'Where did they go next?',
  'How did the story end?',
];

// One conversation; `cachePrompt` decides whether a turn may keep the previous context.
async function converse(cachePrompt) {
  const model = await Pipit.load(storiesPath, { contextLength: 2048, threads: 1 });
  const messages = [{ role: 'system', content: 'You are a storyteller.' }];
  const total = { promptTokens: 0, reusedTokens: 0, prefillMs: 0 };
  for (let t = 0; t < turns; ++t) {
    messages.push({ role: 'user', content: QUESTIONS[t % QUESTIONS.length] });
    const chat = model.chat(messages, {
      chatTemplate: 'chatml', maxTokens: answerTokens, temperature: 0, ignoreEos: true, cachePrompt,
    });
    let answer = '';
    let r = await chat.next();
    for (; !r.done; r = await chat.next()) answer += r.value;
    messages.push({ role: 'assistant', content: answer });
    total.promptTokens += r.value.promptIds.length;
    total.reusedTokens += r.value.timings.reusedTokens;
    total.prefillMs += r.value.timings.prefillMs;
  }
  model.dispose();
  return total;
}

const reused = await converse(true);
const fresh = await converse(false);
const saved = reused.reusedTokens / reused.promptTokens;
console.log(
  `chat: ${turns} turns, ${reused.promptTokens} prompt tokens, ${reused.reusedTokens} reused ` +
    `(${(100 * saved).toFixed(0)}% of prefill saved); prefill ${reused.prefillMs.toFixed(1)} ms ` +
    `with reuse vs ${fresh.prefillMs.toFixed(1)} ms without`,
);
console.log(JSON.stringify({
  bench: 'chat',
  model: 'stories260K',
  turns,
  answerTokens,
  promptTokens: reused.promptTokens,
  reusedTokens: reused.reusedTokens,
  prefillSavedFraction: saved,
  prefillMsReused: reused.prefillMs,
  prefillMsFresh: fresh.prefillMs,
}));
