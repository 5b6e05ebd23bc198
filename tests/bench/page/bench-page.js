// The browser half of scripts/bench.mjs: pipit and wllama on the same model bytes in the same
// page, runs interleaved. The driver calls window.benchApi.* through playwright and formats
// the results; everything here returns plain JSON-able objects.
import { Pipit } from '/lib/index.js';
import { Wllama } from '/wllama/index.js';

const WLLAMA_PATHS = { default: '/wllama/wasm/wllama.wasm' };
const quiet = { debug() {}, log() {}, warn: console.warn, error: console.error };

function log(message) {
  console.log(`[page] ${message}`);
}

// Each runtime behind one interface: load() -> ms, run() -> the engine's own timings of one
// greedy generation, dispose().
function pipitRunner(threads) {
  let model = null;
  return {
    runtime: 'pipit',
    threads,
    async load(bytes, ctx) {
      const start = performance.now();
      model = await Pipit.load(new Uint8Array(bytes), { contextLength: ctx, threads });
      if (model.info.threads !== threads) {
        throw new Error(`pipit runs ${model.info.threads} threads, not the ${threads} asked for`);
      }
      return {
        loadMs: performance.now() - start,
        wasmMemoryAfterLoadBytes: model.wasmMemoryBytes,
        engine: model.info.engine,
      };
    },
    // The heap never shrinks, so its size after a run is the peak so far (the same prompt
    // never needs more later).
    peakMemory() {
      return { wasmMemoryBytes: model.wasmMemoryBytes };
    },
    promptTokens(prompt) {
      return model.tokenize(prompt).length;
    },
    async run(prompt, decodeTokens) {
      const steps = model.generateTokens(prompt, {
        maxTokens: decodeTokens,
        temperature: 0,
        ignoreEos: true,
      });
      let r = await steps.next();
      while (!r.done) r = await steps.next();
      const t = r.value.timings;
      // decodeMs covers decodeTokens evaluations (the first generated token comes from the
      // prefill's logits, the last is sampled but never evaluated).
      return {
        prefillTokens: t.prefillTokens,
        prefillMs: t.prefillMs,
        decodeTokens: t.decodeTokens,
        decodeMs: t.decodeMs,
      };
    },
    async dispose() {
      model?.dispose();
      model = null;
    },
  };
}

function wllamaRunner(threads, banned) {
  let w = null;
  return {
    runtime: 'wllama',
    threads,
    async load(bytes, ctx) {
      w = new Wllama(WLLAMA_PATHS, { suppressNativeLog: true, logger: quiet });
      // Never fall back to the "compat" build, which it would fetch from a CDN.
      w.setCompat(null);
      const start = performance.now();
      await w.loadModel([new Blob([bytes])], {
        n_ctx: ctx,
        n_threads: threads,
        n_gpu_layers: 0,
        n_batch: 512,
        // llama.cpp would run the model once inside loadModel; the bench warms every runtime
        // up itself, so load times compare loading.
        warmup: false,
      });
      const loadMs = performance.now() - start;
      const got = w.getNumThreads();
      if (got !== threads) throw new Error(`wllama runs ${got} threads, not the ${threads} asked for`);
      return { loadMs, multithread: w.isMultithread() };
    },
    promptTokens: null,
    peakMemory: null,
    async run(prompt, decodeTokens) {
      // Not streamed: in this build each streamed chunk costs the worker a round trip that
      // lands inside its timings (seen: decode up to 2x slower), and the yardstick should be
      // wllama at its best.
      const { timings } = await w.createCompletion({
        prompt,
        n_predict: decodeTokens,
        temperature: 0,
        ignore_eos: true,
        cache_prompt: false,
        // Greedy decoding of random weights may pick a byte token that is no character on its
        // own, and wllama then fails the request: such tokens can never be chosen.
        logit_bias: banned.map((id) => [id, false]),
      });
      if (!timings) throw new Error('wllama sent no timings');
      // predicted_ms runs from the first generated token to the last: predicted_n - 1
      // evaluations (llama.cpp's own tok/s divides predicted_n by it).
      return {
        prefillTokens: timings.prompt_n,
        prefillMs: timings.prompt_ms,
        decodeTokens: timings.predicted_n - 1,
        decodeMs: timings.predicted_ms,
      };
    },
    async dispose() {
      await w?.exit();
      w = null;
    },
  };
}

async function bandwidth(megabytes, repeats) {
  const { default: createBandwidthModule } = await import('/probe/pipit-bandwidth.mjs');
  const mod = await createBandwidthModule({
    locateFile: (path) => new URL(path, new URL('/probe/', location.href)).href,
  });
  return mod._pipit_read_bandwidth(megabytes, repeats);
}

/**
 * spec: { name, url, prompt, decodeTokens, runs, ctx, banned: number[],
 *         pipitThreads: number[], wllamaThreads: number[] }
 * Loads every runner, warms each up once, then `runs` rounds in which every runner runs once
 * (the order rotating from round to round).
 */
async function runModel(spec) {
  const fetchStart = performance.now();
  const bytes = await (await fetch(spec.url)).arrayBuffer();
  const fetchMs = performance.now() - fetchStart;
  log(`${spec.name}: fetched ${bytes.byteLength} bytes in ${fetchMs.toFixed(0)} ms`);

  const runners = [
    ...spec.pipitThreads.map((t) => pipitRunner(t)),
    ...spec.wllamaThreads.map((t) => wllamaRunner(t, spec.banned)),
  ];
  const results = runners.map((r) => ({ runtime: r.runtime, threads: r.threads, runs: [] }));
  const firstPipit = runners.find((r) => r.runtime === 'pipit');
  try {
    for (const [i, r] of runners.entries()) {
      Object.assign(results[i], await r.load(bytes, spec.ctx));
      if (r.promptTokens) results[i].promptTokens = r.promptTokens(spec.prompt);
      log(`${spec.name}: ${r.runtime} ${r.threads}T loaded in ${results[i].loadMs.toFixed(0)} ms`);
      await r.run(spec.prompt, spec.decodeTokens);  // warm-up: the first run is slower
      // Every pipit instance of the page shares one engine and so one heap: only the first,
      // measured after its warm-up and before the next loads, shows what one model costs.
      if (r === firstPipit) Object.assign(results[i], r.peakMemory());
      else delete results[i].wasmMemoryAfterLoadBytes;
    }
    for (let round = 0; round < spec.runs; ++round) {
      for (let k = 0; k < runners.length; ++k) {
        const i = (round + k) % runners.length;
        results[i].runs.push(await runners[i].run(spec.prompt, spec.decodeTokens));
      }
      log(`${spec.name}: round ${round + 1}/${spec.runs} done`);
    }
  } finally {
    for (const r of runners) await r.dispose();
  }
  return { fetchMs, fileBytes: bytes.byteLength, results };
}

window.benchApi = { bandwidth, runModel, crossOriginIsolated: self.crossOriginIsolated };
window.benchReady = true;
