// Loads the Emscripten module (wasm/pipit.js + wasm/pipit.wasm next to this file, or a threaded
// build, see engineVariant) once per process or page, and describes what
// bindings/pipit_bindings.cpp exposes.

import { LoadError, toPipitError } from './errors.js';

export interface RawInfo {
  architecture: string;
  name: string;
  nVocab: number;
  contextLength: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  tensorTypes: Record<string, number>;
  fileBytes: number;
  bosId: number;
  eosId: number;
  addBos: boolean;
  bosToken: string;
  eosToken: string;
  chatTemplate: string | null;
}

export interface RawGenerateOptions {
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  typicalP: number;
  repeatPenalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
  penaltyLastN: number;
  logitBias: Array<[number, number]>;
  seed: number;
  ignoreEos: boolean;
  topLogits: number;
  /** Keep the KV cache of the prefix shared with the current context. */
  reusePrefix: boolean;
  stop: string[];
  logprobs: boolean;
  topLogprobs: number;
  grammar: string;
  responseFormat: 'text' | 'json_object' | 'json_schema';
  jsonSchema: string;
  /** When the context is full: end generation ('error') or drop old tokens ('shift'). */
  contextShift: 'error' | 'shift';
  /** Tokens a shift never drops; -1: the prompt, up to half the context. */
  nKeep: number;
  /** Tokens dropped per shift; 0: half of those after nKeep. */
  nDiscard: number;
}

/** One token's log-probability in OpenAI's shape. */
export interface RawTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface RawStep {
  token: number;
  text: string;
  finish: '' | 'stop' | 'length' | 'context';
  /** The token is an end-of-generation marker: not part of the output. */
  endToken: boolean;
  topLogits?: Array<[number, number]>;
  logprobs?: RawTokenLogprob & { top_logprobs: RawTokenLogprob[] };
}

export interface RawTimings {
  prefillMs: number;
  prefillTokens: number;
  decodeMs: number;
  decodeTokens: number;
  reusedTokens: number;
  grammarMs: number;
  droppedTokens: number;
}

export interface RawSession {
  contextLength(): number;
  position(): number;
  begin(promptIds: number[], options: RawGenerateOptions): void;
  next(): RawStep;
  reset(): void;
  timings(): RawTimings;
  contextTokens(): Int32Array;
  /** [head][query][key] over contextTokens(). */
  attention(layer: number): Float32Array;
  delete(): void;
}

export interface RawModel {
  info(): RawInfo;
  tokenize(text: string, addBos: boolean, parseSpecial: boolean): Int32Array;
  detokenize(ids: ArrayLike<number>): string;
  createSession(contextLength: number, threads: number): RawSession;
  delete(): void;
}

export interface RawTokenizerInfo {
  model: string;
  pre: string;
  name: string;
  nVocab: number;
  bosId: number;
  eosId: number;
  addBos: boolean;
  endOfGeneration: Int32Array;
}

export interface RawTokenizer {
  info(): RawTokenizerInfo;
  tokenize(text: string, addBos: boolean, parseSpecial: boolean): Int32Array;
  detokenize(ids: ArrayLike<number>): string;
  delete(): void;
}

export interface RawModule {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  loadModel(ptr: number, size: number, allowDuplicateKeys: boolean): RawModel;
  /** The files of a split GGUF set, in order. */
  loadModelParts(ptrs: number[], sizes: number[], allowDuplicateKeys: boolean): RawModel;
  loadTokenizer(ptr: number, size: number, allowDuplicateKeys: boolean): RawTokenizer;
}

interface ModuleArgs {
  wasmBinary?: Uint8Array;
  locateFile?: (path: string, prefix: string) => string;
  print?: (text: string) => void;
  printErr?: (text: string) => void;
  /** What the pthread workers import to start the engine. */
  mainScriptUrlOrBlob?: string;
  /** Workers the Node threaded engine starts with (its -sPTHREAD_POOL_SIZE). */
  pthreadPoolSize?: number;
}

type ModuleFactory = (args: ModuleArgs) => Promise<RawModule>;

export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

/**
 * Which build of the engine runs: `pipit` computes on one thread, `pipit-mt` is the threaded
 * one (one worker per core). Browsers give WebAssembly threads (SharedArrayBuffer) only to
 * cross-origin isolated pages and their workers, so a plain page gets `pipit`; Node always
 * gets `pipit-mt` (a CommonJS build for worker_threads, in wasm/node/). Each has a
 * `-relaxed` twin using relaxed SIMD's int8 dot product, picked wherever the runtime accepts
 * that instruction (Chromium since 114; Node 20 only with --experimental-wasm-relaxed-simd).
 */
export type EngineVariant = 'pipit' | 'pipit-mt' | 'pipit-relaxed' | 'pipit-mt-relaxed';

// A module whose one function computes i16x8.relaxed_dot_i8x16_i7x16_s (opcode 0xfd 0x112) of
// two zero vectors: valid exactly where the engine would run.
const RELAXED_DOT_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
  0x03, 0x02, 0x01, 0x00, // functions: one of type 0
  0x0a, 0x2b, 0x01, 0x29, 0x00, // code: one body of 41 bytes, no locals
  0xfd, 0x0c, ...new Array<number>(16).fill(0), // v128.const 0
  0xfd, 0x0c, ...new Array<number>(16).fill(0), // v128.const 0
  0xfd, 0x92, 0x02, // i16x8.relaxed_dot_i8x16_i7x16_s
  0x0b, // end
]);

let relaxedSimd: boolean | null = null;

function hasRelaxedSimd(): boolean {
  if (relaxedSimd === null) {
    try {
      relaxedSimd = WebAssembly.validate(RELAXED_DOT_PROBE);
    } catch {
      relaxedSimd = false;
    }
  }
  return relaxedSimd;
}

export function engineVariant(): EngineVariant {
  const g = globalThis as { crossOriginIsolated?: boolean; SharedArrayBuffer?: unknown };
  const threaded =
    isNode() || (g.crossOriginIsolated === true && typeof g.SharedArrayBuffer === 'function');
  const base = threaded ? 'pipit-mt' : 'pipit';
  return hasRelaxedSimd() ? `${base}-relaxed` : base;
}

function isThreaded(variant: EngineVariant): boolean {
  return variant.startsWith('pipit-mt');
}

let nodeCores: number | null = null;

async function countNodeCores(): Promise<number> {
  if (nodeCores === null) {
    const os = await import('node:os');
    nodeCores = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  }
  return nodeCores;
}

/** The cores the engine can compute with: the threaded engine has one worker per core. */
export async function availableCores(): Promise<number> {
  if (!isThreaded(engineVariant())) return 1;
  if (isNode()) return countNodeCores();
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  return typeof n === 'number' && n >= 1 ? Math.floor(n) : 1;
}

let modulePromise: Promise<RawModule> | null = null;

// Bundlers inline small assets as data: URLs (Vite below 4 KB, like the pthread worker); a
// worker started from one has an opaque origin and may not import the engine, a blob: URL
// keeps the page's origin. Reading a data: URL touches no network.
async function sameOriginUrl(url: URL): Promise<string> {
  if (url.protocol !== 'data:') return url.href;
  const blob = await (await fetch(url)).blob();
  return URL.createObjectURL(blob);
}

async function instantiate(): Promise<RawModule> {
  const variant = engineVariant();
  // Node's threaded glue differs from the browser's, the .wasm they load does not. Bundlers
  // emit what a `./wasm/${...}` template names; Node's glue is joined so they leave it out.
  const jsUrl =
    isNode() && isThreaded(variant)
      ? new URL('./wasm/node/' + variant + '.js', import.meta.url)
      : new URL(`./wasm/${variant}.js`, import.meta.url);
  const wasmUrl = new URL(`./wasm/${variant}.wasm`, import.meta.url);
  let factory: ModuleFactory;
  try {
    const imported = (await import(jsUrl.href)) as { default: ModuleFactory };
    factory = imported.default;
  } catch (e) {
    throw new LoadError(
      `cannot load the pipit WASM engine from ${jsUrl.href}: ${(e as Error).message}. ` +
        'Build it with npm run build, which copies the engine into web/lib/wasm/',
      { cause: e },
    );
  }
  const args: ModuleArgs = {
    printErr: (text: string) => console.warn(`[pipit] ${text}`),
  };
  if (isNode()) {
    // Node's global fetch cannot read file: URLs, so hand the engine its bytes directly.
    const fs = await import('node:fs/promises');
    try {
      args.wasmBinary = new Uint8Array(await fs.readFile(wasmUrl));
    } catch (e) {
      throw new LoadError(`cannot read ${wasmUrl.pathname}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (isThreaded(variant)) args.pthreadPoolSize = await countNodeCores();
  } else {
    // Static URLs for every file the engine asks for by name, so bundlers see and emit them
    // (Vite renames assets: a path relative to the .wasm would miss the pthread worker).
    const pthreadWorkerUrl = await sameOriginUrl(new URL('./wasm/pipit-mt.worker.js', import.meta.url));
    // Without it a pthread worker imports './pipit-mt.js' next to itself, a name bundlers change.
    args.mainScriptUrlOrBlob = jsUrl.href;
    args.locateFile = (path: string) => {
      if (path.endsWith('.worker.js')) return pthreadWorkerUrl;
      if (path.endsWith('.wasm')) return wasmUrl.href;
      return new URL(path, wasmUrl).href;
    };
  }
  try {
    return await factory(args);
  } catch (e) {
    throw toPipitError(e);
  }
}

/** The engine, instantiated on first use and shared by every model afterwards. */
export function getModule(): Promise<RawModule> {
  if (modulePromise === null) {
    modulePromise = instantiate();
    // A failed start may be retried (say, after the files were copied into place).
    modulePromise.catch(() => {
      modulePromise = null;
    });
  }
  return modulePromise;
}
