// pipit: small GGUF language models on the CPU of any browser or Node process.
//
//   const model = await Pipit.load('stories260K.gguf');
//   for await (const piece of model.generate('Once upon a time')) process.stdout.write(piece);
//   model.dispose();

import type {
  RawGenerateOptions,
  RawModel,
  RawModule,
  RawSession,
  RawStep,
  RawTokenLogprob,
} from './engine.js';
import { availableCores, engineVariant, getModule } from './engine.js';
import type { EngineVariant } from './engine.js';
import {
  AbortError,
  InvalidArgumentError,
  PipitError,
  native,
  shown,
  toPipitError,
} from './errors.js';
import type { ModelSources, ProgressCallback } from './source.js';
import { copyIntoWasm } from './source.js';
import type { StopOptions } from './run.js';
import { generateWithStops, stopList } from './run.js';
import type { ChatMessage, ChatTemplateName } from './templates.js';
import { renderChat } from './templates.js';
import type { TokenizerLoadOptions } from './tokenizer.js';
import { PipitTokenizer } from './tokenizer.js';

export {
  AbortError,
  ContextOverflowError,
  FormatError,
  IntegrityError,
  InvalidArgumentError,
  LoadError,
  OutOfMemoryError,
  PipitError,
  UnsupportedError,
  WorkerError,
} from './errors.js';
export type { EngineVariant } from './engine.js';
export type { PipitErrorKind } from './errors.js';
export type { LoadProgress, ModelSource, ModelSources, ProgressCallback } from './source.js';
export { cache } from './cache.js';
export type { CachedModel } from './cache.js';
export { catalog } from './catalog.js';
export type { CatalogEntry } from './catalog.js';
export { resolveHfUrl } from './hf.js';
export { Engine, createEngine } from './engine-client.js';
export type { EngineOptions, EngineRequestOptions, EngineWorker } from './engine-client.js';
export type * from './openai.js';
export { CHAT_TEMPLATE_NAMES, chatTemplateSource, renderChat } from './templates.js';
export type {
  ChatContentPart,
  ChatMessage,
  ChatRole,
  ChatTemplateName,
  RenderChatOptions,
  RenderedChat,
} from './templates.js';
export type { StopOptions } from './run.js';
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
  /**
   * Expected SHA-256 of the model file (64 hex digits), checked while it loads: a mismatch
   * throws IntegrityError. Catalog models bring theirs when the catalog knows it. A split
   * model takes an array, one hash per file in order.
   */
  sha256?: string | readonly string[];
  /**
   * Downloads (http/https, hf://, catalog ids) are kept in the model cache and later loads of
   * the same URL read the cached copy with no network access (default true). See `cache`.
   */
  cache?: boolean;
  /**
   * Threads to compute with, at most the cores available: default all of them. More than 1
   * needs the threaded engine, which runs in Node and in cross-origin isolated pages
   * (COOP/COEP headers); elsewhere the engine runs on one thread.
   */
  threads?: number;
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
  /** Threads this model computes with (see LoadOptions.threads). */
  threads: number;
  /**
   * The engine build computing: `pipit` (one thread) or `pipit-mt` (threaded), with the suffix
   * `-relaxed` where the runtime has relaxed SIMD.
   */
  engine: EngineVariant;
  /** Text of the BOS and EOS tokens ('' when the model has none), for chat templates. */
  bosToken: string;
  eosToken: string;
  /** The GGUF's `tokenizer.chat_template` (Jinja), or null when the file has none. */
  chatTemplate: string | null;
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
  /** Drop tokens less likely than minP times the most likely one; 0 = off (default). */
  minP?: number;
  /** Locally typical sampling mass in (0, 1]; 1 = off (default). */
  typicalP?: number;
  /** Repetition penalty over the last penaltyLastN tokens, > 0; 1 = off (default). */
  repeatPenalty?: number;
  /** Subtracted from a logit once per occurrence in the window (OpenAI's); 0 = off. */
  frequencyPenalty?: number;
  /** Subtracted from a logit once it occurs in the window (OpenAI's); 0 = off. */
  presencePenalty?: number;
  /** The penalties' window of recent tokens (prompt included); -1 = all, 0 = none; default 64. */
  penaltyLastN?: number;
  /** Token id -> added to its logit; -Infinity bans the token. */
  logitBias?: Record<number, number> | Map<number, number>;
  /** Generation stops before the first of these strings; none of it is returned. */
  stop?: string | string[];
  /** GBNF grammar the output must match (llama.cpp syntax; start rule `root`). */
  grammar?: string;
  /** JSON output: any object, or one matching a JSON schema (OpenAI's response_format). */
  responseFormat?: ResponseFormat;
  /** RNG seed, an integer in [0, 2^53); random when absent. */
  seed?: number;
  /** Keep going past the end-of-generation token. */
  ignoreEos?: boolean;
  /** Prepend BOS to a text prompt (default: the model's own setting). */
  addBos?: boolean;
  /** Turn the text of special tokens in the prompt into those tokens (default false). */
  parseSpecial?: boolean;
  /**
   * Keep the KV cache of the prefix this prompt shares with the model's current context (the
   * previous prompt and its answer) and prefill only the rest (default false; chat turns on).
   */
  cachePrompt?: boolean;
  /**
   * When the context fills up: 'error' (default) ends generation with finishReason 'context'
   * (and a prompt that does not fit throws ContextOverflowError); 'shift' drops the oldest
   * tokens after the first nKeep and goes on, as llama.cpp's context shift does.
   */
  contextShift?: 'error' | 'shift';
  /** Tokens a shift never drops (system prompt, BOS); default: the prompt, up to half the context. */
  nKeep?: number;
  /** Tokens dropped per shift; default: half of those after nKeep. */
  nDiscard?: number;
  /**
   * Collect each generated token's log-probability into GenerationResult.logprobs (OpenAI's
   * `logprobs`; log-softmax of the model's raw logits, before any sampling stage).
   */
  logprobs?: boolean;
  /** With each token, this many most likely alternatives (implies logprobs). */
  topLogprobs?: number;
  signal?: AbortSignal;
}

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { schema: object | boolean; name?: string; strict?: boolean } };

export interface GenerateTokensOptions extends GenerateOptions {
  /** Report this many highest logits at every step (default 0). */
  topLogits?: number;
}

/** A token's log-probability as OpenAI reports it (log-softmax of the raw logits). */
export type TokenLogprob = RawTokenLogprob;

/** A generated token's log-probability with its most likely alternatives, highest first. */
export type TokenLogprobs = TokenLogprob & { top_logprobs: TokenLogprob[] };

/** OpenAI's `logprobs` of a choice: one entry per generated token, in order. */
export interface GenerationLogprobs {
  content: TokenLogprobs[];
}

export interface TokenStep {
  /** The generated token id; -1 for trailing text flushed when generation ends. */
  token: number;
  /** Whole UTF-8 characters; may be empty while a character is incomplete. */
  text: string;
  /** [token id, logit] pairs, highest first (only with topLogits). */
  topLogits?: Array<[number, number]>;
  /** Only with logprobs / topLogprobs. */
  logprobs?: TokenLogprobs;
}

/** One layer's attention over the model's current context (see Pipit#attention). */
export interface AttentionWeights {
  layer: number;
  nHead: number;
  /** The context's token ids: queries and keys, in order. */
  tokens: number[];
  /** [head][query][key], tokens.length queries and keys per head; row q sums to 1 over keys <= q. */
  weights: Float32Array;
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
  /** Prompt tokens whose KV cache was kept from the previous generation (see cachePrompt). */
  reusedTokens: number;
  /** Time spent masking tokens with the grammar (within neither prefill nor decode). */
  grammarMs: number;
  /** Tokens that context shifts dropped (see contextShift). */
  droppedTokens: number;
}

export interface GenerationResult {
  finishReason: FinishReason;
  promptIds: number[];
  ids: number[];
  text: string;
  seed: number;
  timings: Timings;
  /** With GenerateOptions.logprobs or topLogprobs: one entry per id of `ids`. */
  logprobs?: GenerationLogprobs;
}

/** The latest generation on a model, also when it ended early (abort, stop text). */
export interface LastGeneration {
  promptIds: number[];
  seed: number;
  timings: Timings;
}

/** Options of Pipit#chat. */
export type ChatOptions = GenerateOptions &
  StopOptions & {
    /** A named template or Jinja text; default: the model's own, else 'chatml'. */
    chatTemplate?: ChatTemplateName | string;
  };

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
      `${where}: ${name} must be an integer from ${min} to ${max}, got ${shown(value)}`,
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
    throw new InvalidArgumentError(`${where}: ${name} must be ${range}, got ${shown(value)}`);
  }
  return value;
}

function optBool(where: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new InvalidArgumentError(`${where}: ${name} must be true or false, got ${shown(value)}`);
  }
  return value;
}

function optLogitBias(where: string, value: unknown, nVocab: number): Array<[number, number]> {
  if (value === undefined) return [];
  let entries: Array<[unknown, unknown]>;
  if (value instanceof Map) entries = Array.from(value.entries() as Iterable<[unknown, unknown]>);
  else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    entries = Object.entries(value);
  } else {
    throw new InvalidArgumentError(`${where}: logitBias must be an object or Map of token id -> bias`);
  }
  return entries.map(([key, bias]) => {
    const id = typeof key === 'string' && /^\d+$/.test(key) ? Number(key) : key;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= nVocab) {
      throw new InvalidArgumentError(
        `${where}: logitBias token id ${shown(key)} is out of range (the vocabulary has ${nVocab} tokens)`,
      );
    }
    if (typeof bias !== 'number' || Number.isNaN(bias) || bias === Infinity) {
      throw new InvalidArgumentError(
        `${where}: logitBias for token ${id} must be a finite number or -Infinity, got ${shown(bias)}`,
      );
    }
    return [id, bias];
  });
}

function optStop(where: string, value: unknown): string[] {
  if (value === undefined) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new InvalidArgumentError(`${where}: stop must be a non-empty string or an array of them`);
  }
  return list as string[];
}

function optResponseFormat(
  where: string,
  value: unknown,
): Pick<RawGenerateOptions, 'responseFormat' | 'jsonSchema'> {
  if (value === undefined) return { responseFormat: 'text', jsonSchema: '' };
  const f = value as { type?: unknown; json_schema?: { schema?: unknown } };
  if (value === null || typeof value !== 'object') {
    throw new InvalidArgumentError(`${where}: responseFormat must be an object with a type`);
  }
  if (f.type === 'text' || f.type === 'json_object') return { responseFormat: f.type, jsonSchema: '' };
  if (f.type === 'json_schema') {
    const schema = f.json_schema?.schema;
    if (schema === undefined || (typeof schema !== 'object' && typeof schema !== 'boolean')) {
      throw new InvalidArgumentError(
        `${where}: responseFormat json_schema needs json_schema.schema, a JSON schema object`,
      );
    }
    return { responseFormat: 'json_schema', jsonSchema: JSON.stringify(schema) };
  }
  throw new InvalidArgumentError(
    `${where}: responseFormat.type must be 'text', 'json_object' or 'json_schema', got ${shown(f.type)}`,
  );
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

// Long prompts are prefilled in slices with the event loop (and so an abort) between them, since
// one call into WASM holds the thread for as long as it runs. 256 is the runtime's own forward
// slice (kPrefillChunk), so slicing here does the very same arithmetic as one call.
const PREFILL_SLICE = 256;

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

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
  #last: LastGeneration | null = null;
  // The tokens the session holds (prompt and evaluated answer), or null when unknown (after
  // an error): where a sliced prefill may resume from the cache.
  #context: number[] | null = [];
  // Prefill time and tokens of the slices before the last one, for the timings.
  #sliced = { ms: 0, tokens: 0 };
  readonly #info: ModelInfo;
  /** Milliseconds Pipit.load took. */
  readonly loadMs: number;

  private constructor(
    mod: RawModule,
    raw: RawModel,
    contextLength: number,
    threads: number,
    loadMs: number,
  ) {
    this.#raw = raw;
    this.#module = mod;
    this.loadMs = loadMs;
    const info = native(() => raw.info());
    const session = native(() => raw.createSession(contextLength, threads));
    this.#session = session;
    this.#info = Object.freeze({
      ...info,
      tensorTypes: Object.freeze({ ...info.tensorTypes }),
      sessionContextLength: native(() => session.contextLength()),
      threads,
      engine: engineVariant(),
    });
  }

  /**
   * Loads a GGUF model. `source`: an http(s) URL (streamed, with progress), a relative URL in a
   * page, a File/Blob, an ArrayBuffer or Uint8Array, or in Node a file path or file: URL. A
   * split GGUF set loads from its first file's URL or path (the others are found by name:
   * `-00001-of-00003.gguf` -> `-00002-of-00003.gguf`...) or from an array of all its files.
   */
  static async load(source: ModelSources, options: LoadOptions = {}): Promise<Pipit> {
    const where = 'Pipit.load';
    if (options === null || typeof options !== 'object') {
      throw new InvalidArgumentError(`${where}: options must be an object`);
    }
    const contextLength = optInt(where, 'contextLength', options.contextLength, 0, 0, 1 << 20);
    const allowDup = optBool(where, 'allowDuplicateKeys', options.allowDuplicateKeys, false);
    const cores = await availableCores();
    const threads = Math.min(optInt(where, 'threads', options.threads, cores, 1, 256), cores);
    const signal = checkSignal(where, options.signal);
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new InvalidArgumentError(`${where}: onProgress must be a function`);
    }
    const start = now();
    const mod = await getModule();
    const files = await copyIntoWasm(mod, source, {
      onProgress: options.onProgress,
      signal,
      sha256: options.sha256,
      cache: options.cache,
    });
    // From here the engine owns the bytes (it frees them itself if loading fails).
    const raw = native(() =>
      files.length === 1
        ? mod.loadModel(files[0]!.ptr, files[0]!.size, allowDup)
        : mod.loadModelParts(
            files.map((f) => f.ptr),
            files.map((f) => f.size),
            allowDup,
          ),
    );
    try {
      return new Pipit(mod, raw, contextLength, threads, now() - start);
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
    source: ModelSources,
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
          `${where}: token id ${shown(id)} is out of range (the vocabulary has ${n} tokens)`,
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
    const reusePrefix = optBool(where, 'cachePrompt', options.cachePrompt, false);
    const topLogits = optInt(where, 'topLogits', options.topLogits, 0, 0, this.#info.nVocab);
    const nVocab = this.#info.nVocab;
    const topLogprobs = optInt(where, 'topLogprobs', options.topLogprobs, 0, 0, nVocab);
    const grammar = options.grammar ?? '';
    if (typeof grammar !== 'string') {
      throw new InvalidArgumentError(`${where}: grammar must be a string of GBNF`);
    }
    const format = optResponseFormat(where, options.responseFormat);
    if (grammar !== '' && format.responseFormat !== 'text') {
      throw new InvalidArgumentError(`${where}: grammar and a JSON responseFormat cannot be combined`);
    }
    const contextShift = options.contextShift ?? 'error';
    if (contextShift !== 'error' && contextShift !== 'shift') {
      throw new InvalidArgumentError(
        `${where}: contextShift must be 'error' or 'shift', got ${String(contextShift)}`,
      );
    }
    const raw: RawGenerateOptions = {
      maxTokens, temperature, topK, topP, seed, ignoreEos, topLogits, topLogprobs, grammar,
      reusePrefix,
      ...format,
      contextShift,
      nKeep: optInt(where, 'nKeep', options.nKeep, -1, -1, 1 << 24),
      nDiscard: optInt(where, 'nDiscard', options.nDiscard, 0, 0, 1 << 24),
      minP: optNumber(where, 'minP', options.minP, 0, (v) => v >= 0 && v <= 1, 'a number in [0, 1]'),
      typicalP: optNumber(where, 'typicalP', options.typicalP, 1, (v) => v > 0 && v <= 1,
        'a number in (0, 1]'),
      repeatPenalty: optNumber(where, 'repeatPenalty', options.repeatPenalty, 1, (v) => v > 0,
        'a number > 0 (1 = off)'),
      frequencyPenalty: optNumber(where, 'frequencyPenalty', options.frequencyPenalty, 0,
        () => true, 'a finite number'),
      presencePenalty: optNumber(where, 'presencePenalty', options.presencePenalty, 0,
        () => true, 'a finite number'),
      penaltyLastN: optInt(where, 'penaltyLastN', options.penaltyLastN, 64, -1, 1 << 24),
      logitBias: optLogitBias(where, options.logitBias, nVocab),
      stop: optStop(where, options.stop),
      logprobs: optBool(where, 'logprobs', options.logprobs, false) || topLogprobs > 0,
    };
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
    const logprobs: TokenLogprobs[] = [];
    let text = '';
    try {
      await this.#prefill(where, promptIds, raw, signal, seed);
      this.#last = { promptIds, seed, timings: this.#timings(where) };
      for (;;) {
        const step: RawStep = native(() => this.#sessionOrThrow(where).next());
        if (step.finish === '') this.#context?.push(step.token); // evaluated for the next step
        const isEnd = step.endToken;
        if (step.token >= 0 && !isEnd) ids.push(step.token);
        text += step.text;
        if ((step.token >= 0 && !isEnd) || step.text.length > 0) {
          const out: TokenStep = { token: isEnd ? -1 : step.token, text: step.text };
          if (step.topLogits) out.topLogits = step.topLogits;
          if (step.logprobs && !isEnd) {
            out.logprobs = step.logprobs;
            logprobs.push(step.logprobs);
          }
          yield out;
        }
        if (step.finish !== '') {
          const timings = this.#timings(where);
          this.#last = { promptIds, seed, timings };
          return {
            finishReason: step.finish, promptIds, ids, text, seed, timings,
            ...(raw.logprobs ? { logprobs: { content: logprobs } } : {}),
          };
        }
        await yieldToEventLoop();
        if (signal?.aborted) throw abortError(signal);
      }
    } catch (e) {
      if (!(e instanceof AbortError)) this.#context = null;
      throw e;
    } finally {
      this.#busy = false;
    }
  }

  /**
   * session.begin(promptIds, raw), in slices when a signal could stop it and the prompt is
   * long. Each slice begins a prefix of the prompt with reusePrefix, keeping what the slices
   * before it (and the cache, when raw.reusePrefix) computed; the last one begins the whole
   * prompt with the real options.
   */
  async #prefill(
    where: string,
    promptIds: number[],
    raw: RawGenerateOptions,
    signal: AbortSignal | undefined,
    seed: number,
  ): Promise<void> {
    const session = this.#sessionOrThrow(where);
    this.#sliced = { ms: 0, tokens: 0 };
    // As the runtime keeps it: the common prefix, but at least the last token evaluated anew.
    const kept = !raw.reusePrefix || this.#context === null
      ? 0
      : Math.min(commonPrefix(this.#context, promptIds), promptIds.length - 1);
    // Without knowing what the session holds, a first slice would cut its cache short.
    const canSlice = signal !== undefined && (!raw.reusePrefix || this.#context !== null) &&
      promptIds.length <= this.#info.sessionContextLength;
    const prefixOptions: RawGenerateOptions = {
      ...raw, maxTokens: 0, topLogits: 0, topLogprobs: 0, logprobs: false, grammar: '',
      responseFormat: 'text', jsonSchema: '', stop: [],
    };
    // #sliced counts the slices before the session's latest begin (whose timings it reports).
    const fold = (): void => {
      const t = native(() => session.timings());
      this.#sliced = { ms: this.#sliced.ms + t.prefillMs, tokens: this.#sliced.tokens + t.prefillTokens };
    };
    let slices = 0;
    for (let end = kept + PREFILL_SLICE; canSlice && end < promptIds.length; end += PREFILL_SLICE) {
      const prefix = promptIds.slice(0, end);
      if (slices++ > 0) fold();
      this.#context = null; // until the slice is in
      native(() => session.begin(prefix, { ...prefixOptions, reusePrefix: slices > 1 || raw.reusePrefix }));
      this.#context = prefix;
      await yieldToEventLoop();
      if (signal.aborted) {
        this.#last = { promptIds, seed, timings: this.#timings(where) };
        throw abortError(signal);
      }
    }
    if (slices > 0) fold();
    this.#context = null;
    native(() => session.begin(promptIds, { ...raw, reusePrefix: raw.reusePrefix || slices > 0 }));
    this.#context = [...promptIds];
  }

  #timings(where: string): Timings {
    const t = native(() => this.#sessionOrThrow(where).timings());
    const prefillMs = t.prefillMs + this.#sliced.ms;
    const prefillTokens = t.prefillTokens + this.#sliced.tokens;
    return {
      loadMs: this.loadMs,
      prefillMs,
      prefillTokens,
      prefillTokensPerSecond: perSecond(prefillTokens, prefillMs),
      decodeMs: t.decodeMs,
      decodeTokens: t.decodeTokens,
      decodeTokensPerSecond: perSecond(t.decodeTokens, t.decodeMs),
      reusedTokens: t.reusedTokens - this.#sliced.tokens,
      grammarMs: t.grammarMs,
      droppedTokens: t.droppedTokens,
    };
  }

  /** The prompt ids, seed and timings of the latest generation, also one that ended early. */
  get lastGeneration(): LastGeneration {
    const where = 'lastGeneration';
    this.#model(where);
    if (this.#last === null) {
      throw new InvalidArgumentError(`${where}: nothing was generated with this model yet`);
    }
    return { ...this.#last, timings: this.#timings(where) };
  }

  /**
   * Streams the assistant's answer to a conversation: the messages are rendered with the
   * model's chat template (or options.chatTemplate), special-token text in it becomes those
   * tokens, and the KV cache of the unchanged start of the conversation is reused.
   */
  async *chat(
    messages: ChatMessage[],
    options: ChatOptions = {},
  ): AsyncGenerator<string, GenerationResult, undefined> {
    if (options === null || typeof options !== 'object') {
      throw new InvalidArgumentError('chat: options must be an object');
    }
    const { chatTemplate, stop, ...rest } = options;
    const info = this.info;
    const rendered = await renderChat(messages, {
      ...(chatTemplate === undefined ? {} : { chatTemplate }),
      modelTemplate: info.chatTemplate,
      bosToken: info.bosToken,
      eosToken: info.eosToken,
    });
    const steps = generateWithStops(this, rendered.prompt, {
      parseSpecial: true,
      cachePrompt: true,
      // A template that writes BOS itself must not get a second one.
      ...(rendered.startsWithBos ? { addBos: false } : {}),
      ...rest,
      topLogits: 0,
      stop: [...rendered.stop, ...stopList('chat', stop)],
    });
    for (;;) {
      const r = await steps.next();
      if (r.done) return r.value;
      if (r.value.text.length > 0) yield r.value.text;
    }
  }

  /**
   * The attention weights of one layer (every head) over the current context: the last
   * prompt and what was generated after it. Computed on request by replaying the context, so
   * generating never pays for it; call it between generations.
   */
  attention(layer: number): AttentionWeights {
    const where = 'attention';
    const session = this.#sessionOrThrow(where);
    optInt(where, 'layer', layer, 0, 0, this.#info.nLayer - 1);
    if (this.#busy) {
      throw new InvalidArgumentError(`${where}: a generation is running on this model; wait for it to end`);
    }
    const weights = native(() => session.attention(layer));
    const tokens = Array.from(native(() => session.contextTokens()));
    return { layer, nHead: this.#info.nHead, tokens, weights };
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
