#!/usr/bin/env node
// pipit's command line: generate, tokenize, info. Bad arguments exit with 2, runtime errors
// with 1.

import type { GenerateTokensOptions } from './index.js';
import { InvalidArgumentError, Pipit, PipitError } from './index.js';

const HELP = `pipit: run small GGUF language models on the CPU (WebAssembly)

usage:
  pipit generate --model PATH --prompt TEXT [options]
      -n, --max-tokens N   tokens to generate (default 256)
      --temp T             temperature, 0 = greedy (default 0.8)
      --top-k K            keep the K most likely tokens, 0 = all (default 40)
      --top-p P            nucleus threshold in (0, 1] (default 0.95)
      --seed S             RNG seed (default: random)
      --ctx N              context length (default: the model's, at most 4096)
      --ignore-eos         keep generating past the end-of-text token
      --top-logits K       with --json: the K highest logits of every step
      --json               print one JSON object instead of streaming text
    An empty prompt (--prompt '') starts from BOS alone.
  pipit tokenize --model PATH --text TEXT [--no-bos] [--parse-special] [--json]
                 [--allow-duplicate-keys]
    Reads only the tokenizer, so vocab-only GGUFs work too.
  pipit info --model PATH [--json]
  pipit --help
`;

class UsageError extends Error {}

interface Spec {
  values: Set<string>; // options that take a value
  flags: Set<string>; // boolean options
  required: string[];
}

const ALIASES: Record<string, string> = { '-n': '--max-tokens', '-m': '--model', '-p': '--prompt' };

const SPECS: Record<string, Spec> = {
  generate: {
    values: new Set([
      '--model', '--prompt', '--max-tokens', '--temp', '--top-k', '--top-p', '--seed', '--ctx',
      '--top-logits',
    ]),
    flags: new Set(['--json', '--ignore-eos']),
    required: ['--model', '--prompt'],
  },
  tokenize: {
    values: new Set(['--model', '--text']),
    flags: new Set(['--json', '--no-bos', '--parse-special', '--allow-duplicate-keys']),
    required: ['--model', '--text'],
  },
  info: { values: new Set(['--model']), flags: new Set(['--json']), required: ['--model'] },
};

type Parsed = Map<string, string | true>;

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
      out.set(arg, value);
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
