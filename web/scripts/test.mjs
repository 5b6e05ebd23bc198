#!/usr/bin/env node
// `npm test`: installs what is missing, builds, then runs every test tier in order:
//   native   build/native/pipit_tests           (gtest, x86-64)
//   wasm     node build/wasm/pipit_tests.js      (the same gtest suite in WebAssembly)
//   relaxed  node build/wasm-relaxed/pipit_tests.js  (again, built with relaxed SIMD)
//   node     node --test tests/node/**/*.test.mjs     (the npm package under Node)
//   browser  node --test tests/browser/**/*.test.mjs  (the package in headless Chromium)
//   sanitize build/asan/pipit_tests       (the gtest suite under ASan + UBSan, clang)
//   fuzz     each libFuzzer target and JS fuzz loop for --fuzz-seconds (web/scripts/fuzz.mjs)
// and ends with a per-tier table and one line `tests: N passed, N failed, N skipped`.
//
//   node web/scripts/test.mjs [--tier native,wasm,node,browser] [--no-build] [--no-deps]
//                         [--filter GTEST_FILTER] [--timeout MINUTES] [--fuzz-seconds N]
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, ScriptError, findFiles, isMain, log, modelsDir, runCaptured } from './common.mjs';
import { build } from './build.mjs';
import { ensureDeps } from './ensure-deps.mjs';
import { ASAN_DIR, buildAsan, runFuzz, sanitizerEnv } from './fuzz.mjs';

const TIERS = ['native', 'wasm', 'relaxed', 'node', 'browser', 'sanitize', 'fuzz'];
// What each tier needs built, and which Debian packages.
const NEEDS = {
  native: { build: ['native'], deps: ['native'] },
  wasm: { build: ['wasm'], deps: ['wasm'] },
  relaxed: { build: ['wasm'], deps: ['wasm'] },
  node: { build: ['wasm', 'ts'], deps: ['wasm'] },
  browser: { build: ['wasm', 'ts'], deps: ['wasm', 'browser'] },
  sanitize: { build: ['asan'], deps: ['sanitize'] },
  // the JS fuzz loops drive the package (web/lib) and its engine
  fuzz: { build: ['asan', 'wasm', 'ts'], deps: ['sanitize', 'wasm'] },
};

const ANSI = /\x1b\[[0-9;]*m/g;

// gtest's closing lines: "[  PASSED  ] 12 tests.", "[  FAILED  ] 1 test, listed below:",
// "[  SKIPPED ] 3 tests, listed below:".
export function parseGtest(output) {
  const text = output.replace(ANSI, '');
  const count = (label) => {
    const m = text.match(new RegExp(`^\\[\\s*${label}\\s*\\] (\\d+) tests?[.,]`, 'm'));
    return m ? Number(m[1]) : undefined;
  };
  const passed = count('PASSED');
  if (passed === undefined) return undefined;
  return { passed, failed: count('FAILED') ?? 0, skipped: count('SKIPPED') ?? 0 };
}

// node --test's TAP summary: "# pass 5", "# fail 0", "# cancelled 0", "# skipped 1", "# todo 0".
export function parseNodeTap(tap) {
  const count = (label) => {
    const matches = [...tap.matchAll(new RegExp(`^# ${label} (\\d+)$`, 'gm'))];
    return matches.length ? Number(matches[matches.length - 1][1]) : undefined;
  };
  const passed = count('pass');
  if (passed === undefined) return undefined;
  return {
    passed,
    failed: (count('fail') ?? 0) + (count('cancelled') ?? 0),
    skipped: (count('skipped') ?? 0) + (count('todo') ?? 0),
  };
}

function testEnv() {
  const env = { ...process.env, GTEST_COLOR: 'no' };
  const models = modelsDir();
  if (models) env.PIPIT_MODELS_DIR = models;
  if (!env.PIPIT_CHROMIUM && existsSync('/usr/bin/chromium')) env.PIPIT_CHROMIUM = '/usr/bin/chromium';
  return env;
}

function result(tier, status, counts, note = '') {
  return { tier, status, passed: 0, failed: 0, skipped: 0, ...counts, note };
}

// Turns a finished process into a tier result: a crash, a time-out, a non-zero exit or a
// missing summary is a failure even when the counts parsed say otherwise.
export function judge(tier, run, counts) {
  if (run.error) return result(tier, 'FAILED', { failed: 1 }, `could not start: ${run.error.message}`);
  if (run.timedOut) return result(tier, 'FAILED', { ...counts, failed: (counts?.failed ?? 0) + 1 }, 'timed out');
  if (!counts) {
    const how = run.signal ? `killed by ${run.signal}` : `exit code ${run.code}`;
    return result(tier, 'FAILED', { failed: 1 }, `no test summary (${how})`);
  }
  if (run.code !== 0 || run.signal) {
    const how = run.signal ? `killed by ${run.signal}` : `exit code ${run.code}`;
    return result(tier, 'FAILED', { ...counts, failed: Math.max(counts.failed, 1) }, how);
  }
  return result(tier, counts.failed ? 'FAILED' : 'ok', counts);
}

async function runGtest(tier, command, args, options) {
  const sources = findFiles(path.join(ROOT, 'tests', 'native'), ['.cpp']);
  if (sources.length === 0) return result(tier, 'SKIPPED', {}, 'no test files in tests/native/');
  const binary = args.find((a) => a.endsWith('.js')) ?? command;
  if (!existsSync(binary)) return result(tier, 'FAILED', { failed: 1 }, `${path.relative(ROOT, binary)} was not built`);
  const extra = options.filter ? [`--gtest_filter=${options.filter}`] : [];
  const run = await runCaptured(command, [...args, '--gtest_color=no', ...extra], {
    env: options.env,
    timeoutMs: options.timeoutMs,
  });
  return judge(tier, run, parseGtest(run.output));
}

async function runNodeTests(tier, dir, options) {
  const files = findFiles(path.join(ROOT, 'tests', dir), ['.test.mjs', '.test.js']);
  if (files.length === 0) return result(tier, 'SKIPPED', {}, `no test files in tests/${dir}/`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pipit-tap-'));
  const tapFile = path.join(tmp, 'report.tap');
  try {
    const args = [
      '--test',
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tapFile}`,
    ];
    if (options.filter) args.push(`--test-name-pattern=${options.filter}`);
    const run = await runCaptured(process.execPath, [...args, ...files.map((f) => path.relative(ROOT, f))], {
      // Models the tests download are cached in the run's own directory, never ~/.cache.
      env: { PIPIT_CACHE_DIR: path.join(tmp, 'model-cache'), ...options.env },
      timeoutMs: options.timeoutMs,
    });
    const tap = existsSync(tapFile) ? readFileSync(tapFile, 'utf8') : '';
    return judge(tier, run, parseNodeTap(tap));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function runTier(tier, options) {
  log(`===== tier ${tier} =====`);
  const start = Date.now();
  let res;
  switch (tier) {
    case 'native':
      res = await runGtest(tier, path.join(ROOT, 'build', 'native', 'pipit_tests'), [], options);
      break;
    case 'wasm':
      res = await runGtest(tier, process.execPath, [path.join(ROOT, 'build', 'wasm', 'pipit_tests.js')], options);
      break;
    case 'relaxed':
      // Node 20's V8 has relaxed SIMD behind a flag (browsers ship it), and its baseline
      // compiler doubles every relaxed dot-add: the suite, which runs the fused kernels
      // whatever the engine would pick (rows_of_4.h), runs optimized code only.
      res = await runGtest(tier, process.execPath,
        ['--experimental-wasm-relaxed-simd', '--no-liftoff', path.join(ROOT, 'build', 'wasm-relaxed', 'pipit_tests.js')], options);
      break;
    case 'node':
      res = await runNodeTests(tier, 'node', options);
      break;
    case 'browser':
      res = await runNodeTests(tier, 'browser', options);
      break;
    case 'sanitize':
      res = await runGtest(tier, path.join(ASAN_DIR, 'pipit_tests'), [], { ...options, env: sanitizerEnv(options.env) });
      break;
    case 'fuzz':
      res = await runFuzzTier(tier, options);
      break;
  }
  res.seconds = (Date.now() - start) / 1000;
  return res;
}

// One passed or failed count per fuzz target; the note carries the executions.
async function runFuzzTier(tier, options) {
  const rows = await runFuzz({ seconds: options.fuzzSeconds, env: options.env });
  const failed = rows.filter((r) => !r.ok);
  const execs = rows.map((r) => `${r.name} ${r.execs ?? '-'}`).join(', ');
  return result(tier, failed.length ? 'FAILED' : 'ok', { passed: rows.length - failed.length, failed: failed.length },
    `${options.fuzzSeconds} s each; execs: ${execs}`);
}

function printSummary(results) {
  const rows = [['tier', 'status', 'passed', 'failed', 'skipped', 'time', 'note']];
  for (const r of results) {
    rows.push([r.tier, r.status, r.passed, r.failed, r.skipped, r.seconds === undefined ? '-' : `${r.seconds.toFixed(1)}s`, r.note]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => String(row[i]).length)));
  process.stdout.write('\n');
  for (const row of rows) {
    process.stdout.write(`${row.map((cell, i) => String(cell).padEnd(widths[i])).join('  ').trimEnd()}\n`);
  }
  const total = (key) => results.reduce((sum, r) => sum + r[key], 0);
  process.stdout.write(`tests: ${total('passed')} passed, ${total('failed')} failed, ${total('skipped')} skipped\n`);
  return total('failed');
}

function parseArgs(argv) {
  const options = { tiers: TIERS, build: true, deps: true, filter: undefined, timeoutMs: 30 * 60 * 1000, fuzzSeconds: 60 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (arg.includes('=')) return arg.slice(arg.indexOf('=') + 1);
      if (i + 1 >= argv.length) throw new ScriptError(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--no-build') options.build = false;
    else if (arg === '--no-deps') options.deps = false;
    else if (arg === '--tier' || arg.startsWith('--tier=')) options.tiers = value().split(',');
    else if (arg === '--filter' || arg.startsWith('--filter=')) options.filter = value();
    else if (arg === '--timeout' || arg.startsWith('--timeout=')) options.timeoutMs = Number(value()) * 60 * 1000;
    else if (arg === '--fuzz-seconds' || arg.startsWith('--fuzz-seconds=')) options.fuzzSeconds = Number(value());
    else throw new ScriptError(`unknown option ${arg} (--tier ${TIERS.join(',')}, --no-build, --no-deps, --filter, --timeout MIN, --fuzz-seconds N)`);
  }
  for (const t of options.tiers) if (!TIERS.includes(t)) throw new ScriptError(`unknown tier '${t}' (${TIERS.join(', ')})`);
  options.tiers = TIERS.filter((t) => options.tiers.includes(t)); // always in the canonical order
  return options;
}

export async function main(argv) {
  const started = Date.now();
  const options = parseArgs(argv);
  const env = testEnv();
  log(`models: ${env.PIPIT_MODELS_DIR ?? '(none: PIPIT_MODELS_DIR unset and ../shared/models absent)'}`);
  const need = (key) => [...new Set(options.tiers.flatMap((t) => NEEDS[t][key]))];

  if (options.deps) ensureDeps({ parts: need('deps'), npm: true });

  // A failed build part fails the tiers that need it, visibly, and the others still run.
  const broken = new Map();
  if (options.build) {
    for (const part of ['native', 'wasm', 'ts', 'asan']) {
      if (!need('build').includes(part)) continue;
      try {
        if (part === 'asan') buildAsan();
        else build({ native: part === 'native', wasm: part === 'wasm', ts: part === 'ts', deps: false });
      } catch (error) {
        process.stderr.write(`[pipit] ${part} build failed: ${error.message}\n`);
        broken.set(part, error.message);
      }
    }
  }

  const results = [];
  for (const tier of options.tiers) {
    const missing = NEEDS[tier].build.filter((p) => broken.has(p));
    if (missing.length) {
      results.push(result(tier, 'FAILED', { failed: 1 }, `${missing.join('+')} build failed`));
      continue;
    }
    results.push(await runTier(tier, { env, filter: options.filter, timeoutMs: options.timeoutMs, fuzzSeconds: options.fuzzSeconds }));
  }
  log(`total time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return printSummary(results) === 0 ? 0 : 1;
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`[pipit] error: ${error.message}\n`);
      process.stdout.write('tests: 0 passed, 1 failed, 0 skipped\n');
      process.exit(1);
    },
  );
}
