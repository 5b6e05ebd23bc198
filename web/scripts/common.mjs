// Helpers shared by the build/test/demo scripts. Node built-ins only: these scripts run before
// `npm install` has happened.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// Both cores of a CI machine are shared with the browser and node during tests: never more.
export const JOBS = process.env.PIPIT_JOBS ?? '2';

export function log(message) {
  process.stdout.write(`[pipit] ${message}\n`);
}

export class ScriptError extends Error {}

// True when `import.meta.url` of the calling module is the script node was started with.
export function isMain(metaUrl) {
  return process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === metaUrl;
}

// Emscripten 3.1.6 from Debian finds acorn only through NODE_PATH.
export function emscriptenEnv(base = process.env) {
  const parts = (base.NODE_PATH ?? '').split(path.delimiter).filter(Boolean);
  if (!parts.includes('/usr/share/nodejs')) parts.push('/usr/share/nodejs');
  return { ...base, NODE_PATH: parts.join(path.delimiter) };
}

// Absolute models directory: PIPIT_MODELS_DIR if set, else ../shared/models when it exists.
export function modelsDir() {
  if (process.env.PIPIT_MODELS_DIR) return path.resolve(ROOT, process.env.PIPIT_MODELS_DIR);
  const shared = path.resolve(ROOT, '..', 'shared', 'models');
  return existsSync(shared) ? shared : undefined;
}

export function which(command) {
  const dirs = (process.env.PATH ?? '').split(path.delimiter);
  for (const dir of dirs) {
    const candidate = path.join(dir, command);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

// Runs a command with inherited stdio; throws ScriptError on a non-zero exit.
export function run(command, args, options = {}) {
  const shown = [command, ...args].join(' ');
  log(`$ ${shown}`);
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: ROOT, ...options });
  if (result.error) throw new ScriptError(`could not start ${command}: ${result.error.message}`);
  if (result.status !== 0) {
    const how = result.signal ? `signal ${result.signal}` : `exit code ${result.status}`;
    throw new ScriptError(`'${shown}' failed (${how})`);
  }
}

// Runs a command, streaming its output to ours (unless `quiet`) and keeping a copy; never
// throws. Resolves to { code, signal, output, timedOut, error }.
export function runCaptured(command, args, { timeoutMs, quiet = false, ...options } = {}) {
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    const child = spawn(command, args, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: process.platform !== 'win32',
      ...options,
    });
    const take = (stream) => (chunk) => {
      if (!quiet) stream.write(chunk);
      output += chunk.toString();
    };
    child.stdout.on('data', take(process.stdout));
    child.stderr.on('data', take(process.stderr));
    let timer;
    if (timeoutMs) {
      timer = setTimeout(() => {
        timedOut = true;
        // The child leads its own process group: end it and whatever it started (a browser).
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, timeoutMs);
    }
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, output, timedOut, error });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, timedOut });
    });
  });
}

// Files under `dir` (recursively) whose names end with one of `suffixes`, sorted.
export function findFiles(dir, suffixes) {
  const found = [];
  const walk = (d) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) walk(full);
      } else if (suffixes.some((s) => entry.name.endsWith(s))) {
        found.push(full);
      }
    }
  };
  walk(dir);
  return found.sort();
}
