// The OpenAI request and response shapes of engine.chat.completions.create and
// engine.completions.create, and the mapping of their snake_case parameters onto pipit's
// GenerateOptions. Parameters this file does not name are forwarded too (snake_case turned
// into camelCase), so sampler options added to GenerateOptions work here without changes.

import { InvalidArgumentError } from './errors.js';
import type {
  FinishReason,
  GenerateOptions,
  GenerationLogprobs,
  GenerationResult,
  Timings,
} from './index.js';
import type { WireGenerateOptions } from './protocol.js';
import type { StopOptions } from './run.js';
import type { ChatMessage, ChatTemplateName } from './templates.js';

/** OpenAI's sampling parameters, plus every pipit GenerateOptions field under its own name. */
// seed, stop and logprobs are redeclared (OpenAI's types differ), so GenerateOptions' own are
// left out.
export interface SamplingParams
  extends Omit<GenerateOptions, 'signal' | 'seed' | 'stop' | 'logprobs' | 'topLogprobs'> {
  /** Ignored: an engine runs the model it loaded; responses name that model. */
  model?: string;
  max_tokens?: number | null;
  /** OpenAI's newer name for max_tokens. */
  max_completion_tokens?: number | null;
  temperature?: number;
  top_p?: number | null;
  /** Not in OpenAI's API; as in llama.cpp's server. */
  top_k?: number | null;
  stop?: StopOptions['stop'] | null;
  seed?: number | null;
  /**
   * Chat: true to get each token's log-probability in `choices[0].logprobs.content` (not on
   * streamed chunks). Completions: a number, the alternatives per token (OpenAI's legacy
   * form), answered in the same `content` shape as chat.
   */
  logprobs?: boolean | number | null;
  /** Most likely alternatives per token, 0 to 20 in OpenAI's API (implies logprobs). */
  top_logprobs?: number | null;
  /** Only 1: pipit generates one choice. */
  n?: number | null;
  /** Ignored, as in OpenAI's API (an end-user id). */
  user?: string;
  /** Accepted for compatibility: the final chunk of a stream always carries usage. */
  stream_options?: { include_usage?: boolean } | null;
  /** Keep the KV cache of the shared prefix (default true here; llama.cpp's name). */
  cache_prompt?: boolean;
  /** When the context fills up: 'error' (default) or 'shift' (see GenerateOptions.contextShift). */
  context_shift?: 'error' | 'shift';
  /** llama.cpp server's names: tokens a context shift keeps, and drops per shift. */
  n_keep?: number;
  n_discard?: number;
  /** Cancels the request; the engine stays usable. */
  signal?: AbortSignal;
}

export interface ChatCompletionCreateParamsBase extends SamplingParams {
  messages: ChatMessage[];
  /** A named template or Jinja text; default: the model's own, else 'chatml'. */
  chatTemplate?: ChatTemplateName | string;
}
export interface ChatCompletionCreateParamsNonStreaming extends ChatCompletionCreateParamsBase {
  stream?: false | null;
}
export interface ChatCompletionCreateParamsStreaming extends ChatCompletionCreateParamsBase {
  stream: true;
}
export type ChatCompletionCreateParams =
  | ChatCompletionCreateParamsNonStreaming
  | ChatCompletionCreateParamsStreaming;

export interface CompletionCreateParamsBase extends SamplingParams {
  prompt: string | number[];
}
export interface CompletionCreateParamsNonStreaming extends CompletionCreateParamsBase {
  stream?: false | null;
}
export interface CompletionCreateParamsStreaming extends CompletionCreateParamsBase {
  stream: true;
}
export type CompletionCreateParams = CompletionCreateParamsNonStreaming | CompletionCreateParamsStreaming;

/** 'length' also covers a full context window, which OpenAI's API has no name for. */
export type OpenAIFinishReason = 'stop' | 'length';

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** cached_tokens: prompt tokens whose KV cache was reused, not prefilled again. */
  prompt_tokens_details: { cached_tokens: number };
}

export interface ChatCompletionMessage {
  role: 'assistant';
  content: string;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  /** Unix time in seconds. */
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: ChatCompletionMessage;
    finish_reason: OpenAIFinishReason;
    /** With the request's logprobs / top_logprobs. */
    logprobs: GenerationLogprobs | null;
  }>;
  usage: CompletionUsage;
  /** pipit's measurements, taken inside the worker. */
  timings: Timings;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: 'assistant'; content?: string };
    finish_reason: OpenAIFinishReason | null;
    logprobs: null;
  }>;
  /** On the final chunk only. */
  usage?: CompletionUsage;
  /** On the final chunk only. */
  timings?: Timings;
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    text: string;
    finish_reason: OpenAIFinishReason | null;
    /** On a non-streamed completion, with the request's logprobs. */
    logprobs: GenerationLogprobs | null;
  }>;
  /** On a non-streamed completion and on the final chunk of a stream. */
  usage?: CompletionUsage;
  timings?: Timings;
}

// Request fields that are not generation options.
const NOT_OPTIONS = new Set([
  'model', 'messages', 'prompt', 'stream', 'stream_options', 'n', 'user', 'signal',
  'chatTemplate', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k',
  'stop', 'seed', 'cache_prompt', 'logprobs', 'top_logprobs',
]);

function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** OpenAI-style parameters as the worker's generate options (validated there). */
export function toGenerateOptions(where: string, params: SamplingParams): WireGenerateOptions {
  if (params.n !== undefined && params.n !== null && params.n !== 1) {
    throw new InvalidArgumentError(`${where}: n must be 1 (pipit generates one choice per request)`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) {
    if (!NOT_OPTIONS.has(key) && value !== undefined) out[camel(key)] = value;
  }
  const maxTokens = params.max_completion_tokens ?? params.max_tokens;
  if (maxTokens !== undefined && maxTokens !== null) out['maxTokens'] = maxTokens;
  if (params.temperature !== undefined) out['temperature'] = params.temperature;
  if (params.top_p !== undefined && params.top_p !== null) out['topP'] = params.top_p;
  if (params.top_k !== undefined && params.top_k !== null) out['topK'] = params.top_k;
  if (params.seed !== undefined && params.seed !== null) out['seed'] = params.seed;
  if (params.stop !== undefined && params.stop !== null) out['stop'] = params.stop;
  const { logprobs, top_logprobs: topLogprobs } = params;
  if (typeof logprobs === 'number') {
    out['logprobs'] = true;
    out['topLogprobs'] = logprobs;
  } else if (logprobs !== undefined && logprobs !== null) {
    out['logprobs'] = logprobs;
  }
  if (topLogprobs !== undefined && topLogprobs !== null) out['topLogprobs'] = topLogprobs;
  out['cachePrompt'] = params.cache_prompt ?? params.cachePrompt ?? true;
  return out as WireGenerateOptions;
}

export function openAIFinishReason(reason: FinishReason | 'stop'): OpenAIFinishReason {
  return reason === 'stop' ? 'stop' : 'length';
}

export function usageOf(result: GenerationResult): CompletionUsage {
  return {
    prompt_tokens: result.promptIds.length,
    completion_tokens: result.ids.length,
    total_tokens: result.promptIds.length + result.ids.length,
    prompt_tokens_details: { cached_tokens: result.timings.reusedTokens },
  };
}

export function responseId(prefix: string): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
