// Shared by the Node and browser tests: where the repo, the built package and the models are.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const libDir = path.join(repoRoot, 'web', 'lib');
export const cliPath = path.join(libDir, 'cli.js');
export const modelsDir = process.env.PIPIT_MODELS_DIR
  ? path.resolve(process.env.PIPIT_MODELS_DIR)
  : path.resolve(repoRoot, '..', 'shared', 'models');
export const referenceDir = path.resolve(modelsDir, '..', 'reference');

export const storiesPath = path.join(modelsDir, 'stories260K', 'stories260K.gguf');

/** The path if it exists, else null (the caller skips with a message). */
export function existing(p) {
  return fs.existsSync(p) ? p : null;
}

/**
 * The greedy ids of stories260K after BOS, as PROVENANCE.md lists them
 * ("First 64 generated ids after BOS(1)"); null when the file is missing.
 */
export function goldenIds() {
  const provenance = path.join(modelsDir, 'PROVENANCE.md');
  if (!fs.existsSync(provenance)) return null;
  const text = fs.readFileSync(provenance, 'utf8');
  const m = /First 64 generated ids after BOS\(1\):\s*`([\d ]+)`/.exec(text);
  if (!m) throw new Error(`${provenance} no longer lists the stories260K golden ids`);
  const ids = m[1].trim().split(/\s+/).map(Number);
  if (ids.length !== 64) throw new Error(`expected 64 golden ids, found ${ids.length}`);
  return ids;
}

export const GOLDEN_TEXT_START = 'Once upon a time, there was a little girl named Lily.';
