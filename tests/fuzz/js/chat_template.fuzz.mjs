// Chat templates are rendered in TypeScript (@huggingface/jinja); the C++ side only ever sees
// the rendered prompt, tokenized with special-token parsing. This loop renders random
// conversations through the named templates and through random Jinja built from fragments,
// then tokenizes and detokenizes the result with a real SentencePiece vocabulary. Every call
// must succeed or fail with a PipitError subclass.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, fuzzLoop, hostileValue, importPackage, modelsDir, randomText } from './support.mjs';

const { Pipit, PipitError, CHAT_TEMPLATE_NAMES, renderChat } = await importPackage();
const tokenizer = await Pipit.loadTokenizer(path.join(modelsDir, 'vocab', 'ggml-vocab-llama-spm.gguf'));

const FRAGMENTS = [
  '{{ bos_token }}', '{% for m in messages %}', '{% endfor %}', '{{ m.role }}', '{{ m.content }}',
  '{{ m["content"] | trim }}', '{% if add_generation_prompt %}<|assistant|>{% endif %}',
  '{% if m.role == "system" %}[SYS]{% elif m.role == "user" %}[INST]{% else %}{{ eos_token }}{% endif %}',
  '{{ messages[0].content }}', '{{ messages[-1]["content"] }}', '{{ messages | length }}',
  '{{ raise_exception("no system role") }}', '{% set x = messages[0] %}{{ x.content }}',
  '{{ nothing.here }}', '{{ 1 / 0 }}', '{%', '{{', '}}', '%}', '{{ "a" ~ "b" }}', '\n', 'text',
  '{% for m in messages %}{{ loop.index }}{% endfor %}', '{{ m.content.split(" ") | join("|") }}',
  '{{ (messages | selectattr("role", "equalto", "user") | list | length) }}', '{# comment #}',
];

function randomTemplate(rng) {
  let s = '';
  for (let n = rng.int(1, 6); n > 0; n--) s += rng.pick(FRAGMENTS);
  return s;
}

function randomMessages(rng) {
  if (rng.chance(0.05)) return hostileValue(rng);
  const list = [];
  for (let n = rng.int(rng.chance(0.05) ? 0 : 1, 5); n > 0; n--) {
    if (rng.chance(0.05)) {
      list.push(hostileValue(rng));
      continue;
    }
    const role = rng.chance(0.9) ? rng.pick(['system', 'user', 'assistant', 'tool']) : hostileValue(rng);
    let content = randomText(rng, 10);
    if (rng.chance(0.15)) content = [{ type: 'text', text: randomText(rng, 4) }, { type: 'text', text: 'x' }];
    if (rng.chance(0.05)) content = [{ type: rng.pick(['image_url', hostileValue(rng)]) }];
    if (rng.chance(0.05)) content = [hostileValue(rng)];
    if (rng.chance(0.05)) content = hostileValue(rng);
    list.push({ role, content, ...(rng.chance(0.1) ? { name: randomText(rng, 2) } : {}) });
  }
  return list;
}

await fuzzLoop('chat_template', async (rng) => {
  const messages = randomMessages(rng);
  const options = {
    modelTemplate: rng.chance(0.3) ? randomTemplate(rng) : null,
    bosToken: rng.pick(['<s>', '', '<|begin_of_text|>']),
    eosToken: rng.pick(['</s>', '', '<|eot_id|>']),
    addGenerationPrompt: rng.chance(0.8),
  };
  const choice = rng.next();
  if (choice < 0.4) options.chatTemplate = rng.pick(CHAT_TEMPLATE_NAMES);
  else if (choice < 0.7) options.chatTemplate = randomTemplate(rng);
  else if (choice < 0.75) options.chatTemplate = hostileValue(rng);
  let rendered;
  try {
    rendered = await renderChat(messages, options);
  } catch (error) {
    if (error instanceof PipitError && error.message.length > 0) return;
    throw new Error(`untyped error for messages ${describe(messages)} options ${describe(options)}: ` +
      `${error?.name}: ${error?.message}`, { cause: error });
  }
  assert.equal(typeof rendered.prompt, 'string');
  const ids = tokenizer.tokenize(rendered.prompt, { addBos: !rendered.startsWithBos, parseSpecial: true });
  const text = tokenizer.detokenize(ids);
  assert.equal(typeof text, 'string');
});
