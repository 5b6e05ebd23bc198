#!/usr/bin/env node
// pipit's command line: generate, chat, tokenize, info. Bad arguments exit with 2, runtime errors
// with 1.

import { readFileSync } from 'node:fs';
import readline from 'node:readline';

import type { ChatMessage, GenerateTokensOptions } from './index.js';
import { AbortError, InvalidArgumentError, Pipit, PipitError, createEngine } from './index.js';

const HELP = `pipit: run small GGUF language models on the CPU (WebAssembly)

usage:
  pipit generate --model PATH --prompt TEXT [options]
      -n, --max-tokens N   tokens to generate (default 256)
      --temp T             temperature, 0 = greedy (default 0.8)
      --top-k K            keep the K most likely tokens, 0 = all (default 40)
      --top-p P            nucleus threshold in (0, 1] (default 0.95)
      --seed S             RNG seed (default: random)
      --ctx N              context length (default: the model's, at most 4096)
      --min-p P            drop tokens below P times the best one's probability (default 0)
      --repeat-penalty R   penalise the last 64 tokens' repeats, R > 0 (default 1 = off)
      --stop TEXT          stop before TEXT appears (it is not printed); may be repeated,
                           generation then stops at the first of them
      --grammar FILE       constrain the output to a GBNF grammar (start rule: root)
      --json-schema FILE   constrain the output to JSON matching the schema in FILE
      --ignore-eos         keep generating past the end-of-text token
      --top-logits K       with --json: the K highest logits of every step
      --json               print one JSON object instead of streaming text
    An empty prompt (--prompt '') starts from BOS alone.
  pipit chat --model PATH [--system TEXT] [--template NAME] [options]
      An interactive chat: type a message and Enter; the answer streams in. Ctrl-C stops
      an answer (and quits when none is running), /reset forgets the conversation, /exit
      (or end of input) quits. Each turn reuses the cached start of the conversation.
      --template NAME      chatml, llama2, llama3, zephyr, phi3, gemma (default: the
                           model's own template, else chatml)
      -n, --max-tokens N, --temp T, --top-k K, --top-p P, --seed S, --ctx N,
      --ignore-eos         as above
  pipit tokenize --model PATH --text TEXT [--no-bos] [--parse-special] [--json]
                 [--allow-duplicate-keys]
    Reads only the tokenizer, so vocab-only GGUFs work too.
  pipit info --model PATH [--json]
  pipit --help
`;

class UsageError extends Error {}

interface Spec {
  values: Set<string>; // options that take a value
  repeatable?: Set<string>; // options among `values` that may be given more than once
  flags: Set<string>; // boolean options
  required: string[];
}

const ALIASES: Record<string, string> = { '-n': '--max-tokens', '-m': '--model', '-p': '--prompt' };

const SPECS: Record<string, Spec> = {
  generate: {
    values: new Set([
      '--model', '--prompt', '--max-tokens', '--temp', '--top-k', '--top-p', '--seed', '--ctx',
      '--top-logits', '--min-p', '--repeat-penalty', '--stop', '--grammar', '--json-schema',
    ]),
    repeatable: new Set(['--stop']),
    flags: new Set(['--json', '--ignore-eos']),
    required: ['--model', '--prompt'],
  },
  tokenize: {
    values: new Set(['--model', '--text']),
    flags: new Set(['--json', '--no-bos', '--parse-special', '--allow-duplicate-keys']),
    required: ['--model', '--text'],
  },
  info: { values: new Set(['--model']), flags: new Set(['--json']), required: ['--model'] },
  chat: {
    values: new Set([
      '--model', '--system', '--template', '--max-tokens', '--temp', '--top-k', '--top-p',
      '--seed', '--ctx',
    ]),
    flags: new Set(['--ignore-eos']),
    required: ['--model'],
  },
};

type Parsed = Map<string, string | true | string[]>;

function parse(command: string, argv: string[]): Parsed {
  const spec = SPECS[command];
  if (!spec) throw new UsageError(`unknown command '${command}'`);
  const out: Parsed = new Map();
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let inline: string | undefined;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    if (eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    arg = ALIASES[arg] ?? arg;
    if (spec.flags.has(arg)) {
      if (inline !== undefined) throw new UsageError(`${arg} takes no value`);
      out.set(arg, true);
    } else if (spec.values.has(arg)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
      if (spec.repeatable?.has(arg)) {
        const earlier = out.get(arg);
        out.set(arg, Array.isArray(earlier) ? [...earlier, value] : [value]);
      } else {
        out.set(arg, value);
      }
    } else if (arg.startsWith('-')) {
      throw new UsageError(`unknown option '${arg}' for '${command}'`);
    } else {
      throw new UsageError(`unexpected argument '${arg}'`);
    }
  }
  for (const r of spec.required) {
    if (!out.has(r)) throw new UsageError(`'${command}' needs ${r}`);
  }
  return out;
}

function str(p: Parsed, name: string): string {
  const v = p.get(name);
  if (typeof v !== 'string') throw new UsageError(`${name} needs a value`);
  return v;
}

function list(p: Parsed, name: string): string[] {
  const v = p.get(name);
  return Array.isArray(v) ? v : [];
}

function int(p: Parsed, name: string, min: number): number | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${name} must be an integer >= ${min}, got '${String(v)}'`);
  }
  return n;
}

function num(p: Parsed, name: string, ok: (n: number) => boolean, range: string): number | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || !ok(n)) throw new UsageError(`${name} must be ${range}, got '${String(v)}'`);
  return n;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

function write(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

async function generate(p: Parsed): Promise<void> {
  const json = p.has('--json');
  const topLogits = int(p, '--top-logits', 0);
  if (topLogits !== undefined && !json) throw new UsageError('--top-logits needs --json');
  const options: GenerateTokensOptions = { temperature: 0.8 };
  const maxTokens = int(p, '--max-tokens', 0);
  if (maxTokens !== undefined) options.maxTokens = maxTokens;
  const temp = num(p, '--temp', (n) => n >= 0, 'a number >= 0');
  if (temp !== undefined) options.temperature = temp;
  const topK = int(p, '--top-k', 0);
  if (topK !== undefined) options.topK = topK;
  const topP = num(p, '--top-p', (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  if (topP !== undefined) options.topP = topP;
  const seed = int(p, '--seed', 0);
  if (seed !== undefined) options.seed = seed;
  const minP = num(p, '--min-p', (n) => n >= 0 && n <= 1, 'a number in [0, 1]');
  if (minP !== undefined) options.minP = minP;
  const repeatPenalty = num(p, '--repeat-penalty', (n) => n > 0, 'a number > 0');
  if (repeatPenalty !== undefined) options.repeatPenalty = repeatPenalty;
  if (p.has('--stop')) {
    const stop = list(p, '--stop');
    if (stop.includes('')) throw new UsageError('--stop needs a non-empty text');
    options.stop = stop;
  }
  if (p.has('--grammar') && p.has('--json-schema')) {
    throw new UsageError('--grammar and --json-schema cannot be combined');
  }
  if (p.has('--grammar')) options.grammar = readText(str(p, '--grammar'));
  if (p.has('--json-schema')) {
    const file = str(p, '--json-schema');
    let schema: object;
    try {
      schema = JSON.parse(readText(file)) as object;
    } catch (e) {
      throw new UsageError(`--json-schema ${file} is not JSON: ${(e as Error).message}`);
    }
    options.responseFormat = { type: 'json_schema', json_schema: { schema } };
  }
  if (p.has('--ignore-eos')) options.ignoreEos = true;
  if (topLogits !== undefined) options.topLogits = topLogits;
  const ctx = int(p, '--ctx', 0);
  const prompt = str(p, '--prompt');

  const model = await Pipit.load(str(p, '--model'), ctx === undefined ? {} : { contextLength: ctx });
  try {
    const steps = model.generateTokens(prompt, options);
    const top: Array<Array<[number, number]>> = [];
    for (;;) {
      const r = await steps.next();
      if (r.done) {
        const result = r.value;
        if (json) {
          const out: Record<string, unknown> = {
            prompt_ids: result.promptIds,
            ids: result.ids,
            text: result.text,
            finish_reason: result.finishReason,
            seed: result.seed,
            timings: {
              load_ms: result.timings.loadMs,
              prefill_tok_s: result.timings.prefillTokensPerSecond,
              decode_tok_s: result.timings.decodeTokensPerSecond,
            },
          };
          if (topLogits !== undefined) out['top_logits'] = top;
          await write(`${JSON.stringify(out)}\n`);
        } else {
          await write('\n');
          const t = result.timings;
          process.stderr.write(
            `[${result.ids.length} tokens, ${result.finishReason}; prefill ` +
              `${t.prefillTokensPerSecond.toFixed(1)} tok/s, decode ` +
              `${t.decodeTokensPerSecond.toFixed(1)} tok/s, seed ${result.seed}]\n`,
          );
        }
        return;
      }
      const step = r.value;
      if (json) {
        if (topLogits !== undefined && step.token >= 0) top.push(step.topLogits ?? []);
      } else if (step.text.length > 0) {
        await write(step.text);
      }
    }
  } finally {
    model.dispose();
  }
}

async function chat(p: Parsed): Promise<void> {
  const maxTokens = int(p, '--max-tokens', 1);
  const temperature = num(p, '--temp', (n) => n >= 0, 'a number >= 0');
  const topK = int(p, '--top-k', 0);
  const topP = num(p, '--top-p', (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const seed = int(p, '--seed', 0);
  const ctx = int(p, '--ctx', 0);
  const system = p.get('--system');
  const template = p.get('--template');

  // The model runs in a worker, so this thread stays free to read Ctrl-C while it answers.
  const engine = await createEngine({
    model: str(p, '--model'),
    ...(ctx === undefined ? {} : { contextLength: ctx }),
  });
  const interactive = process.stdin.isTTY === true;
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: interactive,
  });
  const startHistory = (): ChatMessage[] =>
    typeof system === 'string' ? [{ role: 'system', content: system }] : [];
  let messages = startHistory();
  let answering: AbortController | null = null;
  const interrupt = (): void => {
    if (answering) answering.abort('interrupted');
    else rl.close();
  };
  rl.on('SIGINT', interrupt);
  process.on('SIGINT', interrupt);
  try {
    if (interactive) {
      await write(`chatting with ${engine.modelId}; /exit quits, /reset forgets\n`);
      rl.prompt();
    }
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/exit') break;
      if (text === '/reset') {
        messages = startHistory();
      } else if (text.length > 0) {
        messages.push({ role: 'user', content: text });
        answering = new AbortController();
        let answer = '';
        try {
          const stream = await engine.chat.completions.create(
            {
              messages,
              stream: true,
              ...(maxTokens === undefined ? {} : { max_tokens: maxTokens }),
              temperature: temperature ?? 0.8,
              ...(topK === undefined ? {} : { top_k: topK }),
              ...(topP === undefined ? {} : { top_p: topP }),
              ...(seed === undefined ? {} : { seed }),
              ...(p.has('--ignore-eos') ? { ignoreEos: true } : {}),
              ...(typeof template === 'string' ? { chatTemplate: template } : {}),
            },
            { signal: answering.signal },
          );
          for await (const chunk of stream) {
            const piece = chunk.choices[0]?.delta.content ?? '';
            answer += piece;
            if (piece.length > 0) await write(piece);
            if (chunk.usage && chunk.timings) {
              const u = chunk.usage;
              process.stderr.write(
                `\n[${u.completion_tokens} tokens, ${chunk.choices[0]?.finish_reason}; prompt ` +
                  `${u.prompt_tokens} tokens, ${u.prompt_tokens_details.cached_tokens} reused; ` +
                  `decode ${chunk.timings.decodeTokensPerSecond.toFixed(1)} tok/s]\n`,
              );
            }
          }
          await write('\n');
        } catch (e) {
          if (!(e instanceof AbortError)) throw e;
          await write('\n');
          process.stderr.write('[stopped]\n');
        } finally {
          answering = null;
        }
        // A stopped answer stays in the conversation as far as it got, as the model saw it.
        messages.push({ role: 'assistant', content: answer });
      }
      if (interactive) rl.prompt();
    }
  } finally {
    process.off('SIGINT', interrupt);
    rl.close();
    engine.dispose();
  }
}

async function tokenize(p: Parsed): Promise<void> {
  const model = await Pipit.loadTokenizer(str(p, '--model'), {
    allowDuplicateKeys: p.has('--allow-duplicate-keys'),
  });
  try {
    const opts: { addBos?: boolean; parseSpecial: boolean } = {
      parseSpecial: p.has('--parse-special'),
    };
    if (p.has('--no-bos')) opts.addBos = false;
    const ids = model.tokenize(str(p, '--text'), opts);
    if (p.has('--json')) {
      const pieces = ids.map((id) => model.detokenize([id]));
      await write(`${JSON.stringify({ ids, pieces })}\n`);
    } else {
      await write(`${ids.join(' ')}\n`);
    }
  } finally {
    model.dispose();
  }
}

async function info(p: Parsed): Promise<void> {
  const model = await Pipit.load(str(p, '--model'));
  try {
    const i = model.info;
    if (p.has('--json')) {
      await write(`${JSON.stringify(i)}\n`);
    } else {
      const types = Object.entries(i.tensorTypes)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ');
      await write(
        [
          `architecture   ${i.architecture}`,
          `name           ${i.name}`,
          `vocabulary     ${i.nVocab} tokens (bos ${i.bosId}, eos ${i.eosId})`,
          `context        ${i.contextLength} (trained), ${i.sessionContextLength} (this session)`,
          `layers         ${i.nLayer}, embedding ${i.nEmbd}, feed-forward ${i.nFf}`,
          `heads          ${i.nHead} (kv ${i.nHeadKv})`,
          `tensors        ${types}`,
          `file           ${i.fileBytes} bytes`,
          '',
        ].join('\n'),
      );
    }
  } finally {
    model.dispose();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    await write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    await write(HELP);
    return 0;
  }
  try {
    const parsed = parse(command, rest);
    if (command === 'generate') await generate(parsed);
    else if (command === 'chat') await chat(parsed);
    else if (command === 'tokenize') await tokenize(parsed);
    else await info(parsed);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`pipit: ${e.message} (see pipit --help)\n`);
      return 2;
    }
    if (e instanceof InvalidArgumentError) {
      process.stderr.write(`pipit: ${e.message} (see pipit --help)\n`);
      return 2;
    }
    if (e instanceof PipitError) {
      process.stderr.write(`pipit: ${e.name}: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`pipit: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
