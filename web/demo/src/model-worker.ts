// The demo's model worker: holds one Pipit model so that the page never waits on the WASM
// engine. Unlike createEngine's worker it streams every token with its alternatives and
// answers attention requests, which the "look inside" views need.
import { AbortError, Pipit, renderChat } from '../../src/index.js';
import type { GenerateTokensOptions } from '../../src/index.js';
import type { FromWorker, Sampling, ToWorker } from './protocol.js';

const scope = globalThis as unknown as {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};
const post = (message: FromWorker): void => scope.postMessage(message);

let model: Pipit | null = null;
let running: AbortController | null = null;

function fail(during: string, e: unknown): void {
  const error = e instanceof Error ? e : new Error(String(e));
  post({ type: 'error', name: error.name, message: error.message, during });
}

function options(sampling: Sampling, alternatives: number, signal: AbortSignal): GenerateTokensOptions {
  return {
    temperature: sampling.temperature,
    topK: sampling.topK,
    topP: sampling.topP,
    maxTokens: sampling.maxTokens,
    ...(sampling.seed === undefined ? {} : { seed: sampling.seed }),
    topLogprobs: alternatives,
    signal,
  };
}

async function generate(prompt: string, opts: GenerateTokensOptions): Promise<void> {
  if (model === null) throw new Error('no model is loaded');
  const steps = model.generateTokens(prompt, opts);
  for (;;) {
    const r = await steps.next();
    if (r.done) {
      post({ type: 'done', result: r.value, wasmBytes: model.wasmMemoryBytes });
      return;
    }
    post({ type: 'token', chip: { token: r.value.token, text: r.value.text, ...(r.value.logprobs ? { logprob: r.value.logprobs } : {}) } });
  }
}

async function receive(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'load': {
      model?.dispose();
      model = null;
      try {
        model = await Pipit.load(message.source, {
          threads: message.threads,
          onProgress: (p) => post({ type: 'progress', loaded: p.loaded, total: p.total }),
        });
        const g = globalThis as { crossOriginIsolated?: boolean };
        post({
          type: 'loaded',
          info: model.info,
          loadMs: model.loadMs,
          wasmBytes: model.wasmMemoryBytes,
          threadsAvailable: g.crossOriginIsolated === true,
        });
      } catch (e) {
        fail('load', e);
      }
      return;
    }
    case 'stop':
      running?.abort();
      return;
    case 'chat':
    case 'complete': {
      if (model === null) return fail('generate', new Error('load a model first'));
      running = new AbortController();
      try {
        const opts = options(message.sampling, message.alternatives, running.signal);
        if (message.type === 'complete') {
          await generate(message.prompt, opts);
        } else {
          const info = model.info;
          const rendered = await renderChat(message.messages, {
            modelTemplate: info.chatTemplate,
            bosToken: info.bosToken,
            eosToken: info.eosToken,
          });
          await generate(rendered.prompt, {
            ...opts,
            parseSpecial: true,
            cachePrompt: true,
            stop: rendered.stop,
            ...(rendered.startsWithBos ? { addBos: false } : {}),
          });
        }
      } catch (e) {
        if (e instanceof AbortError && model !== null) {
          post({ type: 'done', result: { finishReason: 'stop', ...model.lastGeneration, ids: [], text: '' }, wasmBytes: model.wasmMemoryBytes });
        } else {
          fail('generate', e);
        }
      } finally {
        running = null;
      }
      return;
    }
    case 'attention': {
      if (model === null) return fail('attention', new Error('load a model first'));
      try {
        const attention = model.attention(message.layer);
        const info = model.info;
        // Control tokens (BOS, EOS) have no text: they are shown by name.
        const pieces = attention.tokens.map((id) => {
          const text = model!.detokenize([id]);
          if (text !== '') return text;
          return id === info.bosId ? '<BOS>' : id === info.eosId ? '<EOS>' : `<${id}>`;
        });
        post({ type: 'attention', attention, pieces });
      } catch (e) {
        fail('attention', e);
      }
      return;
    }
  }
}

// A stop must reach a running generation, which yields to the event loop between tokens.
scope.onmessage = (event) => void receive(event.data);
