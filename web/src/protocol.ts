// Messages between an Engine (engine-client.ts) and its worker (worker.ts). Every request has
// an id; the worker answers with progress or step messages, then one result or error.

import type { PipitErrorKind } from './errors.js';
import type {
  GenerateTokensOptions,
  GenerationResult,
  ModelInfo,
  TokenizeOptions,
} from './index.js';
import type { StopOptions } from './run.js';

/** GenerateOptions as they cross to the worker: everything but the signal (aborts are messages). */
export type WireGenerateOptions = Omit<GenerateTokensOptions, 'signal' | 'topLogits'> & StopOptions;

/** A model source the worker can receive: URLs arrive absolute, whole buffers are transferred. */
export type WireFile = string | Blob | ArrayBuffer | ArrayBufferView;
/** One file, or the files of a split GGUF set. */
export type WireSource = WireFile | WireFile[];

export interface WireLoadOptions {
  contextLength?: number;
  allowDuplicateKeys?: boolean;
  threads?: number;
  sha256?: string | readonly string[];
  cache?: boolean;
}

export type Request =
  | { type: 'load'; id: number; source: WireSource; options: WireLoadOptions }
  | { type: 'unload'; id: number }
  | { type: 'generate'; id: number; prompt: string | number[]; options: WireGenerateOptions }
  | { type: 'tokenize'; id: number; text: string; options: TokenizeOptions }
  | { type: 'detokenize'; id: number; ids: number[] }
  | { type: 'abort'; id: number };

export interface WireError {
  kind: PipitErrorKind;
  message: string;
}

export type Reply =
  | { type: 'progress'; id: number; loaded: number; total: number }
  | { type: 'step'; id: number; token: number; text: string }
  | { type: 'result'; id: number; value: ModelInfo | GenerationResult | number[] | string | null }
  | { type: 'error'; id: number; error: WireError };
