// createEngine: a model in a worker (a Web Worker in browsers, worker_threads in Node) behind
// an async API shaped like OpenAI's client. The caller's thread only renders chat templates and
// passes messages; the worker runs requests one at a time, queued in arrival order.
//
//   const engine = await createEngine({ model: 'model.gguf' });
//   const reply = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] });
//   console.log(reply.choices[0].message.content);
//   engine.dispose();

import { isNode } from './engine.js';
import {
  AbortError,
  ContextOverflowError,
  FormatError,
  InvalidArgumentError,
  IntegrityError,
  LoadError,
  OutOfMemoryError,
  PipitError,
  UnsupportedError,
  WorkerError,
} from './errors.js';
import type {
  GenerateOptions,
  GenerationResult,
  LoadOptions,
  ModelInfo,
  TokenizeOptions,
} from './index.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParams,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
  Completion,
  CompletionCreateParams,
  CompletionCreateParamsNonStreaming,
  CompletionCreateParamsStreaming,
} from './openai.js';
import { openAIFinishReason, responseId, toGenerateOptions, usageOf } from './openai.js';
import type { Reply, Request, WireError, WireFile, WireGenerateOptions, WireSource } from './protocol.js';
import type { StopOptions } from './run.js';
import { stopList } from './run.js';
import { findCatalogEntry } from './catalog.js';
import type { LoadProgress, ModelSource, ModelSources } from './source.js';
import { renderChat } from './templates.js';

export interface EngineOptions extends Omit<LoadOptions, 'signal'> {
  /**
   * A catalog id, hf:// name, URL, File/Blob, bytes, or in Node a file path. An ArrayBuffer (or
   * a Uint8Array spanning all of its buffer) is transferred to the worker, not copied: it is
   * detached afterwards (pass bytes.slice() to keep a copy).
   */
  model: ModelSources;
  /**
   * Threads for the engine to use. Accepted and passed to the worker; today's engine is the
   * single-threaded WASM build, so it runs on one.
   */
  threads?: number;
  /** Cancels loading. */
  signal?: AbortSignal;
  /**
   * A worker you started from pipit's `worker.js` (exported as `pipit/worker.js`), for when a
   * bundler or a Content Security Policy needs it made your way: a module Web Worker, or a
   * worker_threads Worker in Node. The engine owns it from then on; dispose() terminates it.
   * Default: the engine starts its own.
   */
  worker?: EngineWorker;
}

/** The part of a Web Worker or a Node worker_threads Worker that an engine uses. */
export interface EngineWorker {
  postMessage(message: unknown, transfer: ArrayBuffer[]): void;
  terminate(): unknown;
}

interface NodeStyleWorker extends EngineWorker {
  on(event: string, listener: (value: never) => void): unknown;
  ref(): void;
  unref(): void;
}

interface WebStyleWorker extends EngineWorker {
  onmessage: ((event: MessageEvent<Reply>) => void) | null;
  onerror: ((event: ErrorEvent) => void) | null;
  onmessageerror: ((event: MessageEvent) => void) | null;
}

export interface EngineRequestOptions {
  signal?: AbortSignal;
}

type Outgoing = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

interface Pending {
  resolve(value: unknown): void;
  reject(error: PipitError): void;
  onStep?: (text: string) => void;
  onProgress?: (progress: LoadProgress) => void;
}

interface Transport {
  post(message: Request, transfer?: ArrayBuffer[]): void;
  terminate(): void;
  /** Node: whether the worker keeps the process alive (only while requests are pending). */
  keepAlive(active: boolean): void;
}

function revive(error: WireError): PipitError {
  const m = error.message;
  switch (error.kind) {
    case 'InvalidArgument':
      return new InvalidArgumentError(m);
    case 'Format':
      return new FormatError(m);
    case 'Unsupported':
      return new UnsupportedError(m);
    case 'ContextOverflow':
      return new ContextOverflowError(m);
    case 'OutOfMemory':
      return new OutOfMemoryError(m);
    case 'Aborted':
      return new AbortError(m);
    case 'Load':
      return new LoadError(m);
    case 'Integrity':
      return new IntegrityError(m);
    case 'Worker':
      return new WorkerError(m);
    default:
      return new PipitError(m, error.kind);
  }
}

function abortError(signal: AbortSignal): AbortError {
  const reason: unknown = signal.reason;
  const detail =
    reason instanceof Error ? `: ${reason.message}` : typeof reason === 'string' ? `: ${reason}` : '';
  return new AbortError(`the request was aborted${detail}`, { cause: reason });
}

function checkSignal(where: string, signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (typeof AbortSignal === 'undefined' || !(signal instanceof AbortSignal)) {
    throw new InvalidArgumentError(`${where}: signal must be an AbortSignal`);
  }
  return signal;
}

function checkObject(where: string, name: string, value: unknown): void {
  if (value === null || typeof value !== 'object') {
    throw new InvalidArgumentError(`${where}: ${name} must be an object`);
  }
}

async function startWorker(): Promise<EngineWorker> {
  if (isNode()) {
    const { Worker } = await import('node:worker_threads');
    return new Worker(new URL('./worker.js', import.meta.url));
  }
  // Written out in full so that bundlers (Vite, webpack) find and bundle the worker.
  return new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
}

function attach(
  worker: EngineWorker,
  onReply: (reply: Reply) => void,
  onDeath: (reason: string) => void,
): Transport {
  if (typeof (worker as Partial<NodeStyleWorker>).on === 'function') {
    const w = worker as NodeStyleWorker;
    let crash = '';
    w.on('message', (reply: Reply) => onReply(reply));
    w.on('error', (e: Error) => {
      crash = e.message;
    });
    w.on('messageerror', (e: Error) => onDeath(`a message could not be read: ${e.message}`));
    w.on('exit', (code: number) => onDeath(crash || `exit code ${code}`));
    return {
      post: (message, transfer = []) => w.postMessage(message, transfer),
      terminate: () => void w.terminate(),
      keepAlive: (active) => (active ? w.ref() : w.unref()),
    };
  }
  const w = worker as WebStyleWorker;
  w.onmessage = (event) => onReply(event.data);
  w.onerror = (event) => {
    event.preventDefault();
    onDeath(event.message || 'the worker script failed to load or threw');
  };
  w.onmessageerror = () => onDeath('a message could not be read');
  return {
    post: (message, transfer = []) => w.postMessage(message, transfer),
    terminate: () => void w.terminate(),
    keepAlive: () => undefined,
  };
}

function wireSource(source: ModelSources): WireSource {
  if (Array.isArray(source)) return source.map((s: ModelSource) => wireFile(s));
  return wireFile(source as ModelSource);
}

function wireFile(source: ModelSource): WireFile {
  if (source instanceof URL) return source.href;
  if (typeof source === 'string' && !isNode() && !findCatalogEntry(source) && !/^hf:\/\//i.test(source)) {
    // The worker resolves relative URLs against its own script; the caller meant the page.
    const base = (globalThis as { location?: { href: string } }).location?.href;
    return base === undefined ? source : new URL(source, base).href;
  }
  return source;
}

// Bytes move to the worker instead of being copied (a model is hundreds of MB): the caller's
// ArrayBuffer is detached afterwards. A view of part of a buffer is copied, as is shared memory.
function transferListOf(source: WireSource): ArrayBuffer[] {
  // A buffer listed twice (two views of it) would make postMessage throw.
  if (Array.isArray(source)) return [...new Set(source.flatMap((file) => transferListOf(file)))];
  if (source instanceof ArrayBuffer) return [source];
  if (
    ArrayBuffer.isView(source) &&
    source.buffer instanceof ArrayBuffer &&
    source.byteOffset === 0 &&
    source.byteLength === source.buffer.byteLength
  ) {
    return [source.buffer];
  }
  return [];
}

function modelIdOf(sources: ModelSources, info: ModelInfo): string {
  const source: ModelSource | undefined = Array.isArray(sources) ? sources[0] : (sources as ModelSource);
  let name = '';
  if (typeof source === 'string' || source instanceof URL) {
    const text = source instanceof URL ? source.pathname : source.split(/[?#]/)[0]!;
    name = text.split(/[\\/]/).pop() ?? '';
  } else if (typeof Blob !== 'undefined' && source instanceof Blob) {
    const fileName = (source as Blob & { name?: unknown }).name;
    if (typeof fileName === 'string') name = fileName;
  }
  name = name.replace(/(-\d{5}-of-\d{5})?\.gguf$/i, '');
  return name || info.name || info.architecture;
}

class ChatCompletions {
  readonly #engine: Engine;
  constructor(engine: Engine) {
    this.#engine = engine;
  }

  create(
    params: ChatCompletionCreateParamsStreaming,
    options?: EngineRequestOptions,
  ): Promise<AsyncGenerator<ChatCompletionChunk, void, undefined>>;
  create(
    params: ChatCompletionCreateParamsNonStreaming,
    options?: EngineRequestOptions,
  ): Promise<ChatCompletion>;
  create(
    params: ChatCompletionCreateParams,
    options?: EngineRequestOptions,
  ): Promise<ChatCompletion | AsyncGenerator<ChatCompletionChunk, void, undefined>>;
  async create(
    params: ChatCompletionCreateParams,
    options: EngineRequestOptions = {},
  ): Promise<ChatCompletion | AsyncGenerator<ChatCompletionChunk, void, undefined>> {
    const where = 'chat.completions.create';
    checkObject(where, 'params', params);
    checkObject(where, 'options', options);
    const info = this.#engine.loadedInfo(where);
    const generate = toGenerateOptions(where, params);
    const signal = checkSignal(where, options.signal ?? params.signal);
    const rendered = await renderChat(params.messages, {
      ...(params.chatTemplate === undefined ? {} : { chatTemplate: params.chatTemplate }),
      modelTemplate: info.chatTemplate,
      bosToken: info.bosToken,
      eosToken: info.eosToken,
    });
    const wire: WireGenerateOptions = {
      parseSpecial: true,
      // A template that writes BOS itself must not get a second one.
      ...(rendered.startsWithBos ? { addBos: false } : {}),
      ...generate,
      stop: [...rendered.stop, ...stopList(where, generate.stop)],
    };
    const steps = this.#engine.start(rendered.prompt, wire, signal);
    const meta = { id: responseId('chatcmpl-'), created: Math.floor(Date.now() / 1000), model: this.#engine.modelId };
    if (params.stream === true) return chatChunks(steps, meta);
    const result = await drain(steps);
    return {
      ...meta,
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: result.text },
          finish_reason: openAIFinishReason(result.finishReason),
          logprobs: result.logprobs ?? null,
        },
      ],
      usage: usageOf(result),
      timings: result.timings,
    };
  }
}

class Completions {
  readonly #engine: Engine;
  constructor(engine: Engine) {
    this.#engine = engine;
  }

  create(
    params: CompletionCreateParamsStreaming,
    options?: EngineRequestOptions,
  ): Promise<AsyncGenerator<Completion, void, undefined>>;
  create(params: CompletionCreateParamsNonStreaming, options?: EngineRequestOptions): Promise<Completion>;
  create(
    params: CompletionCreateParams,
    options?: EngineRequestOptions,
  ): Promise<Completion | AsyncGenerator<Completion, void, undefined>>;
  async create(
    params: CompletionCreateParams,
    options: EngineRequestOptions = {},
  ): Promise<Completion | AsyncGenerator<Completion, void, undefined>> {
    const where = 'completions.create';
    checkObject(where, 'params', params);
    checkObject(where, 'options', options);
    this.#engine.loadedInfo(where);
    const prompt: unknown = params.prompt;
    if (typeof prompt !== 'string' && !Array.isArray(prompt)) {
      throw new InvalidArgumentError(`${where}: prompt must be a string or an array of token ids`);
    }
    const signal = checkSignal(where, options.signal ?? params.signal);
    const steps = this.#engine.start(prompt, toGenerateOptions(where, params), signal);
    const meta = { id: responseId('cmpl-'), created: Math.floor(Date.now() / 1000), model: this.#engine.modelId };
    if (params.stream === true) return completionChunks(steps, meta);
    const result = await drain(steps);
    return {
      ...meta,
      object: 'text_completion',
      choices: [
        {
          index: 0,
          text: result.text,
          finish_reason: openAIFinishReason(result.finishReason),
          logprobs: result.logprobs ?? null,
        },
      ],
      usage: usageOf(result),
      timings: result.timings,
    };
  }
}

interface ResponseMeta {
  id: string;
  created: number;
  model: string;
}

async function drain(steps: AsyncGenerator<string, GenerationResult, undefined>): Promise<GenerationResult> {
  for (;;) {
    const r = await steps.next();
    if (r.done) return r.value;
  }
}

async function* chatChunks(
  steps: AsyncGenerator<string, GenerationResult, undefined>,
  meta: ResponseMeta,
): AsyncGenerator<ChatCompletionChunk, void, undefined> {
  const chunk = (delta: ChatCompletionChunk['choices'][0]['delta']): ChatCompletionChunk => ({
    ...meta,
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, finish_reason: null, logprobs: null }],
  });
  try {
    yield chunk({ role: 'assistant', content: '' });
    for (;;) {
      const r = await steps.next();
      if (r.done) {
        yield {
          ...meta,
          object: 'chat.completion.chunk',
          choices: [{ index: 0, delta: {}, finish_reason: openAIFinishReason(r.value.finishReason), logprobs: null }],
          usage: usageOf(r.value),
          timings: r.value.timings,
        };
        return;
      }
      yield chunk({ content: r.value });
    }
  } finally {
    // A consumer that stops reading early aborts the generation in the worker.
    await steps.return(undefined as never);
  }
}

async function* completionChunks(
  steps: AsyncGenerator<string, GenerationResult, undefined>,
  meta: ResponseMeta,
): AsyncGenerator<Completion, void, undefined> {
  try {
    for (;;) {
      const r = await steps.next();
      if (r.done) {
        yield {
          ...meta,
          object: 'text_completion',
          choices: [{ index: 0, text: '', finish_reason: openAIFinishReason(r.value.finishReason), logprobs: null }],
          usage: usageOf(r.value),
          timings: r.value.timings,
        };
        return;
      }
      yield {
        ...meta,
        object: 'text_completion',
        choices: [{ index: 0, text: r.value, finish_reason: null, logprobs: null }],
      };
    }
  } finally {
    await steps.return(undefined as never);
  }
}

/** A model running in a worker. Create one with createEngine(). */
export class Engine {
  readonly chat: { readonly completions: ChatCompletions };
  readonly completions: Completions;
  #transport: Transport | null = null;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #stopped: PipitError | null = null;
  #info: ModelInfo | null = null;
  #modelId = '';

  private constructor() {
    this.chat = Object.freeze({ completions: new ChatCompletions(this) });
    this.completions = new Completions(this);
  }

  /** @internal Use createEngine(). */
  static async spawn(worker: EngineWorker | undefined): Promise<Engine> {
    const engine = new Engine();
    engine.#transport = attach(
      worker ?? (await startWorker()),
      (reply) => engine.#receive(reply),
      (reason) =>
        engine.#stop(
          new WorkerError(
            `the pipit worker stopped (${reason}); this engine cannot be used any more, ` +
              'create a new one with createEngine()',
          ),
        ),
    );
    engine.#transport.keepAlive(false);
    return engine;
  }

  /** The model's id in responses: the file name without .gguf, else general.name. */
  get modelId(): string {
    return this.#modelId;
  }

  /** Loads a model into this engine's worker, replacing the one it has. */
  async load(model: ModelSources, options: Omit<EngineOptions, 'model' | 'worker'> = {}): Promise<ModelInfo> {
    const where = 'engine.load';
    checkObject(where, 'options', options);
    const signal = checkSignal(where, options.signal);
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new InvalidArgumentError(`${where}: onProgress must be a function`);
    }
    const threads = options.threads;
    if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > 256)) {
      throw new InvalidArgumentError(`${where}: threads must be an integer from 1 to 256, got ${String(threads)}`);
    }
    this.#info = null;
    const source = wireSource(model);
    const info = await this.#request<ModelInfo>(
      {
        type: 'load',
        source,
        options: {
          ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
          ...(options.allowDuplicateKeys === undefined ? {} : { allowDuplicateKeys: options.allowDuplicateKeys }),
          ...(threads === undefined ? {} : { threads }),
          ...(options.sha256 === undefined ? {} : { sha256: options.sha256 }),
          ...(options.cache === undefined ? {} : { cache: options.cache }),
        },
      },
      {
        signal,
        transfer: transferListOf(source),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      },
    );
    this.#info = info;
    this.#modelId = modelIdOf(model, info);
    return info;
  }

  /** Frees the model (the worker stays, ready for engine.load()). */
  async unload(): Promise<void> {
    this.#info = null;
    await this.#request<null>({ type: 'unload' }, {});
  }

  /** Ends the worker. Pending requests reject; the engine cannot be used afterwards. */
  dispose(): void {
    this.#stop(new PipitError('this engine was disposed; create a new one with createEngine()', 'Disposed'));
  }

  get disposed(): boolean {
    return this.#stopped !== null;
  }

  async info(): Promise<ModelInfo> {
    return this.loadedInfo('info');
  }

  async tokenize(text: string, options: TokenizeOptions = {}): Promise<number[]> {
    if (typeof text !== 'string') throw new InvalidArgumentError('tokenize: text must be a string');
    checkObject('tokenize', 'options', options);
    return this.#request<number[]>({ type: 'tokenize', text, options: { ...options } }, {});
  }

  async detokenize(ids: ArrayLike<number>): Promise<string> {
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw new InvalidArgumentError('detokenize: ids must be an array of token ids');
    }
    return this.#request<string>({ type: 'detokenize', ids: Array.from(ids) }, {});
  }

  /** Streams generated text like Pipit#generate; the return value has the details. */
  generate(
    prompt: string | ArrayLike<number>,
    options: GenerateOptions & StopOptions = {},
  ): AsyncGenerator<string, GenerationResult, undefined> {
    checkObject('generate', 'options', options);
    const { signal, ...rest } = options;
    const ids = typeof prompt === 'string' ? prompt : Array.from(prompt);
    return this.start(ids, rest, checkSignal('generate', signal));
  }

  /** @internal The model's info, or a typed error when there is none. */
  loadedInfo(where: string): ModelInfo {
    if (this.#stopped !== null) throw this.#stopped;
    if (this.#info === null) {
      throw new PipitError(`${where}: no model is loaded; call engine.load(model) first`, 'Disposed');
    }
    return this.#info;
  }

  /**
   * @internal Queues a generation now (before the caller reads any of it) and returns its pieces;
   * leaving the loop early aborts it in the worker.
   */
  start(
    prompt: string | number[],
    options: WireGenerateOptions,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<string, GenerationResult, undefined> {
    const pieces: string[] = [];
    let outcome: { ok: true; value: GenerationResult } | { ok: false; error: unknown } | null = null;
    let wake: (() => void) | null = null;
    const stopReading = new AbortController();
    const done = this.#request<GenerationResult>(
      { type: 'generate', prompt, options },
      {
        signal,
        cancel: stopReading.signal,
        onStep: (text) => {
          pieces.push(text);
          wake?.();
        },
      },
    );
    done.then(
      (value) => {
        outcome = { ok: true, value };
        wake?.();
      },
      (error: unknown) => {
        outcome = { ok: false, error };
        wake?.();
      },
    );
    async function* read(): AsyncGenerator<string, GenerationResult, undefined> {
      try {
        for (;;) {
          const piece = pieces.shift();
          if (piece !== undefined) {
            yield piece;
            continue;
          }
          const o = outcome as typeof outcome;
          if (o !== null) {
            if (o.ok) return o.value;
            throw o.error;
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
        }
      } finally {
        if (outcome === null) stopReading.abort('the caller stopped reading');
      }
    }
    return read();
  }

  #request<T>(
    message: Outgoing,
    hooks: {
      signal?: AbortSignal | undefined;
      cancel?: AbortSignal;
      onStep?: (text: string) => void;
      onProgress?: (progress: LoadProgress) => void;
      transfer?: ArrayBuffer[];
    },
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#stopped !== null || this.#transport === null) {
        reject(this.#stopped ?? new PipitError('the engine has no worker', 'Internal'));
        return;
      }
      const { signal, cancel } = hooks;
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const id = this.#nextId++;
      const onAbort = (): void => {
        if (!this.#pending.has(id)) return;
        this.#settle(id);
        this.#transport?.post({ type: 'abort', id });
        reject(abortError(signal?.aborted ? signal : (cancel ?? signal!)));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      cancel?.addEventListener('abort', onAbort, { once: true });
      const detach = (): void => {
        signal?.removeEventListener('abort', onAbort);
        cancel?.removeEventListener('abort', onAbort);
      };
      this.#pending.set(id, {
        resolve: (value) => {
          detach();
          resolve(value as T);
        },
        reject: (error) => {
          detach();
          reject(error);
        },
        ...(hooks.onStep ? { onStep: hooks.onStep } : {}),
        ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
      });
      try {
        this.#transport.post({ ...message, id } as Request, hooks.transfer);
      } catch (e) {
        this.#settle(id);
        detach();
        reject(
          new InvalidArgumentError(
            `the request cannot be sent to the worker (${(e as Error).message}); options must ` +
              'be plain data (no functions or class instances)',
            { cause: e },
          ),
        );
        return;
      }
      this.#transport.keepAlive(true);
    });
  }

  /** Forgets a request; the worker may keep the process alive only while some are pending. */
  #settle(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#transport?.keepAlive(false);
  }

  #receive(reply: Reply): void {
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return; // aborted or settled already
    switch (reply.type) {
      case 'step':
        pending.onStep?.(reply.text);
        return;
      case 'progress':
        pending.onProgress?.({ loaded: reply.loaded, total: reply.total });
        return;
      case 'result':
        this.#settle(reply.id);
        pending.resolve(reply.value);
        return;
      case 'error':
        this.#settle(reply.id);
        pending.reject(revive(reply.error));
        return;
    }
  }

  #stop(error: PipitError): void {
    if (this.#stopped !== null) return;
    this.#stopped = error;
    this.#info = null;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#transport?.terminate();
    for (const p of pending) p.reject(error);
  }
}

/** Starts a worker, loads `options.model` into it, and returns the engine. */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  checkObject('createEngine', 'options', options);
  const { model, worker, ...rest } = options;
  if (model === undefined || model === null) {
    throw new InvalidArgumentError('createEngine: options.model (a URL, path, File/Blob or bytes) is required');
  }
  if (
    worker !== undefined &&
    (worker === null || typeof worker !== 'object' || typeof worker.postMessage !== 'function')
  ) {
    throw new InvalidArgumentError('createEngine: options.worker must be a Worker running pipit\'s worker.js');
  }
  const engine = await Engine.spawn(worker);
  try {
    await engine.load(model, rest);
  } catch (e) {
    engine.dispose();
    throw e;
  }
  return engine;
}
