#!/usr/bin/env node
// `npm run demo`: installs what is missing, builds the WASM engine and the TypeScript package,
// then starts the demo server (web/demo/serve.mjs), passing on any arguments after `--`.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT, log, modelsDir } from './common.mjs';
import { build } from './build.mjs';

const server = path.join(ROOT, 'web', 'demo', 'serve.mjs');

try {
  build({ native: false, wasm: true, ts: true, deps: true });
} catch (error) {
  process.stderr.write(`[pipit] build failed: ${error.message}\n`);
  process.exit(1);
}
if (!existsSync(server)) {
  process.stderr.write('[pipit] web/demo/serve.mjs does not exist yet: nothing to serve\n');
  process.exit(1);
}
const env = { ...process.env };
const models = modelsDir();
if (models) env.PIPIT_MODELS_DIR = models;
log(`starting ${path.relative(ROOT, server)}`);
const child = spawn(process.execPath, [server, ...process.argv.slice(2)], { cwd: ROOT, env, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
