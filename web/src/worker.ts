// The engine's worker: a Web Worker in browsers, a worker_threads thread in Node. It holds
// one model and runs requests one at a time, in arrival order, so the page or the Node event
// loop never waits on the WASM engine. Between two tokens it reads its messages, which is how
// an abort stops a generation within one token.

import { toPipitError } from './errors.js';
import { isNode } from './engine.js';
import { Pipit, PipitError } from './index.js';
import type { Reply, Request } from './protocol.js';
import { generateWithStops } from './run.js';

type Job = Exclude<Request, { type: 'abort' }>;

let post: (reply: Reply) => void = () => undefined;
let model: Pipit | null = null;
const jobs: Job[] = [];
let running: { id: number; controller: AbortController } | null = null;
let draining = false;

function loaded(): Pipit {
  if (model === null) {
    throw new PipitError(
      'no model is loaded in this engine (it was unloaded); call engine.load(model) first',
      'Disposed',
    );
  }
  return model;
}

async function run(job: Job, signal: AbortSignal): Promise<Extract<Reply, { type: 'result' }>['value']> {
  switch (job.type) {
    case 'load': {
      // One model per engine: the old one goes first, so the two never share the heap.
      model?.dispose();
      model = null;
      const { contextLength, allowDuplicateKeys, threads, sha256, cache } = job.options;
      model = await Pipit.load(job.source, {
        ...(contextLength === undefined ? {} : { contextLength }),
        ...(allowDuplicateKeys === undefined ? {} : { allowDuplicateKeys }),
        ...(threads === undefined ? {} : { threads }),
        ...(sha256 === undefined ? {} : { sha256 }),
        ...(cache === undefined ? {} : { cache }),
        signal,
        onProgress: (p) => post({ type: 'progress', id: job.id, loaded: p.loaded, total: p.total }),
      });
      return model.info;
    }
    case 'unload':
      model?.dispose();
      model = null;
      return null;
    case 'generate': {
      const steps = generateWithStops(loaded(), job.prompt, { ...job.options, signal });
      for (;;) {
        const r = await steps.next();
        if (r.done) return r.value;
        if (r.value.text.length > 0) {
          post({ type: 'step', id: job.id, token: r.value.token, text: r.value.text });
        }
      }
    }
    case 'tokenize':
      return loaded().tokenize(job.text, job.options);
    case 'detokenize':
      return loaded().detokenize(job.ids);
  }
}

async function drain(): Promise<void> {
  if (draining) return;
  draining = true;
  try {
    for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) {
      const controller = new AbortController();
      running = { id: job.id, controller };
      try {
        post({ type: 'result', id: job.id, value: await run(job, controller.signal) });
      } catch (e) {
        const error = toPipitError(e);
        post({ type: 'error', id: job.id, error: { kind: error.kind, message: error.message } });
      } finally {
        running = null;
      }
    }
  } finally {
    draining = false;
  }
}

function receive(request: Request): void {
  if (request.type === 'abort') {
    // A queued request is dropped unseen; the running one stops at its next token. The
    // caller has rejected already, so neither needs an answer.
    const queued = jobs.findIndex((j) => j.id === request.id);
    if (queued >= 0) jobs.splice(queued, 1);
    else if (running?.id === request.id) running.controller.abort();
    return;
  }
  jobs.push(request);
  void drain();
}

// Browsers deliver messages only to a handler that exists, so it is installed before any
// await; Node's port queues them until a listener is attached.
if (!isNode()) {
  const scope = globalThis as unknown as {
    postMessage(message: Reply): void;
    onmessage: ((event: MessageEvent<Request>) => void) | null;
  };
  post = (reply) => scope.postMessage(reply);
  scope.onmessage = (event) => receive(event.data);
} else {
  const { parentPort } = await import('node:worker_threads');
  if (parentPort === null) {
    throw new PipitError('pipit worker.js runs only as a worker (see createEngine)', 'Internal');
  }
  const port = parentPort;
  post = (reply) => port.postMessage(reply);
  port.on('message', (request: Request) => receive(request));
}
