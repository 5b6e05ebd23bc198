#!/usr/bin/env node
// `npm run demo`: installs what is missing, builds the WASM engine and the TypeScript package,
// builds the demo site (with stories260K bundled when the shared models are there, so it works
// without a download), then serves it with COOP/COEP headers (web/demo/serve.mjs).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT, log, modelsDir } from './common.mjs';
import { build } from './build.mjs';

const server = path.join(ROOT, 'web', 'demo', 'serve.mjs');
const site = path.join(ROOT, 'build', 'site');

try {
  build({ native: false, wasm: true, ts: true, deps: true });
  const { buildSite } = await import('./build-site.mjs');
  const models = modelsDir();
  const tiny = models && path.join(models, 'stories260K', 'stories260K.gguf');
  await buildSite({ out: site, ...(tiny && existsSync(tiny) ? { model: tiny } : {}) });
} catch (error) {
  process.stderr.write(`[pipit] build failed: ${error.message}\n`);
  process.exit(1);
}
log(`starting ${path.relative(ROOT, server)}`);
const child = spawn(process.execPath, [server, site, ...process.argv.slice(2)], { cwd: ROOT, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
