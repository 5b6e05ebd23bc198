#!/usr/bin/env node
// `npm run build:site [-- --out DIR] [--model path.gguf] [--no-build]`: the demo as a
// self-contained static site (default build/site): the Vite-built page, the WASM engines, the
// model catalog and a service worker that precaches every file, so that the site works offline
// after the first visit. --model copies a GGUF into the site (models/) and lists it first, so
// the site works with no download at all. The engine and package are built first unless
// --no-build. Serve the folder with COOP/COEP headers for threads (see README.md).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, ScriptError, isMain, log, run } from './common.mjs';

const DEMO = path.join(ROOT, 'web', 'demo');
const WASM = path.join(ROOT, 'web', 'lib', 'wasm');

function filesUnder(dir, base = dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return filesUnder(full, base);
    return [path.relative(base, full).split(path.sep).join('/')];
  });
}

function readCatalog() {
  try {
    const data = JSON.parse(fs.readFileSync(path.join(ROOT, 'models', 'catalog.json'), 'utf8'));
    return Array.isArray(data.models) ? data.models : [];
  } catch {
    return [];
  }
}

// The engine computes its file names at run time (which build, which variant) and loads them
// from beside its own code; Vite would otherwise turn those URLs into a lookup of files it
// found at build time, and find none.
const engineUrlsAsWritten = {
  name: 'pipit-engine-urls-as-written',
  enforce: 'pre',
  transform(code, id) {
    if (!id.endsWith(path.join('web', 'src', 'engine.ts'))) return null;
    return { code: code.replace(/new URL\(`/g, 'new URL(/* @vite-ignore */ `'), map: null };
  },
};

// The package's catalog module imports the catalog.json that the build copies beside it in
// web/lib; the site bundles the package's sources, so point it at the catalog itself.
const catalogFromModels = {
  name: 'pipit-catalog-from-models',
  enforce: 'pre',
  resolveId(source, importer) {
    if (source !== './catalog.json' || !importer?.endsWith(path.join('web', 'src', 'catalog.ts'))) return null;
    return path.join(ROOT, 'models', 'catalog.json');
  },
};

export async function buildSite({ out = path.join(ROOT, 'build', 'site'), model, typecheck = true } = {}) {
  if (!fs.existsSync(path.join(WASM, 'pipit.js'))) {
    throw new ScriptError(`${WASM}/pipit.js is missing: build the engine first (npm run build)`);
  }
  if (model !== undefined && !fs.existsSync(model)) throw new ScriptError(`--model ${model}: no such file`);
  // Vite strips types without checking them: the page's TypeScript is checked here.
  if (typecheck) run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(DEMO, 'tsconfig.json')]);
  const { build } = await import('vite');
  await build({
    root: DEMO,
    base: './',
    logLevel: 'error',
    plugins: [engineUrlsAsWritten, catalogFromModels],
    configFile: false,
    publicDir: path.join(DEMO, 'public'),
    worker: { format: 'es', plugins: () => [engineUrlsAsWritten, catalogFromModels] },
    build: { outDir: out, emptyOutDir: true, target: 'es2022', assetsDir: 'assets', chunkSizeWarningLimit: 2048 },
  });
  // The engine finds its files next to the code that loads it (the worker's chunk in assets/).
  const wasmOut = path.join(out, 'assets', 'wasm');
  fs.mkdirSync(wasmOut, { recursive: true });
  fs.cpSync(WASM, wasmOut, { recursive: true });

  const models = readCatalog();
  if (model !== undefined) {
    const name = path.basename(model);
    fs.mkdirSync(path.join(out, 'models'), { recursive: true });
    fs.copyFileSync(model, path.join(out, 'models', name));
    models.unshift({
      id: `bundled-${name}`,
      name: `${name.replace(/\.gguf$/i, '')} (bundled with this site)`,
      url: `models/${name}`,
      sizeBytes: fs.statSync(model).size,
      description: 'Part of this site: loads without any download.',
      bundled: true,
    });
  }
  fs.writeFileSync(path.join(out, 'catalog.json'), JSON.stringify({ version: 1, models }, null, 2));

  const files = ['./', ...filesUnder(out).filter((f) => f !== 'sw.js').map((f) => `./${f}`)];
  const hash = createHash('sha256');
  for (const f of files.slice(1)) hash.update(f).update(fs.readFileSync(path.join(out, f.slice(2))));
  const sw = fs
    .readFileSync(path.join(DEMO, 'sw.template.js'), 'utf8')
    .replace('__VERSION__', JSON.stringify(hash.digest('hex').slice(0, 16)))
    .replace('__FILES__', JSON.stringify(files));
  fs.writeFileSync(path.join(out, 'sw.js'), sw);
  const bytes = files.slice(1).reduce((sum, f) => sum + fs.statSync(path.join(out, f.slice(2))).size, 0);
  log(`site: ${path.relative(ROOT, out) || out} (${files.length} files, ${(bytes / 1e6).toFixed(1)} MB)`);
  return out;
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, model: { type: 'string' }, 'no-build': { type: 'boolean' }, 'no-deps': { type: 'boolean' } },
  });
  try {
    if (!values['no-build']) {
      const { build } = await import('./build.mjs');
      build({ native: false, wasm: true, ts: true, deps: !values['no-deps'] });
    }
    await buildSite({
      ...(values.out ? { out: path.resolve(values.out) } : {}),
      ...(values.model ? { model: path.resolve(values.model) } : {}),
    });
  } catch (error) {
    process.stderr.write(`[pipit] build:site failed: ${error.message}\n`);
    process.exit(1);
  }
}
