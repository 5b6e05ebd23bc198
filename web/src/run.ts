// Generation with stop texts, shared by the worker and Pipit#chat: the pieces are held back
// while they could still be the start of a stop text, so the caller never sees part of one.

import { InvalidArgumentError } from './errors.js';
import type {
  GenerateTokensOptions,
  GenerationResult,
  Pipit,
  TokenLogprobs,
  TokenStep,
} from './index.js';

export interface StopOptions {
  /** Generation ends before the first occurrence of any of these texts (OpenAI's `stop`). */
  stop?: string | string[];
}

export function stopList(where: string, stop: unknown): string[] {
  if (stop === undefined || stop === null) return [];
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new InvalidArgumentError(`${where}: stop must be a non-empty string or an array of them`);
  }
  return list as string[];
}

/** Finds the first stop text in a stream of pieces. */
export class StopMatcher {
  #pending = '';
  readonly #stops: readonly string[];

  constructor(stops: readonly string[]) {
    this.#stops = stops;
  }

  /** Text now safe to show, and whether a stop text was found (the text ends before it). */
  push(piece: string): { text: string; stopped: boolean } {
    if (this.#stops.length === 0) return { text: piece, stopped: false };
    const all = this.#pending + piece;
    let cut = -1;
    for (const s of this.#stops) {
      const at = all.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.#pending = '';
      return { text: all.slice(0, cut), stopped: true };
    }
    // Keep the longest tail that a stop text begins with.
    let keep = 0;
    for (const s of this.#stops) {
      for (let n = Math.min(s.length - 1, all.length); n > keep; n--) {
        if (s.startsWith(all.slice(all.length - n))) {
          keep = n;
          break;
        }
      }
    }
    this.#pending = all.slice(all.length - keep);
    return { text: all.slice(0, all.length - keep), stopped: false };
  }

  /** What was held back, once generation has ended without a stop text. */
  flush(): string {
    const rest = this.#pending;
    this.#pending = '';
    return rest;
  }
}

/**
 * model.generateTokens with stop texts. Ends with finishReason 'stop' at the first stop text;
 * the result's text stops before it, its ids include every token generated.
 */
export async function* generateWithStops(
  model: Pipit,
  prompt: string | ArrayLike<number>,
  options: GenerateTokensOptions & StopOptions,
): AsyncGenerator<TokenStep, GenerationResult, undefined> {
  const { stop, ...rest } = options;
  const matcher = new StopMatcher(stopList('generate', stop));
  const steps = model.generateTokens(prompt, rest);
  const ids: number[] = [];
  const logprobs: TokenLogprobs[] = [];
  let text = '';
  for (;;) {
    const r = await steps.next();
    if (r.done) {
      const tail = matcher.flush();
      if (tail.length > 0) yield { token: -1, text: tail };
      return { ...r.value, text: text + tail };
    }
    const step = r.value;
    if (step.token >= 0) ids.push(step.token);
    if (step.logprobs) logprobs.push(step.logprobs);
    const { text: shown, stopped } = matcher.push(step.text);
    text += shown;
    if (stopped) {
      // Ends the generator: its `finally` frees the model for the next request.
      await steps.return(undefined as never);
      if (shown.length > 0 || step.token >= 0) yield { ...step, text: shown };
      const last = model.lastGeneration;
      return {
        finishReason: 'stop',
        promptIds: last.promptIds,
        ids,
        text,
        seed: last.seed,
        timings: last.timings,
        ...(rest.logprobs === true || (rest.topLogprobs ?? 0) > 0 ? { logprobs: { content: logprobs } } : {}),
      };
    }
    if (shown.length > 0 || step.token >= 0) yield { ...step, text: shown };
  }
}
