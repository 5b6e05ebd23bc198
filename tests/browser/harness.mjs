// What every browser test needs: Debian's Chromium through playwright-core, a local server
// on 127.0.0.1 that serves the built package from /lib/, and the reason to skip when a piece
// is missing.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { libDir } from '../node/helpers.mjs';

export const CHROMIUM = '/usr/bin/chromium';

export const TYPES = {
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.json': 'application/json',
  '.html': 'text/html; charset=utf-8',
};

// Null when the model file and Chromium are there, else why the tests skip.
export function skipReasonFor(modelFile, modelPath) {
  if (!modelFile) return `model file missing: ${modelPath} (set PIPIT_MODELS_DIR)`;
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} is not installed`;
  return null;
}

// A file of web/lib for a request path /lib/..., or null (also for paths leaving web/lib).
export function libFile(pathname) {
  if (!pathname.startsWith('/lib/')) return null;
  const file = path.join(libDir, pathname.slice('/lib/'.length));
  if (!file.startsWith(libDir + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    return null;
  }
  return { type: TYPES[path.extname(file)] ?? 'application/octet-stream', body: fs.readFileSync(file) };
}

// Starts `handler` on a free port; resolves to { server, base }.
export async function startServer(handler) {
  const server = http.createServer(handler);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

// Closes what a test file opened (any may be null when the file was skipped).
export async function closeAll({ page = null, browser = null, server = null }) {
  await page?.close().catch(() => undefined);
  await browser?.close().catch(() => undefined);
  if (server) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

// Headless Chromium without the background traffic this machine's closed network refuses.
export async function launchChromium(extraArgs = []) {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', ...extraArgs],
  });
}
