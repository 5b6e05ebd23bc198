#!/usr/bin/env node
// Makes sure the Debian packages and npm packages the build and tests need are present.
// As root it installs what is missing (apt-get, non-interactive); otherwise it says exactly
// what to install and fails. A fast no-op when everything is there.
//
//   node web/scripts/ensure-deps.mjs [--for native,wasm,sanitize,browser] [--no-npm]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, ScriptError, isMain, log, run, which } from './common.mjs';

// Debian packages per part of the project.
export const DEB_PACKAGES = {
  // the native build and gtest suite (nlohmann-json3-dev: the tests read llama.cpp's reference
  // outputs; unicode-data: the tokenizer's character tables)
  native: ['g++', 'cmake', 'ninja-build', 'ccache', 'googletest', 'libgtest-dev', 'libxsimd-dev',
    'nlohmann-json3-dev', 'unicode-data'],
  // the WASM build (the gtest suite under node, and the npm package's engines; clang-16
  // compiles the relaxed-SIMD ones, which clang 14 cannot; Emscripten's wasm-ld-14 links them)
  wasm: ['emscripten', 'node-acorn', 'cmake', 'ninja-build', 'ccache', 'googletest', 'libxsimd-dev',
    'nlohmann-json3-dev', 'unicode-data', 'clang-16'],
  // the sanitize and fuzz tiers: clang with compiler-rt (AddressSanitizer, UBSan, libFuzzer)
  sanitize: ['clang', 'libclang-rt-14-dev', 'cmake', 'ninja-build', 'ccache', 'googletest',
    'libgtest-dev', 'libxsimd-dev', 'nlohmann-json3-dev', 'unicode-data'],
  // headless browser tests (playwright-core drives Debian's chromium; npm never downloads one)
  browser: ['chromium'],
};

const STAMP = path.join(ROOT, 'node_modules', '.pipit-deps-stamp');

function missingDebPackages(wanted) {
  if (!which('dpkg-query')) {
    log('dpkg-query not found (not Debian?): skipping the system package check');
    return [];
  }
  const result = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Abbrev}\n', ...wanted], {
    encoding: 'utf8',
  });
  const installed = new Set();
  for (const line of (result.stdout ?? '').split('\n')) {
    const [name, status] = line.trim().split(/\s+/);
    // "ii" = desired install, currently installed
    if (name && status === 'ii') installed.add(name.split(':')[0]);
  }
  return wanted.filter((p) => !installed.has(p));
}

export function ensureDebPackages(parts) {
  const wanted = [...new Set(parts.flatMap((p) => DEB_PACKAGES[p] ?? []))];
  const missing = missingDebPackages(wanted);
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    throw new ScriptError(
      `missing Debian packages; install them with: sudo apt-get install -y --no-install-recommends ${missing.join(' ')}`,
    );
  }
  log(`installing missing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Wait for a dpkg lock held by a boot-time apt job instead of failing at once.
  const quiet = ['-o', 'Dpkg::Use-Pty=0', '-o', 'DPkg::Lock::Timeout=600', '-q'];
  run('apt-get', ['update', ...quiet], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  run('apt-get', ['install', '-y', '--no-install-recommends', ...quiet, ...missing], {
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const still = missingDebPackages(wanted);
  if (still.length) throw new ScriptError(`apt-get did not install: ${still.join(' ')}`);
}

function npmInputsHash() {
  const hash = createHash('sha256');
  for (const name of ['package.json', 'package-lock.json']) {
    const file = path.join(ROOT, name);
    hash.update(name).update(existsSync(file) ? readFileSync(file) : '');
  }
  return hash.digest('hex');
}

export function ensureNpmPackages() {
  const digest = npmInputsHash();
  if (existsSync(STAMP) && readFileSync(STAMP, 'utf8').trim() === digest) return;
  const flags = ['--no-audit', '--no-fund'];
  if (existsSync(path.join(ROOT, 'package-lock.json'))) {
    try {
      run('npm', ['ci', ...flags]);
    } catch (error) {
      // Usually package.json gained a dependency without its lockfile being updated.
      log(`WARNING: npm ci failed (${error.message}); falling back to npm install`);
      run('npm', ['install', ...flags]);
    }
  } else {
    run('npm', ['install', ...flags]);
  }
  writeFileSync(STAMP, `${npmInputsHash()}\n`);
}

function checkNode() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20) throw new ScriptError(`Node.js >= 20 is needed, this is ${process.version}`);
}

export function ensureDeps({ parts = ['native', 'wasm', 'browser'], npm = true } = {}) {
  checkNode();
  ensureDebPackages(parts);
  if (npm) ensureNpmPackages();
}

function parseArgs(argv) {
  const options = { parts: ['native', 'wasm', 'browser'], npm: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--no-npm') options.npm = false;
    else if (arg === '--for') options.parts = argv[++i].split(',');
    else if (arg.startsWith('--for=')) options.parts = arg.slice(6).split(',');
    else throw new ScriptError(`unknown option ${arg} (use --for native,wasm,browser and/or --no-npm)`);
  }
  for (const p of options.parts) {
    if (!DEB_PACKAGES[p]) throw new ScriptError(`unknown part '${p}' (${Object.keys(DEB_PACKAGES).join(', ')})`);
  }
  return options;
}

if (isMain(import.meta.url)) {
  try {
    ensureDeps(parseArgs(process.argv.slice(2)));
    log('dependencies present');
  } catch (error) {
    process.stderr.write(`[pipit] error: ${error.message}\n`);
    process.exit(1);
  }
}
