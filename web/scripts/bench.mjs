#!/usr/bin/env node
// `npm run bench`: pipit against wllama (llama.cpp in WASM) on the same GGUF files, in the same
// headless Chromium page, runs interleaved; pipit also under Node and natively. Prints a table
// and, last, one JSON line with every number. See tests/bench/README.md.
//
//   node web/scripts/bench.mjs [--model smol,qwen] [--quant Q8_0,Q4_0,Q4_K_M] [--runs 3]
//       [--prompt-tokens 128] [--decode 64] [--ctx 512] [--wllama-threads 1,2]
//       [--pipit-threads 1,2] [--env browser,node,native] [--simd relaxed,simd128] [--no-build]
//       [--no-extras]
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { JOBS, ROOT, ScriptError, emscriptenEnv, isMain, log, run } from './common.mjs';
import { NATIVE_DIR, WASM_DIR, build } from './build.mjs';

const CHROMIUM = '/usr/bin/chromium';
const CACHE = path.join(ROOT, '.cache', 'bench-models');
const ENVS = ['browser', 'node', 'native'];
// pipit's engines in the browser: relaxed SIMD where Chromium has it (it does), and SIMD128 as
// browsers without relaxed SIMD run it (the page hides relaxed SIMD from the engine picker).
const SIMDS = ['relaxed', 'simd128'];
const BANDWIDTH_MB = 256; // far beyond any cache of these machines
const BANDWIDTH_REPEATS = 5;

// Real models' shapes (random weights; speed does not depend on their values).
export const MODELS = {
  smol: {
    label: 'SmolLM2-135M',
    args: ['--arch', 'llama', '--n-vocab', '49152', '--n-embd', '576', '--n-layer', '30',
      '--n-head', '9', '--n-head-kv', '3', '--n-ff', '1536', '--n-ctx', '2048',
      '--rope-base', '100000', '--tied'],
  },
  qwen: {
    label: 'Qwen2.5-0.5B',
    args: ['--arch', 'qwen2', '--n-vocab', '151936', '--n-embd', '896', '--n-layer', '24',
      '--n-head', '14', '--n-head-kv', '2', '--n-ff', '4864', '--n-ctx', '32768',
      '--rope-base', '1000000', '--tied'],
  },
};
export const QUANTS = ['Q8_0', 'Q4_0', 'Q4_K_M'];

// The package's other speed figures: tokenizer throughput, the prefill a multi-turn chat saves
// by reusing its KV cache, and what JSON-constrained decoding costs per token. Each script
// prints a summary and then one JSON line.
function runExtras() {
  const out = {};
  const scripts = [['tokenizer', 'tokenizer.bench.mjs'], ['chat', 'chat.bench.mjs'], ['grammar', 'grammar.bench.mjs']];
  for (const [key, script] of scripts) {
    const file = path.join(ROOT, 'tests', 'bench', script);
    const r = spawnSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new ScriptError(`${script} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
    const lines = r.stdout.trim().split('\n');
    out[key] = JSON.parse(lines.pop());
    for (const line of lines) process.stdout.write(`${line}\n`);
  }
  return out;
}

function parseArgs(argv) {
  const o = {
    models: Object.keys(MODELS),
    quants: QUANTS,
    runs: 3,
    promptTokens: 128,
    decode: 64,
    ctx: 512,
    wllamaThreads: [1, 2],
    pipitThreads: [1, 2],
    envs: ENVS,
    simds: SIMDS,
    build: true,
    extras: true,
  };
  const list = (v) => v.split(',').filter(Boolean);
  const ints = (flag, v) =>
    list(v).map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < 1) throw new ScriptError(`${flag} takes positive integers, not '${x}'`);
      return n;
    });
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let inline;
    if (arg.includes('=')) [arg, inline] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)];
    const value = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new ScriptError(`${arg} needs a value`);
      return argv[++i];
    };
    const pick = (allowed) => {
      const got = list(value());
      for (const g of got) if (!allowed.includes(g)) throw new ScriptError(`${arg}: '${g}' is not one of ${allowed.join(', ')}`);
      return got;
    };
    switch (arg) {
      case '--model': o.models = pick(Object.keys(MODELS)); break;
      case '--quant': o.quants = pick(QUANTS); break;
      case '--env': o.envs = pick(ENVS); break;
      case '--simd': o.simds = pick(SIMDS); break;
      case '--runs': [o.runs] = ints(arg, value()); break;
      case '--prompt-tokens': [o.promptTokens] = ints(arg, value()); break;
      case '--decode': [o.decode] = ints(arg, value()); break;
      case '--ctx': [o.ctx] = ints(arg, value()); break;
      case '--wllama-threads': o.wllamaThreads = ints(arg, value()); break;
      case '--pipit-threads': o.pipitThreads = ints(arg, value()); break;
      case '--no-build': o.build = false; break;
      case '--no-extras': o.extras = false; break;
      default:
        throw new ScriptError(`unknown option ${arg} (--model ${Object.keys(MODELS).join(',')}, --quant ` +
          `${QUANTS.join(',')}, --runs N, --prompt-tokens N, --decode N, --ctx N, --wllama-threads ` +
          `1,2, --pipit-threads 1,2, --env ${ENVS.join(',')}, --simd ${SIMDS.join(',')}, --no-build, --no-extras)`);
    }
  }
  if (o.promptTokens + o.decode > o.ctx) {
    throw new ScriptError(`--ctx ${o.ctx} cannot hold ${o.promptTokens} prompt + ${o.decode} generated tokens`);
  }
  return o;
}

// ---------------------------------------------------------------- building and model files

function buildAll() {
  build({ deps: false });
  run('ninja', ['-C', NATIVE_DIR, `-j${JOBS}`, 'pipit-gguf', 'pipit-bench', 'pipit-bandwidth']);
  run('ninja', ['-C', WASM_DIR, `-j${JOBS}`, 'pipit-bandwidth'], { env: emscriptenEnv() });
}

const tool = (name) => path.join(NATIVE_DIR, name === 'pipit-gguf' ? '' : 'bench', name);

function requireFile(file, hint) {
  if (!existsSync(file)) throw new ScriptError(`${path.relative(ROOT, file)} is missing: ${hint}`);
}

// Written once by the project's own writer, then reused; a half-written file never gets the
// final name.
function ensureModel(model, quant) {
  const file = path.join(CACHE, `${model}-${quant}.gguf`);
  if (existsSync(file)) return file;
  mkdirSync(CACHE, { recursive: true });
  const partial = `${file}.partial`;
  run(tool('pipit-gguf'), ['synth', '--out', partial, ...MODELS[model].args, '--type', quant, '--seed', '1',
    '--name', `pipit bench ${MODELS[model].label} shape`]);
  renameSync(partial, file);
  return file;
}

function runJson(command, args) {
  const r = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    throw new ScriptError(`${path.basename(command)} ${args[0]} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  }
  const last = r.stdout.trim().split('\n').pop();
  return JSON.parse(last);
}

// The generated vocab has a single-token word for every letter string, so BOS plus n - 1
// short words make an n-token prompt; both runtimes' counts are checked against it.
function letters(k) {
  let s = '';
  for (; k > 0; k = Math.floor((k - 1) / 26)) s = String.fromCharCode(97 + ((k - 1) % 26)) + s;
  return s;
}
const promptOf = (tokens) => Array.from({ length: tokens - 1 }, (_, i) => letters(i + 1)).join(' ');

// ---------------------------------------------------------------- statistics

const median = (xs) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// Medians of each run's own rate (tokens / its engine-measured time).
function summarize(r) {
  const rate = (tokens, ms) => (ms > 0 ? (tokens * 1000) / ms : NaN);
  return {
    prefillTokens: median(r.runs.map((x) => x.prefillTokens)),
    prefillTps: median(r.runs.map((x) => rate(x.prefillTokens, x.prefillMs))),
    decodeTokens: median(r.runs.map((x) => x.decodeTokens)),
    decodeTps: median(r.runs.map((x) => rate(x.decodeTokens, x.decodeMs))),
  };
}

// ---------------------------------------------------------------- browser

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.json': 'application/json',
  '.gguf': 'application/octet-stream',
};

// URL prefix -> directory. Everything the page loads comes from here: no CDN, no network.
function routes() {
  return [
    ['/bench/', path.join(ROOT, 'tests', 'bench', 'page')],
    ['/lib/', path.join(ROOT, 'web', 'lib')],
    ['/wllama/', path.join(ROOT, 'node_modules', '@wllama', 'wllama', 'esm')],
    ['/probe/', path.join(WASM_DIR, 'bench')],
    ['/models/', CACHE],
  ];
}

function startServer() {
  const table = routes();
  const server = http.createServer((req, res) => {
    // Cross-origin isolation: wllama's 2-thread build needs SharedArrayBuffer.
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    };
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400, headers).end();
      return;
    }
    if (pathname.endsWith('/')) pathname += 'index.html';
    for (const [prefix, dir] of table) {
      if (!pathname.startsWith(prefix)) continue;
      const file = path.join(dir, pathname.slice(prefix.length));
      if (!file.startsWith(dir + path.sep) || !existsSync(file) || !statSync(file).isFile()) break;
      res.writeHead(200, {
        ...headers,
        'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        'Content-Length': statSync(file).size,
      });
      createReadStream(file).pipe(res);
      return;
    }
    res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end(`not found: ${pathname}`);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function withBrowser(fn) {
  requireFile(CHROMIUM, 'install the Debian package chromium');
  const server = await startServer();
  const base = `http://127.0.0.1:${server.address().port}`;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  // A fresh page per model: pipit's WASM heap only grows, so memory is measured from scratch.
  const openPage = async (simd = 'relaxed') => {
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning' || m.text().startsWith('[page]')) log(`browser: ${m.text()}`);
    });
    page.on('pageerror', (e) => log(`browser error: ${e.message}`));
    await page.goto(`${base}/bench/?simd=${simd}`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 60000 });
    if (!(await page.evaluate(() => window.benchApi.crossOriginIsolated))) {
      throw new ScriptError('the bench page is not cross-origin isolated (COOP/COEP headers)');
    }
    return page;
  };
  try {
    return await fn(openPage);
  } finally {
    await browser.close().catch(() => undefined);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

// ---------------------------------------------------------------- node

async function nodeBandwidth() {
  const js = path.join(WASM_DIR, 'bench', 'pipit-bandwidth.mjs');
  const { default: create } = await import(pathToFileURL(js).href);
  const mod = await create({ wasmBinary: readFileSync(js.replace(/\.mjs$/, '.wasm')) });
  return mod._pipit_read_bandwidth(BANDWIDTH_MB, BANDWIDTH_REPEATS);
}

// ---------------------------------------------------------------- report

const fmt = (v, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '-');

// Per file and engine with 1- and 2-thread pipit rows: the 2-thread decode speed over the
// 1-thread one, and its ceiling, the 2-thread read bandwidth over the 1-thread read rate.
function twoThreadScaling(rows, twoThreadGBps) {
  const out = [];
  for (const one of rows) {
    if (one.runtime !== 'pipit' || one.threads !== 1) continue;
    const two = rows.find((r) => r.runtime === 'pipit' && r.threads === 2 && r.model === one.model &&
      r.quant === one.quant && r.env === one.env && r.engine === one.engine);
    if (!two) continue;
    let line = out.find((l) => l.model === one.model && l.quant === one.quant);
    if (!line) out.push(line = { model: one.model, quant: one.quant, runs: [] });
    line.runs.push({
      env: one.env, engine: one.engine, runtime: one.runtime, ratio: two.decodeTps / one.decodeTps,
      ceiling: twoThreadGBps ? (twoThreadGBps * 1e9) / (one.weightBytesPerToken * one.decodeTps) : undefined,
    });
  }
  return out;
}

function printTable(rows) {
  const head = ['model', 'quant', 'env', 'runtime', 'engine', 'thr', 'load ms', 'prompt', 'prefill t/s',
    'decode t/s', 'x wllama pre', 'x wllama dec', 'eff %', 'mem MB', 'budget MB'];
  const lines = [head];
  for (const r of rows) {
    lines.push([
      r.model, r.quant, r.env, r.runtime, r.engine, String(r.threads), fmt(r.loadMs, 0),
      `${r.prefillTokens}${r.prefillTokens === r.promptTokensExpected ? '' : '!'}`,
      fmt(r.prefillTps), fmt(r.decodeTps, 2), r.prefillRatio === undefined ? '' : fmt(r.prefillRatio, 2),
      r.decodeRatio === undefined ? '' : fmt(r.decodeRatio, 2), fmt(r.efficiency * 100, 0),
      r.wasmMemoryBytes ? fmt(r.wasmMemoryBytes / 2 ** 20, 0) : '',
      r.memoryBudgetBytes ? fmt(r.memoryBudgetBytes / 2 ** 20, 0) : '',
    ]);
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const right = new Set([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
  process.stdout.write('\n');
  for (const l of lines) {
    process.stdout.write(`${l.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')}\n`);
  }
}

// ---------------------------------------------------------------- main

export async function main(argv) {
  const o = parseArgs(argv);
  if (o.build) buildAll();
  requireFile(tool('pipit-bench'), 'build it with npm run bench (without --no-build)');
  requireFile(path.join(ROOT, 'web', 'lib', 'wasm', 'pipit.wasm'), 'npm run build');

  const prompt = promptOf(o.promptTokens);
  const models = [];
  for (const model of o.models) {
    for (const quant of o.quants) {
      const file = ensureModel(model, quant);
      models.push({ model, quant, file, info: runJson(tool('pipit-bench'), ['info', file]) });
    }
  }

  // The roof is what the machine can give, but its neighbours take their share at times:
  // measured before and after the runs, the better of the two counts.
  const bandwidth = {};
  const measure = async (env, fn) => {
    const gbps = await fn();
    bandwidth[env] = Math.max(bandwidth[env] ?? 0, gbps);
    log(`${env} read bandwidth ${fmt(gbps, 2)} GB/s`);
  };
  const nativeBandwidth = () =>
    runJson(tool('pipit-bandwidth'), [String(BANDWIDTH_MB), String(BANDWIDTH_REPEATS)]).gbps;
  const browserBandwidth = async (openPage) => {
    const page = await openPage();
    const gbps = await page.evaluate(([mb, reps]) => window.benchApi.bandwidth(mb, reps),
      [BANDWIDTH_MB, BANDWIDTH_REPEATS]);
    await page.close();
    return gbps;
  };
  // Decoding on two threads reads what one does, faster: the memory system's two-thread read
  // rate caps how much faster (measured natively, where the WASM engines' threads read too).
  let twoThreadBandwidth = 0;
  const measureTwoThreads = () => {
    const gbps = runJson(tool('pipit-bandwidth'), [String(BANDWIDTH_MB), String(BANDWIDTH_REPEATS), '2']).gbps;
    twoThreadBandwidth = Math.max(twoThreadBandwidth, gbps);
    log(`native read bandwidth with 2 threads ${fmt(gbps, 2)} GB/s`);
  };
  if (o.envs.includes('native')) await measure('native', nativeBandwidth);
  if (o.envs.includes('node')) await measure('node', nodeBandwidth);
  measureTwoThreads();
  const raw = []; // { model, quant, file, info, env, result }
  if (o.envs.includes('browser')) {
    await withBrowser(async (openPage) => {
      await measure('browser', () => browserBandwidth(openPage));
      for (const m of models) {
        // wllama runs once, on the first page, beside pipit's first engine.
        for (const [i, simd] of o.simds.entries()) {
          log(`browser: ${m.model} ${m.quant} (${simd})`);
          const p = await openPage(simd);
          const out = await p.evaluate((spec) => window.benchApi.runModel(spec), {
            name: `${m.model}-${m.quant}`,
            url: `/models/${path.basename(m.file)}`,
            prompt,
            decodeTokens: o.decode,
            runs: o.runs,
            ctx: o.ctx,
            banned: m.info.invalidUtf8Tokens,
            pipitThreads: o.pipitThreads,
            wllamaThreads: i === 0 ? o.wllamaThreads : [],
          });
          await p.close();
          for (const result of out.results) raw.push({ ...m, env: 'browser', result });
        }
      }
      await measure('browser', () => browserBandwidth(openPage));
    });
  }
  for (const m of models) {
    for (const threads of o.pipitThreads) {
      const spec = { file: m.file, prompt, decodeTokens: o.decode, runs: o.runs, ctx: o.ctx, threads };
      if (o.envs.includes('node')) {
        log(`node: ${m.model} ${m.quant}, ${threads} thread(s)`);
        const result = runJson(process.execPath, [path.join(ROOT, 'tests', 'bench', 'node-bench.mjs'), JSON.stringify(spec)]);
        if (result.threads !== threads) throw new ScriptError(`node ran ${result.threads} thread(s), not ${threads}`);
        raw.push({ ...m, env: 'node', result });
      }
      if (o.envs.includes('native')) {
        log(`native: ${m.model} ${m.quant}, ${threads} thread(s)`);
        const result = runJson(tool('pipit-bench'), ['run', m.file, '--prompt', prompt, '--decode', String(o.decode),
          '--runs', String(o.runs), '--ctx', String(o.ctx), '--threads', String(threads)]);
        raw.push({ ...m, env: 'native', result: { runtime: 'pipit', ...result } });
      }
    }
  }
  if (o.envs.includes('node')) await measure('node', nodeBandwidth);
  if (o.envs.includes('native')) await measure('native', nativeBandwidth);
  measureTwoThreads();

  const rows = raw.map(({ model, quant, env, info, result }) => {
    const s = summarize(result);
    return {
      model, quant, env, runtime: result.runtime, engine: result.engine ?? '', threads: result.threads,
      loadMs: result.loadMs,
      promptTokensExpected: o.promptTokens,
      promptTokens: result.promptTokens ?? s.prefillTokens,
      ...s,
      efficiency: (info.weightBytesPerToken * s.decodeTps) / (bandwidth[env] * 1e9),
      wasmMemoryBytes: result.wasmMemoryBytes,
      wasmMemoryAfterLoadBytes: result.wasmMemoryAfterLoadBytes,
      memoryBudgetBytes: result.wasmMemoryBytes ? info.fileBytes + info.kvBytesPerToken * o.ctx + 64 * 2 ** 20 : undefined,
      fileBytes: info.fileBytes,
      weightBytesPerToken: info.weightBytesPerToken,
      runs: result.runs,
    };
  });
  // Ratios: every pipit row against browser wllama at the same thread count on the same file.
  for (const r of rows) {
    if (r.runtime !== 'pipit') continue;
    const peer = rows.find((w) => w.runtime === 'wllama' && w.env === 'browser' && w.model === r.model &&
      w.quant === r.quant && w.threads === r.threads);
    if (!peer) continue;
    r.prefillRatio = r.prefillTps / peer.prefillTps;
    r.decodeRatio = r.decodeTps / peer.decodeTps;
  }
  const order = (r) => [o.models.indexOf(r.model), o.quants.indexOf(r.quant), ENVS.indexOf(r.env), r.runtime === 'pipit' ? 0 : 1,
    r.engine.endsWith('-relaxed') ? 0 : 1, r.threads];
  rows.sort((a, b) => {
    const x = order(a), y = order(b);
    for (let i = 0; i < x.length; ++i) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
  });
  printTable(rows);
  const bw = Object.entries(bandwidth).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ');
  process.stdout.write(`\nread bandwidth GB/s (${BANDWIDTH_MB} MB, 1 thread, best of before/after): ${bw}; ` +
    `prompt ${o.promptTokens} tokens ('!' = a runtime saw another count), decode ${o.decode}, ` +
    `ctx ${o.ctx}, ${o.runs} runs after a warm-up, medians\n`);
  const scaling = twoThreadScaling(rows, twoThreadBandwidth);
  if (scaling.length) {
    process.stdout.write(`2 threads ÷ 1 thread, decode (in brackets the most the memory system allows: ` +
      `${fmt(twoThreadBandwidth, 2)} GB/s read natively on 2 threads ÷ what 1 thread reads decoding):\n`);
    for (const line of scaling) {
      process.stdout.write(`  ${line.model} ${line.quant}: ${line.runs.map((x) =>
        `${x.env} ${x.engine || x.runtime} ${fmt(x.ratio, 2)} (${fmt(x.ceiling, 2)})`).join(', ')}\n`);
    }
  }
  const extras = o.extras ? runExtras() : {};
  const json = {
    bench: 'pipit-vs-wllama',
    date: new Date().toISOString(),
    options: { runs: o.runs, promptTokens: o.promptTokens, decode: o.decode, ctx: o.ctx },
    bandwidthGBps: bandwidth,
    twoThreadBandwidthGBps: twoThreadBandwidth,
    twoThreadScaling: scaling,
    rows: rows.map(({ promptTokensExpected, ...r }) => r),
    ...extras,
  };
  process.stdout.write(`${JSON.stringify(json)}\n`);
  return 0;
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`[pipit] bench failed: ${error.message}\n`);
      process.exit(1);
    },
  );
}
