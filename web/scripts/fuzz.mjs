#!/usr/bin/env node
// The hardening trees and runs:
//   build/asan  clang, AddressSanitizer + UndefinedBehaviorSanitizer (-fno-sanitize-recover),
//               libFuzzer hooks: the gtest suite (the `sanitize` tier) and the fuzz targets
//               of tests/fuzz (the `fuzz` tier).
// Each fuzz target runs for a bounded time from its seed corpus (tests/fuzz/corpus/<target>)
// plus what earlier runs on this machine found (build/asan/fuzz-corpus/<target>); a crash, a
// sanitizer report, a leak, a time-out or an over-limit allocation fails the run and leaves the
// input in build/asan/fuzz-artifacts/. The JavaScript fuzz loops (tests/fuzz/js) cover what
// only the TypeScript layer sees: chat templates and generate options.
//
//   npm run fuzz -- [--seconds 3600] [--target gguf_model,gbnf,...] [--no-build] [--no-deps]
//                   [--jobs N]
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { JOBS, ROOT, ScriptError, findFiles, isMain, log, modelsDir, run, runCaptured, which } from './common.mjs';
import { ensureDeps } from './ensure-deps.mjs';

export const ASAN_DIR = path.join(ROOT, 'build', 'asan');
const CORPUS_DIR = path.join(ROOT, 'tests', 'fuzz', 'corpus');
const JS_FUZZ_DIR = path.join(ROOT, 'tests', 'fuzz', 'js');

// libFuzzer targets (build/asan/tests/fuzz/fuzz_<name>), each with a seed corpus directory.
export const NATIVE_TARGETS = [
  'gguf_model',
  'tokenizer_spm',
  'tokenizer_bpe',
  'tokenizer_wordpiece',
  'gbnf',
  'json_schema',
  'generate_options',
];

process.env.CCACHE_BASEDIR ??= ROOT;

export function buildAsan() {
  for (const tool of ['cmake', 'ninja', 'clang++']) {
    if (!which(tool)) throw new ScriptError(`'${tool}' not found: run npm run deps -- --for sanitize`);
  }
  const start = Date.now();
  if (!existsSync(path.join(ASAN_DIR, 'build.ninja'))) {
    run('cmake', [
      '-S', ROOT, '-B', ASAN_DIR, '-G', 'Ninja',
      '-DCMAKE_CXX_COMPILER=clang++',
      // Optimised (fuzzing speed), with line numbers in sanitizer reports.
      '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
      '-DPIPIT_FUZZ=ON',
    ]);
  }
  run('ninja', ['-C', ASAN_DIR, `-j${JOBS}`, 'pipit_tests', 'pipit-gguf', ...NATIVE_TARGETS.map((t) => `fuzz_${t}`)]);
  log(`asan build done in ${((Date.now() - start) / 1000).toFixed(1)} s`);
}

// The sanitizers' settings for every run in this tree: any report is fatal, leaks included.
export function sanitizerEnv(base = process.env) {
  return {
    ...base,
    ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1:strict_string_checks=1',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  };
}

function lastNumber(output, pattern) {
  const matches = [...output.matchAll(pattern)];
  return matches.length ? Number(matches[matches.length - 1][1]) : undefined;
}

// Seeds that are small models are written here at run time by the writer rather than kept in
// git (no model files in the repository); the hand-made edge cases are in the corpus folder.
const GENERATED_SEEDS = {
  gguf_model: [
    ['llama-q4_0-tied.gguf', ['--arch', 'llama', '--type', 'Q4_0', '--tied', '--n-embd', '32', '--n-head', '2', '--n-head-kv', '1', '--n-ff', '64']],
    ['qwen2-f32.gguf', ['--arch', 'qwen2', '--type', 'F32', '--n-embd', '16', '--n-head', '2', '--n-head-kv', '1', '--n-ff', '32']],
  ],
};

function generatedSeeds(name, env) {
  const seeds = GENERATED_SEEDS[name];
  if (!seeds) return [];
  const dir = path.join(ASAN_DIR, 'fuzz-seeds', name);
  mkdirSync(dir, { recursive: true });
  for (const [file, args] of seeds) {
    const out = path.join(dir, file);
    if (existsSync(out)) continue;
    run(path.join(ASAN_DIR, 'pipit-gguf'), ['synth', '--out', out, '--n-layer', '1', '--n-ctx', '64', '--seed', '1', ...args], { env });
  }
  return [dir];
}

// The sanitizer's own report (what went wrong and the stack) comes before its shadow-memory
// dump; the last lines name the saved input. Both are needed to act on a CI failure.
function failureReport(output) {
  const lines = output.split('\n');
  const start = lines.findIndex((line) => /ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:|ERROR: libFuzzer/.test(line));
  const tail = lines.slice(-12);
  if (start < 0) return lines.slice(-40).join('\n');
  const report = lines.slice(start, start + 60);
  return [...report, '...', ...tail].join('\n');
}

async function runNativeTarget(name, { seconds, env }) {
  const binary = path.join(ASAN_DIR, 'tests', 'fuzz', `fuzz_${name}`);
  if (!existsSync(binary)) return { name, ok: false, note: `${path.relative(ROOT, binary)} was not built` };
  const working = path.join(ASAN_DIR, 'fuzz-corpus', name);
  const artifacts = path.join(ASAN_DIR, 'fuzz-artifacts');
  mkdirSync(working, { recursive: true });
  mkdirSync(artifacts, { recursive: true });
  const before = new Set(readdirSync(artifacts));
  const args = [
    working,
    path.join(CORPUS_DIR, name),
    ...generatedSeeds(name, env),
    `-max_total_time=${seconds}`,
    '-timeout=20', // one input running longer is a hang, reported like a crash
    '-rss_limit_mb=2560',
    '-malloc_limit_mb=1024', // one allocation this large from a small input is a finding
    '-max_len=65536',
    '-print_final_stats=1',
    `-artifact_prefix=${artifacts}/${name}-`,
  ];
  const run = await runCaptured(binary, args, {
    env,
    timeoutMs: (seconds + 120) * 1000,
    quiet: true,
  });
  const execs = lastNumber(run.output, /stat::number_of_executed_units:\s*(\d+)/g);
  const newArtifacts = readdirSync(artifacts).filter((f) => f.startsWith(`${name}-`) && !before.has(f));
  const ok = run.code === 0 && !run.signal && !run.timedOut && newArtifacts.length === 0;
  let note = '';
  if (!ok) {
    process.stdout.write(`----- fuzz_${name} failed -----\n${failureReport(run.output)}\n`);
    note = newArtifacts.length
      ? `input saved: build/asan/fuzz-artifacts/${newArtifacts.join(', ')}`
      : run.timedOut ? 'did not stop' : `exit code ${run.code}${run.signal ? ` (${run.signal})` : ''}`;
  }
  return { name, ok, execs, corpus: readdirSync(working).length, note };
}

async function runJsLoop(file, { seconds, env, seed }) {
  const name = path.basename(file, '.fuzz.mjs');
  const run = await runCaptured(process.execPath, [file, `--seconds=${seconds}`, `--seed=${seed}`], {
    env,
    timeoutMs: (seconds + 180) * 1000,
    quiet: true,
  });
  const execs = lastNumber(run.output, /^fuzz: (\d+) inputs/gm);
  const ok = run.code === 0 && !run.timedOut && execs !== undefined;
  if (!ok) process.stdout.write(`----- ${name} failed -----\n${run.output.split('\n').slice(-40).join('\n')}\n`);
  return { name: `js:${name}`, ok, execs, note: ok ? `seed ${seed}` : `seed ${seed}, exit code ${run.code}` };
}

// Runs `tasks` (functions returning promises) at most `limit` at a time, keeping their order.
async function pooled(tasks, limit) {
  const results = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

// Every target for `seconds` each, `jobs` at a time. Resolves to one row per target.
export async function runFuzz({ seconds = 30, targets, jobs = Number(JOBS), seed, env = process.env } = {}) {
  const models = modelsDir();
  const runEnv = sanitizerEnv({ ...env, ...(models ? { PIPIT_MODELS_DIR: models } : {}) });
  const jsFiles = findFiles(JS_FUZZ_DIR, ['.fuzz.mjs']);
  const wanted = (name) => !targets || targets.includes(name);
  const jsSeed = seed ?? Date.now() % 1_000_000;
  const tasks = [
    ...NATIVE_TARGETS.filter(wanted).map((name) => () => runNativeTarget(name, { seconds, env: runEnv })),
    ...jsFiles
      .filter((f) => wanted(`js:${path.basename(f, '.fuzz.mjs')}`))
      .map((f) => () => runJsLoop(f, { seconds, env, seed: jsSeed })),
  ];
  if (tasks.length === 0) throw new ScriptError(`no fuzz target matches ${targets}`);
  const rows = await pooled(tasks, jobs);
  for (const r of rows) {
    log(`fuzz ${r.name.padEnd(22)} ${r.ok ? 'ok    ' : 'FAILED'} ${String(r.execs ?? '-').padStart(10)} execs` +
      `${r.corpus !== undefined ? `, corpus ${r.corpus}` : ''}${r.note ? `  ${r.note}` : ''}`);
  }
  return rows;
}

function parseArgs(argv) {
  const options = { seconds: 60, targets: undefined, build: true, deps: true, jobs: Number(JOBS), seed: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (arg.includes('=')) return arg.slice(arg.indexOf('=') + 1);
      if (i + 1 >= argv.length) throw new ScriptError(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--no-build') options.build = false;
    else if (arg === '--no-deps') options.deps = false;
    else if (arg === '--seconds' || arg.startsWith('--seconds=')) options.seconds = Number(value());
    else if (arg === '--jobs' || arg.startsWith('--jobs=')) options.jobs = Number(value());
    else if (arg === '--seed' || arg.startsWith('--seed=')) options.seed = Number(value());
    else if (arg === '--target' || arg.startsWith('--target=')) options.targets = value().split(',');
    else throw new ScriptError(`unknown option ${arg} (--seconds N, --target a,b, --jobs N, --seed N, --no-build, --no-deps)`);
  }
  if (!(options.seconds > 0)) throw new ScriptError('--seconds must be a positive number');
  return options;
}

if (isMain(import.meta.url)) {
  try {
    const options = parseArgs(process.argv.slice(2));
    if (options.deps) ensureDeps({ parts: ['sanitize', 'wasm'], npm: true });
    if (options.build) buildAsan();
    const rows = await runFuzz(options);
    process.exit(rows.every((r) => r.ok) ? 0 : 1);
  } catch (error) {
    process.stderr.write(`[pipit] fuzz failed: ${error.message}\n`);
    process.exit(1);
  }
}
