// pipit: small GGUF language models on the CPU of any browser or Node process.
//
//   const model = await Pipit.load('stories260K.gguf');
//   for await (const piece of model.generate('Once upon a time')) process.stdout.write(piece);
//   model.dispose();

import type { RawModel, RawModule, RawSession, RawStep } from './engine.js';
import { getModule } from './engine.js';
import {
  AbortError,
  InvalidArgumentError,
  PipitError,
  native,
  toPipitError,
} from './errors.js';
import type { ModelSource, ProgressCallback } from './source.js';
import { copyIntoWasm } from './source.js';
import type { TokenizerLoadOptions } from './tokenizer.js';
import { PipitTokenizer } from './tokenizer.js';

export {
  AbortError,
  ContextOverflowError,
  FormatError,
  InvalidArgumentError,
  LoadError,
  OutOfMemoryError,
  PipitError,
  UnsupportedError,
} from './errors.js';
export type { PipitErrorKind } from './errors.js';
export type { LoadProgress, ModelSource, ProgressCallback } from './source.js';
export { PipitTokenizer } from './tokenizer.js';
export type {
  TokenizerEncodeOptions,
  TokenizerInfo,
  TokenizerLoadOptions,
} from './tokenizer.js';

export interface LoadOptions {
  /** KV-cache size in tokens; 0 or absent: the model's trained context, capped at 4096. */
  contextLength?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Accept GGUF files with a duplicated metadata key (the first value wins). */
  allowDuplicateKeys?: boolean;
}

export interface ModelInfo {
  architecture: string;
  name: string;
  nVocab: number;
  /** The context length the model was trained with (from the GGUF). */
  contextLength: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  /** Number of tensors per type name, e.g. { f32: 48 }. */
  tensorTypes: Record<string, number>;
  fileBytes: number;
  bosId: number;
  eosId: number;
  /** Whether the tokenizer prepends BOS by default. */
  addBos: boolean;
  /** The KV-cache size this model instance generates with. */
  sessionContextLength: number;
}

export interface GenerateOptions {
  /** Most tokens to generate (default 256). */
  maxTokens?: number;
  /** 0 = greedy; default 0.8. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = all (default 40). */
  topK?: number;
  /** Nucleus sampling threshold in (0, 1]; 1 = off (default 0.95). */
  topP?: number;
  /** RNG seed, an integer in [0, 2^53); random when absent. */
  seed?: number;
  /** Keep going past the end-of-generation token. */
  ignoreEos?: boolean;
  /** Prepend BOS to a text prompt (default: the model's own setting). */
  addBos?: boolean;
  /** Turn the text of special tokens in the prompt into those tokens (default false). */
  parseSpecial?: boolean;
  signal?: AbortSignal;
}

export interface GenerateTokensOptions extends GenerateOptions {
  /** Report this many highest logits at every step (default 0). */
  topLogits?: number;
}

export interface TokenStep {
  /** The generated token id; -1 for trailing text flushed when generation ends. */
  token: number;
  /** Whole UTF-8 characters; may be empty while a character is incomplete. */
  text: string;
  /** [token id, logit] pairs, highest first (only with topLogits). */
  topLogits?: Array<[number, number]>;
}

export type FinishReason = 'stop' | 'length' | 'context';

export interface Timings {
  /** Time Pipit.load took for this model (reading, copying, parsing). */
  loadMs: number;
  prefillMs: number;
  prefillTokens: number;
  prefillTokensPerSecond: number;
  decodeMs: number;
  decodeTokens: number;
  decodeTokensPerSecond: number;
}

export interface GenerationResult {
  finishReason: FinishReason;
  promptIds: number[];
  ids: number[];
  text: string;
  seed: number;
  timings: Timings;
}

export interface TokenizeOptions {
  addBos?: boolean;
  parseSpecial?: boolean;
}

function optInt(
  where: string,
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(
      `${where}: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`,
    );
  }
  return value;
}

function optNumber(
  where: string,
  name: string,
  value: unknown,
  fallback: number,
  ok: (v: number) => boolean,
  range: string,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
    throw new InvalidArgumentError(`${where}: ${name} must be ${range}, got ${String(value)}`);
  }
  return value;
}

function optBool(where: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new InvalidArgumentError(`${where}: ${name} must be true or false, got ${String(value)}`);
  }
  return value;
}

function checkSignal(where: string, signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (typeof AbortSignal === 'undefined' || !(signal instanceof AbortSignal)) {
    throw new InvalidArgumentError(`${where}: signal must be an AbortSignal`);
  }
  return signal;
}

function abortError(signal: AbortSignal): AbortError {
  const reason: unknown = signal.reason;
  const detail =
    reason instanceof Error ? `: ${reason.message}` : typeof reason === 'string' ? `: ${reason}` : '';
  return new AbortError(`generation aborted${detail}`, { cause: reason });
}

// Lets the page paint and handle input between tokens. setImmediate (Node) and MessageChannel
// (browsers) are not clamped to 4 ms the way nested setTimeout calls are.
const yieldToEventLoop: () => Promise<void> = (() => {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  if (typeof g.setImmediate === 'function') {
    const setImmediate = g.setImmediate;
    return () => new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (typeof MessageChannel === 'function') {
    const channel = new MessageChannel();
    const waiting: Array<() => void> = [];
    channel.port1.onmessage = () => waiting.shift()?.();
    return () =>
      new Promise<void>((resolve) => {
        waiting.push(resolve);
        channel.port2.postMessage(null);
      });
  }
  return () => new Promise<void>((resolve) => setTimeout(resolve, 0));
})();

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

function perSecond(tokens: number, ms: number): number {
  return ms > 0 ? (tokens * 1000) / ms : 0;
}

export class Pipit {
  #raw: RawModel | null;
  readonly #module: RawModule;
  #session: RawSession | null = null;
  #busy = false;
  readonly #info: ModelInfo;
  /** Milliseconds Pipit.load took. */
  readonly loadMs: number;

  private constructor(mod: RawModule, raw: RawModel, contextLength: number, loadMs: number) {
    this.#raw = raw;
    this.#module = mod;
    this.loadMs = loadMs;
    const info = native(() => raw.info());
    const session = native(() => raw.createSession(contextLength));
    this.#session = session;
    this.#info = Object.freeze({
      ...info,
      tensorTypes: Object.freeze({ ...info.tensorTypes }),
      sessionContextLength: native(() => session.contextLength()),
    });
  }

  /**
   * Loads a GGUF model. `source`: an http(s) URL (streamed, with progress), a relative URL in a
   * page, a File/Blob, an ArrayBuffer or Uint8Array, or in Node a file path or file: URL.
   */
  static async load(source: ModelSource, options: LoadOptions = {}): Promise<Pipit> {
    const where = 'Pipit.load';
    if (options === null || typeof options !== 'object') {
      throw new InvalidArgumentError(`${where}: options must be an object`);
    }
    const contextLength = optInt(where, 'contextLength', options.contextLength, 0, 0, 1 << 20);
    const allowDup = optBool(where, 'allowDuplicateKeys', options.allowDuplicateKeys, false);
    const signal = checkSignal(where, options.signal);
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new InvalidArgumentError(`${where}: onProgress must be a function`);
    }
    const start = now();
    const mod = await getModule();
    const bytes = await copyIntoWasm(mod, source, options.onProgress, signal);
    // From here the engine owns the bytes (it frees them itself if loading fails).
    const raw = native(() => mod.loadModel(bytes.ptr, bytes.size, allowDup));
    try {
      return new Pipit(mod, raw, contextLength, now() - start);
    } catch (e) {
      raw.delete();
      throw toPipitError(e);
    }
  }

  /**
   * Loads only the tokenizer of a GGUF file (no weights): works on vocab-only files too.
   * `source` is anything Pipit.load accepts.
   */
  static loadTokenizer(
    source: ModelSource,
    options: TokenizerLoadOptions = {},
  ): Promise<PipitTokenizer> {
    return PipitTokenizer.load(source, options);
  }

  #model(where: string): RawModel {
    if (this.#raw === null) {
      throw new PipitError(
        `${where}: this model was disposed; load it again with Pipit.load()`,
        'Disposed',
      );
    }
    return this.#raw;
  }

  get info(): ModelInfo {
    this.#model('info');
    return this.#info;
  }

  /**
   * Bytes of WebAssembly memory the engine holds now (shared by every model of this page or
   * process): the model file, KV caches and scratch. It grows on demand and never shrinks.
   */
  get wasmMemoryBytes(): number {
    return this.#module.HEAPU8.byteLength;
  }

  get disposed(): boolean {
    return this.#raw === null;
  }

  tokenize(text: string, options: TokenizeOptions = {}): number[] {
    const raw = this.#model('tokenize');
    if (typeof text !== 'string') {
      throw new InvalidArgumentError('tokenize: text must be a string');
    }
    const addBos = optBool('tokenize', 'addBos', options.addBos, this.#info.addBos);
    const parseSpecial = optBool('tokenize', 'parseSpecial', options.parseSpecial, false);
    return Array.from(native(() => raw.tokenize(text, addBos, parseSpecial)));
  }

  detokenize(ids: ArrayLike<number>): string {
    const raw = this.#model('detokenize');
    const list = this.#checkIds('detokenize', ids);
    return native(() => raw.detokenize(list));
  }

  #checkIds(where: string, ids: ArrayLike<number>): number[] {
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw new InvalidArgumentError(`${where}: ids must be an array of token ids`);
    }
    const list = Array.from(ids);
    const n = this.#info.nVocab;
    for (const id of list) {
      if (!Number.isInteger(id) || id < 0 || id >= n) {
        throw new InvalidArgumentError(
          `${where}: token id ${String(id)} is out of range (the vocabulary has ${n} tokens)`,
        );
      }
    }
    return list;
  }

  /** Streams the generated text, piece by piece. The generator's return value has the details. */
  async *generate(
    prompt: string,
    options: GenerateOptions = {},
  ): AsyncGenerator<string, GenerationResult, undefined> {
    if (typeof prompt !== 'string') {
      throw new InvalidArgumentError('generate: prompt must be a string');
    }
    const steps = this.generateTokens(prompt, { ...options, topLogits: 0 });
    for (;;) {
      const r = await steps.next();
      if (r.done) return r.value;
      if (r.value.text.length > 0) yield r.value.text;
    }
  }

  /** Generates the whole answer at once. */
  async complete(
    prompt: string | ArrayLike<number>,
    options: GenerateTokensOptions = {},
  ): Promise<GenerationResult> {
    const steps = this.generateTokens(prompt, options);
    for (;;) {
      const r = await steps.next();
      if (r.done) return r.value;
    }
  }

  /** Token-level generation: yields every token with its text (and top logits if asked). */
  async *generateTokens(
    prompt: string | ArrayLike<number>,
    options: GenerateTokensOptions = {},
  ): AsyncGenerator<TokenStep, GenerationResult, undefined> {
    const where = 'generate';
    this.#model(where);
    if (options === null || typeof options !== 'object') {
      throw new InvalidArgumentError(`${where}: options must be an object`);
    }
    const maxTokens = optInt(where, 'maxTokens', options.maxTokens, 256, 0, 1 << 24);
    const temperature = optNumber(where, 'temperature', options.temperature, 0.8,
      (v) => v >= 0, 'a number >= 0 (0 = greedy)');
    const topK = optInt(where, 'topK', options.topK, 40, 0, 1 << 30);
    const topP = optNumber(where, 'topP', options.topP, 0.95, (v) => v > 0 && v <= 1,
      'a number in (0, 1]');
    const seed = optInt(where, 'seed', options.seed,
      Math.floor(Math.random() * 0x100000000), 0, Number.MAX_SAFE_INTEGER);
    const ignoreEos = optBool(where, 'ignoreEos', options.ignoreEos, false);
    const topLogits = optInt(where, 'topLogits', options.topLogits, 0, 0, this.#info.nVocab);
    const signal = checkSignal(where, options.signal);

    let promptIds: number[];
    if (typeof prompt === 'string') {
      promptIds = this.tokenize(prompt, {
        addBos: optBool(where, 'addBos', options.addBos, this.#info.addBos),
        parseSpecial: optBool(where, 'parseSpecial', options.parseSpecial, false),
      });
    } else {
      promptIds = this.#checkIds(where, prompt);
    }
    // An empty prompt means BOS alone (the runtime does the same; this makes it visible).
    if (promptIds.length === 0 && this.#info.bosId >= 0) promptIds = [this.#info.bosId];

    if (this.#busy) {
      throw new InvalidArgumentError(
        `${where}: a generation is already running on this model; finish or abort it first`,
      );
    }
    if (signal?.aborted) throw abortError(signal);
    this.#busy = true;
    const ids: number[] = [];
    let text = '';
    try {
      const session = this.#sessionOrThrow(where);
      native(() =>
        session.begin(promptIds, {
          maxTokens, temperature, topK, topP, seed, ignoreEos, topLogits,
        }),
      );
      for (;;) {
        const step: RawStep = native(() => this.#sessionOrThrow(where).next());
        const isEnd = step.finish === 'stop';
        if (step.token >= 0 && !isEnd) ids.push(step.token);
        text += step.text;
        if ((step.token >= 0 && !isEnd) || step.text.length > 0) {
          const out: TokenStep = { token: isEnd ? -1 : step.token, text: step.text };
          if (step.topLogits) out.topLogits = step.topLogits;
          yield out;
        }
        if (step.finish !== '') {
          const t = native(() => this.#sessionOrThrow(where).timings());
          return {
            finishReason: step.finish,
            promptIds,
            ids,
            text,
            seed,
            timings: {
              loadMs: this.loadMs,
              prefillMs: t.prefillMs,
              prefillTokens: t.prefillTokens,
              prefillTokensPerSecond: perSecond(t.prefillTokens, t.prefillMs),
              decodeMs: t.decodeMs,
              decodeTokens: t.decodeTokens,
              decodeTokensPerSecond: perSecond(t.decodeTokens, t.decodeMs),
            },
          };
        }
        await yieldToEventLoop();
        if (signal?.aborted) throw abortError(signal);
      }
    } finally {
      this.#busy = false;
    }
  }

  #sessionOrThrow(where: string): RawSession {
    this.#model(where);
    if (this.#session === null) throw new PipitError(`${where}: no session`, 'Internal');
    return this.#session;
  }

  /** Frees the model's WASM memory. Using the model afterwards throws. */
  dispose(): void {
    if (this.#raw === null) return;
    this.#session?.delete();
    this.#session = null;
    this.#raw.delete();
    this.#raw = null;
  }
}

export default Pipit;
