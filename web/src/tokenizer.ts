// A tokenizer without a model: reads only a GGUF's tokenizer.ggml.* metadata, so it works on
// vocab-only files (llama.cpp's ggml-vocab-*.gguf have no tensors) and costs no weights.
//
//   const tok = await PipitTokenizer.load('ggml-vocab-gpt-2.gguf');
//   tok.tokenize('Hello world');   // [15496, 995]
//   tok.dispose();

import type { RawTokenizer } from './engine.js';
import { getModule } from './engine.js';
import { InvalidArgumentError, PipitError, native, shown } from './errors.js';
import type { ModelSources, ProgressCallback } from './source.js';
import { copyIntoWasm } from './source.js';

export interface TokenizerLoadOptions {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Accept GGUF files with a duplicated metadata key (the first value wins). */
  allowDuplicateKeys?: boolean;
}

export interface TokenizerInfo {
  /** tokenizer.ggml.model: 'llama' (SentencePiece), 'gpt2' (byte-level BPE), 'bert' (WordPiece). */
  model: string;
  /** tokenizer.ggml.pre, '' when absent. */
  pre: string;
  /** general.name. */
  name: string;
  nVocab: number;
  bosId: number;
  eosId: number;
  /** Whether tokenize() prepends BOS by default. */
  addBos: boolean;
  /** Every token id that ends generation (EOS, EOT, <|im_end|>...). */
  endOfGeneration: number[];
}

export interface TokenizerEncodeOptions {
  /** Prepend BOS (default: the vocabulary's own setting). */
  addBos?: boolean;
  /** Turn the text of control tokens into those tokens (default false). */
  parseSpecial?: boolean;
}

function optBool(where: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new InvalidArgumentError(`${where}: ${name} must be true or false, got ${shown(value)}`);
  }
  return value;
}

export class PipitTokenizer {
  #raw: RawTokenizer | null;
  readonly #info: TokenizerInfo;

  private constructor(raw: RawTokenizer) {
    this.#raw = raw;
    const info = native(() => raw.info());
    this.#info = Object.freeze({
      ...info,
      endOfGeneration: Object.freeze(Array.from(info.endOfGeneration)) as number[],
    });
  }

  /** Loads the tokenizer of a GGUF file; `source` is what Pipit.load accepts. */
  static async load(source: ModelSources, options: TokenizerLoadOptions = {}): Promise<PipitTokenizer> {
    const where = 'PipitTokenizer.load';
    if (options === null || typeof options !== 'object') {
      throw new InvalidArgumentError(`${where}: options must be an object`);
    }
    const allowDup = optBool(where, 'allowDuplicateKeys', options.allowDuplicateKeys, false);
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new InvalidArgumentError(`${where}: onProgress must be a function`);
    }
    if (
      options.signal !== undefined &&
      (typeof AbortSignal === 'undefined' || !(options.signal instanceof AbortSignal))
    ) {
      throw new InvalidArgumentError(`${where}: signal must be an AbortSignal`);
    }
    const mod = await getModule();
    const [bytes] = await copyIntoWasm(mod, source, {
      onProgress: options.onProgress,
      signal: options.signal,
      firstFileOnly: true,
    });
    // The engine owns (and frees) the bytes from here, whether or not loading succeeds.
    return new PipitTokenizer(native(() => mod.loadTokenizer(bytes!.ptr, bytes!.size, allowDup)));
  }

  #tokenizer(where: string): RawTokenizer {
    if (this.#raw === null) {
      throw new PipitError(
        `${where}: this tokenizer was disposed; load it again with PipitTokenizer.load()`,
        'Disposed',
      );
    }
    return this.#raw;
  }

  get info(): TokenizerInfo {
    this.#tokenizer('info');
    return this.#info;
  }

  tokenize(text: string, options: TokenizerEncodeOptions = {}): number[] {
    const raw = this.#tokenizer('tokenize');
    if (typeof text !== 'string') throw new InvalidArgumentError('tokenize: text must be a string');
    if (options === null || typeof options !== 'object') {
      throw new InvalidArgumentError('tokenize: options must be an object');
    }
    const addBos = optBool('tokenize', 'addBos', options.addBos, this.#info.addBos);
    const parseSpecial = optBool('tokenize', 'parseSpecial', options.parseSpecial, false);
    return Array.from(native(() => raw.tokenize(text, addBos, parseSpecial)));
  }

  /** The text of `ids`; malformed UTF-8 shows as U+FFFD. */
  detokenize(ids: ArrayLike<number>): string {
    const raw = this.#tokenizer('detokenize');
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw new InvalidArgumentError('detokenize: ids must be an array of token ids');
    }
    const list = Array.from(ids);
    for (const id of list) {
      if (!Number.isInteger(id) || id < 0 || id >= this.#info.nVocab) {
        throw new InvalidArgumentError(
          `detokenize: token id ${shown(id)} is out of range (the vocabulary has ${this.#info.nVocab} tokens)`,
        );
      }
    }
    return native(() => raw.detokenize(list));
  }

  /** Whether `id` ends generation. */
  isEndOfGeneration(id: number): boolean {
    this.#tokenizer('isEndOfGeneration');
    return this.#info.endOfGeneration.includes(id);
  }

  get disposed(): boolean {
    return this.#raw === null;
  }

  /** Frees the tokenizer's WASM memory. Using it afterwards throws. */
  dispose(): void {
    if (this.#raw === null) return;
    this.#raw.delete();
    this.#raw = null;
  }
}
