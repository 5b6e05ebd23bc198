// Messages between the demo page and its model worker (src/model-worker.ts).
import type { AttentionWeights, ChatMessage, GenerationResult, ModelInfo, TokenLogprob } from '../../src/index.js';

export interface Sampling {
  temperature: number;
  topK: number;
  topP: number;
  maxTokens: number;
  seed?: number;
}

export type ToWorker =
  | { type: 'load'; source: string | Blob | ArrayBuffer; threads: number }
  | { type: 'chat'; messages: ChatMessage[]; sampling: Sampling; alternatives: number }
  | { type: 'complete'; prompt: string; sampling: Sampling; alternatives: number }
  | { type: 'stop' }
  | { type: 'attention'; layer: number };

export interface TokenChip {
  token: number;
  text: string;
  logprob?: TokenLogprob & { top_logprobs: TokenLogprob[] };
}

export type FromWorker =
  | { type: 'progress'; loaded: number; total: number }
  | { type: 'loaded'; info: ModelInfo; loadMs: number; wasmBytes: number; threadsAvailable: boolean }
  | { type: 'token'; chip: TokenChip }
  | { type: 'done'; result: GenerationResult; wasmBytes: number }
  | { type: 'attention'; attention: AttentionWeights; pieces: string[] }
  | { type: 'error'; name: string; message: string; during: string };
