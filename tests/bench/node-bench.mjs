#!/usr/bin/env node
// pipit under Node, the way the package runs there: one model, a warm-up generation, then
// `runs` measured ones. web/scripts/bench.mjs starts this in its own process (so every model gets
// a fresh WASM heap) and reads the one JSON line it prints.
//   node tests/bench/node-bench.mjs '{"file":..., "prompt":..., "decodeTokens":64, "runs":3, "ctx":512, "threads":2}'
import { readFile } from 'node:fs/promises';

import { Pipit } from '../../web/lib/index.js';

const spec = JSON.parse(process.argv[2]);
const bytes = await readFile(spec.file);
const start = performance.now();
const model = await Pipit.load(bytes, { contextLength: spec.ctx, threads: spec.threads ?? 1 });
const loadMs = performance.now() - start;
const wasmMemoryAfterLoadBytes = model.wasmMemoryBytes;

async function run() {
  const steps = model.generateTokens(spec.prompt, {
    maxTokens: spec.decodeTokens,
    temperature: 0,
    ignoreEos: true,
  });
  let r = await steps.next();
  while (!r.done) r = await steps.next();
  const t = r.value.timings;
  return {
    prefillTokens: t.prefillTokens,
    prefillMs: t.prefillMs,
    decodeTokens: t.decodeTokens,
    decodeMs: t.decodeMs,
  };
}

await run();
const runs = [];
for (let i = 0; i < spec.runs; ++i) runs.push(await run());
const result = {
  runtime: 'pipit',
  // What the model really computes with (Pipit caps threads at the cores there are).
  threads: model.info.threads,
  engine: model.info.engine,
  loadMs,
  wasmMemoryAfterLoadBytes,
  // The heap never shrinks: its size now is the peak.
  wasmMemoryBytes: model.wasmMemoryBytes,
  promptTokens: model.tokenize(spec.prompt).length,
  runs,
};
model.dispose();
process.stdout.write(`${JSON.stringify(result)}\n`);
