// Loads the Emscripten module (wasm/pipit.js + wasm/pipit.wasm, next to this file) once per
// process or page, and describes what bindings/pipit_bindings.cpp exposes.

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
}

export interface RawGenerateOptions {
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  ignoreEos: boolean;
  topLogits: number;
}

export interface RawStep {
  token: number;
  text: string;
  finish: '' | 'stop' | 'length' | 'context';
  topLogits?: Array<[number, number]>;
}

export interface RawTimings {
  prefillMs: number;
  prefillTokens: number;
  decodeMs: number;
  decodeTokens: number;
}

export interface RawSession {
  contextLength(): number;
  position(): number;
  begin(promptIds: number[], options: RawGenerateOptions): void;
  next(): RawStep;
  reset(): void;
  timings(): RawTimings;
  delete(): void;
}

export interface RawModel {
  info(): RawInfo;
  tokenize(text: string, addBos: boolean, parseSpecial: boolean): Int32Array;
  detokenize(ids: ArrayLike<number>): string;
  createSession(contextLength: number): RawSession;
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
  loadTokenizer(ptr: number, size: number, allowDuplicateKeys: boolean): RawTokenizer;
}

interface ModuleArgs {
  wasmBinary?: Uint8Array;
  locateFile?: (path: string, prefix: string) => string;
  print?: (text: string) => void;
  printErr?: (text: string) => void;
}

type ModuleFactory = (args: ModuleArgs) => Promise<RawModule>;

export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

let modulePromise: Promise<RawModule> | null = null;

async function instantiate(): Promise<RawModule> {
  const jsUrl = new URL('./wasm/pipit.js', import.meta.url);
  const wasmUrl = new URL('./wasm/pipit.wasm', import.meta.url);
  let factory: ModuleFactory;
  try {
    const imported = (await import(jsUrl.href)) as { default: ModuleFactory };
    factory = imported.default;
  } catch (e) {
    throw new LoadError(
      `cannot load the pipit WASM engine from ${jsUrl.href}: ${(e as Error).message}. ` +
        'Build it (ninja -C build/wasm pipit) and copy pipit.js and pipit.wasm into web/lib/wasm/',
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
  } else {
    args.locateFile = (path: string) => new URL(path, wasmUrl).href;
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
