// What the JavaScript fuzz loops share: a seeded generator (a run is reproduced by its seed),
// pools of hostile values, and the loop that runs until the time is up.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const modelsDir = process.env.PIPIT_MODELS_DIR
  ? path.resolve(process.env.PIPIT_MODELS_DIR)
  : path.resolve(repoRoot, '..', 'shared', 'models');

export async function importPackage() {
  return import(pathToFileURL(path.join(repoRoot, 'web', 'lib', 'index.js')).href);
}

export function parseArgs(argv) {
  const options = { seconds: 30, seed: 1 };
  for (const arg of argv) {
    const m = /^--(seconds|seed)=(\d+(?:\.\d+)?)$/.exec(arg);
    if (!m) throw new Error(`unknown argument ${arg} (--seconds=N --seed=N)`);
    options[m[1]] = Number(m[2]);
  }
  return options;
}

// mulberry32: small, fast, and the same sequence on every platform for a seed.
export class Rng {
  #state;
  constructor(seed) {
    this.#state = seed >>> 0;
  }
  next() {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo, hi) {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p) {
    return this.next() < p;
  }
  pick(list) {
    return list[this.int(0, list.length - 1)];
  }
}

const PIECES = [
  'a', ' ', 'Hello', 'world', '\n', '\t', '<s>', '</s>', '<|im_start|>', '<|im_end|>', '[INST]',
  '{{', '}}', '{%', '%}', '\u00e9', '\u4f60\u597d', '\u{1F600}', '\ud800', '\udc00', '\u0000',
  '\u2581', '\ufffd', '"', '\\', '0', '123', '-', '.', 'e', 'null', 'true',
];

export function randomText(rng, maxPieces = 12) {
  let s = '';
  const n = rng.int(0, maxPieces);
  for (let i = 0; i < n; i++) {
    s += rng.chance(0.15) ? String.fromCharCode(rng.int(0, 0xffff)) : rng.pick(PIECES);
  }
  return s;
}

// Values a careless or hostile caller might pass where a number, string or object belongs.
export function hostileValue(rng) {
  const pool = [
    undefined, null, NaN, Infinity, -Infinity, -1, 0, -0, 0.5, 1, 2, 7, 1e308, -1e308, 2 ** 31,
    2 ** 32, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, '1', '', 'text', true, false, [], [1], {},
    10n, Symbol('s'), Object.create(null), () => 1, new Map(), new Date(0),
  ];
  return rng.chance(0.3) ? (rng.next() - 0.5) * 10 ** rng.int(0, 12) : rng.pick(pool);
}

// Shows a value the way it was passed (JSON.stringify drops or chokes on several of them).
export function describe(value) {
  const seen = new WeakSet();
  const walk = (v) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'symbol' || typeof v === 'function' || v === undefined) return String(v);
    if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
    if (v === null || typeof v !== 'object') return JSON.stringify(v);
    if (seen.has(v)) return '[cycle]';
    seen.add(v);
    if (v instanceof Map) return `Map(${walk([...v.entries()])})`;
    if (Array.isArray(v)) return `[${v.map(walk).join(', ')}]`;
    if (Object.getPrototypeOf(v) === null) return '[null-prototype object]';
    return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${walk(x)}`).join(', ')}}`;
  };
  return walk(value);
}

// Calls `one(rng, i)` until `seconds` have passed; a thrown error ends the run with the seed
// and iteration that reproduce it. Prints `fuzz: N inputs` for the runner.
export async function fuzzLoop(name, one) {
  const { seconds, seed } = parseArgs(process.argv.slice(2));
  const rng = new Rng(seed);
  const end = Date.now() + seconds * 1000;
  let i = 0;
  try {
    for (; Date.now() < end; i++) await one(rng, i);
  } catch (error) {
    process.stderr.write(`${name}: input ${i} of seed ${seed} failed:\n${error.stack ?? error}\n`);
    process.exit(1);
  }
  process.stdout.write(`fuzz: ${i} inputs (${name}, seed ${seed}, ${seconds} s)\n`);
}
