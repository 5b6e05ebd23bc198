#!/usr/bin/env node
// Builds what the tests and the package need:
//   native  build/native  (cmake -G Ninja, Release): pipit_tests, pipit-gguf, pipit-native
//   wasm    build/wasm    (emcmake cmake -G Ninja):   pipit_tests.js, pipit.js + pipit.wasm
//   ts      tsc -p web -> web/lib, plus the wasm engine copied to web/lib/wasm/
// Each tree is configured once and then rebuilt incrementally by ninja (-j2, ccache).
//
//   node web/scripts/build.mjs [--native] [--wasm] [--ts] [--no-deps] [--fresh]
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { JOBS, ROOT, ScriptError, emscriptenEnv, isMain, log, run, which } from './common.mjs';
import { ensureDeps } from './ensure-deps.mjs';

export const NATIVE_DIR = path.join(ROOT, 'build', 'native');
export const WASM_DIR = path.join(ROOT, 'build', 'wasm');
// The threaded engine: the same sources with pthreads, without the test suite.
export const WASM_MT_DIR = path.join(ROOT, 'build', 'wasm-mt');
// Both again with relaxed SIMD, compiled by clang-16 (see CMakeLists.txt); the single-thread
// one carries the test suite, which runs against the relaxed kernels.
export const WASM_RELAXED_DIR = path.join(ROOT, 'build', 'wasm-relaxed');
export const WASM_MT_RELAXED_DIR = path.join(ROOT, 'build', 'wasm-mt-relaxed');
const WEB_WASM_DIR = path.join(ROOT, 'web', 'lib', 'wasm');

// ccache keys on the compiler's command line, which holds absolute source paths; rewriting them
// relative to the checkout lets every clone and worktree share one cache.
process.env.CCACHE_BASEDIR ??= ROOT;

function cacheValue(dir, key) {
  const cache = path.join(dir, 'CMakeCache.txt');
  if (!existsSync(cache)) return undefined;
  const match = readFileSync(cache, 'utf8').match(new RegExp(`^${key}:[A-Z]+=(.*)$`, 'm'));
  return match ? match[1] : undefined;
}

// A build tree made for another checkout, generator or toolchain cannot be reused: start over.
function dropForeignTree(dir, { emscripten }) {
  if (!existsSync(path.join(dir, 'CMakeCache.txt'))) return;
  const home = cacheValue(dir, 'CMAKE_HOME_DIRECTORY');
  const generator = cacheValue(dir, 'CMAKE_GENERATOR');
  const toolchain = cacheValue(dir, 'CMAKE_TOOLCHAIN_FILE') ?? '';
  const reasons = [];
  if (home && path.resolve(home) !== ROOT) reasons.push(`it was configured for ${home}`);
  if (generator && generator !== 'Ninja') reasons.push(`it uses the ${generator} generator`);
  if (emscripten !== /Emscripten/i.test(toolchain)) reasons.push('its toolchain does not match');
  if (reasons.length) {
    log(`removing ${path.relative(ROOT, dir)}: ${reasons.join(', ')}`);
    rmSync(dir, { recursive: true, force: true });
  }
}

function requireTool(name, pkg) {
  if (!which(name)) throw new ScriptError(`'${name}' not found: install the Debian package ${pkg} (or run npm test as root)`);
}

function timed(label, fn) {
  const start = Date.now();
  fn();
  log(`${label} done in ${((Date.now() - start) / 1000).toFixed(1)} s`);
}

export function buildNative({ fresh = false } = {}) {
  requireTool('cmake', 'cmake');
  requireTool('ninja', 'ninja-build');
  if (fresh) rmSync(NATIVE_DIR, { recursive: true, force: true });
  dropForeignTree(NATIVE_DIR, { emscripten: false });
  timed('native build', () => {
    if (!existsSync(path.join(NATIVE_DIR, 'build.ninja'))) {
      run('cmake', ['-S', ROOT, '-B', NATIVE_DIR, '-G', 'Ninja', '-DCMAKE_BUILD_TYPE=Release']);
    }
    run('ninja', ['-C', NATIVE_DIR, `-j${JOBS}`]);
  });
}

export function buildWasm({ fresh = false } = {}) {
  requireTool('emcmake', 'emscripten');
  requireTool('ninja', 'ninja-build');
  requireTool('clang-16', 'clang-16');
  const env = emscriptenEnv();
  // Emscripten 3.1.6 calls clang-<CLANG_ADD_VERSION>; Debian's config says 14.
  const relaxedEnv = { ...env, EM_CLANG_ADD_VERSION: '16' };
  const threaded = ['-DPIPIT_THREADS=ON', '-DPIPIT_BUILD_TESTS=OFF'];
  const trees = [
    { dir: WASM_DIR, label: 'wasm build', flags: [], env },
    { dir: WASM_MT_DIR, label: 'threaded wasm build', flags: threaded, env },
    { dir: WASM_RELAXED_DIR, label: 'relaxed-SIMD wasm build', flags: ['-DPIPIT_RELAXED_SIMD=ON'], env: relaxedEnv },
    { dir: WASM_MT_RELAXED_DIR, label: 'threaded relaxed-SIMD wasm build', flags: [...threaded, '-DPIPIT_RELAXED_SIMD=ON'], env: relaxedEnv },
  ];
  for (const tree of trees) {
    if (fresh) rmSync(tree.dir, { recursive: true, force: true });
    dropForeignTree(tree.dir, { emscripten: true });
    timed(tree.label, () => {
      if (!existsSync(path.join(tree.dir, 'build.ninja'))) {
        run('emcmake', ['cmake', '-S', ROOT, '-B', tree.dir, '-G', 'Ninja', '-DCMAKE_BUILD_TYPE=Release', ...tree.flags], { env: tree.env });
      }
      run('ninja', ['-C', tree.dir, `-j${JOBS}`], { env: tree.env });
    });
  }
}

// The package loads its engine from web/lib/wasm/.
export function copyEngine() {
  copyEngineFiles(WASM_DIR, ['pipit.js', 'pipit.wasm']);
  copyEngineFiles(WASM_MT_DIR, ['pipit-mt.js', 'pipit-mt.wasm', 'pipit-mt.worker.js']);
  // Node's threaded engine is CommonJS: its folder carries a package.json that says so. Its
  // .wasm is byte for byte the browser's pipit-mt.wasm (only the JS glue differs), which the
  // loader reads instead of shipping a second copy.
  copyEngineFiles(path.join(WASM_MT_DIR, 'node'), ['pipit-mt.js', 'pipit-mt.worker.js', 'package.json'], path.join(WEB_WASM_DIR, 'node'));
  // In browsers the loader hands every threaded engine pipit-mt.worker.js (a generic script
  // that imports the engine it is given), so only Node's glue needs the relaxed one's worker.
  copyEngineFiles(WASM_RELAXED_DIR, ['pipit-relaxed.js', 'pipit-relaxed.wasm']);
  copyEngineFiles(WASM_MT_RELAXED_DIR, ['pipit-mt-relaxed.js', 'pipit-mt-relaxed.wasm']);
  copyEngineFiles(path.join(WASM_MT_RELAXED_DIR, 'node'), ['pipit-mt-relaxed.js', 'pipit-mt-relaxed.worker.js'], path.join(WEB_WASM_DIR, 'node'));
}

function copyEngineFiles(fromDir, files, toDir = WEB_WASM_DIR) {
  const present = files.filter((f) => existsSync(path.join(fromDir, f)));
  if (present.length === 0) {
    log(`no ${files[0]} in ${path.relative(ROOT, fromDir)} yet: nothing to copy to web/lib/wasm/`);
    return;
  }
  if (present.length !== files.length) throw new ScriptError(`${path.relative(ROOT, fromDir)} has ${present.join(', ')} but not all of ${files.join(', ')}`);
  mkdirSync(toDir, { recursive: true });
  const stale = files.filter((f) => {
    const from = statSync(path.join(fromDir, f));
    const to = path.join(toDir, f);
    if (!existsSync(to)) return true;
    const copy = statSync(to);
    return copy.size !== from.size || copy.mtimeMs < from.mtimeMs;
  });
  if (stale.length === 0) return;
  for (const f of stale) copyFileSync(path.join(fromDir, f), path.join(toDir, f));
  log(`copied ${stale.map((f) => `${path.relative(ROOT, fromDir)}/${f}`).join(', ')} to ${path.relative(ROOT, toDir)}/`);
}

export function buildTs() {
  if (!existsSync(path.join(ROOT, 'web', 'tsconfig.json'))) {
    log('no web/tsconfig.json yet: skipping tsc');
    return;
  }
  const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
  if (!existsSync(tsc)) throw new ScriptError('node_modules/.bin/tsc not found: run npm install (npm test does it)');
  timed('tsc', () => run(tsc, ['-p', 'web']));
  // web/src/catalog.ts imports ./catalog.json; the catalog's one copy lives in models/.
  copyFileSync(path.join(ROOT, 'models', 'catalog.json'), path.join(ROOT, 'web', 'lib', 'catalog.json'));
}

export function build({ native = true, wasm = true, ts = true, deps = true, fresh = false } = {}) {
  if (deps) {
    const parts = [];
    if (native) parts.push('native');
    if (wasm) parts.push('wasm');
    ensureDeps({ parts, npm: true });
  }
  if (native) buildNative({ fresh });
  if (wasm) buildWasm({ fresh });
  if (ts) buildTs();
  if (wasm || ts) copyEngine();
}

function parseArgs(argv) {
  const picked = { native: false, wasm: false, ts: false };
  const options = { deps: true, fresh: false };
  for (const arg of argv) {
    if (arg === '--native') picked.native = true;
    else if (arg === '--wasm') picked.wasm = true;
    else if (arg === '--ts') picked.ts = true;
    else if (arg === '--no-deps') options.deps = false;
    else if (arg === '--fresh') options.fresh = true;
    else throw new ScriptError(`unknown option ${arg} (--native, --wasm, --ts, --no-deps, --fresh)`);
  }
  const any = picked.native || picked.wasm || picked.ts;
  return any ? { ...picked, ...options } : { native: true, wasm: true, ts: true, ...options };
}

if (isMain(import.meta.url)) {
  try {
    build(parseArgs(process.argv.slice(2)));
  } catch (error) {
    process.stderr.write(`[pipit] build failed: ${error.message}\n`);
    process.exit(1);
  }
}
