// Chat: the named templates render exactly the text their formats define, special-token text
// in a rendered prompt becomes those tokens, a multi-turn chat reuses the cached prefix of the
// conversation (and answers as a fresh prefill would), and `pipit chat` talks over a pipe.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { cliPath, existing, libDir, storiesPath } from './helpers.mjs';

const pkg = await import(pathToFileURL(path.join(libDir, 'index.js')).href);
const { createEngine, Pipit, renderChat, chatTemplateSource, CHAT_TEMPLATE_NAMES, InvalidArgumentError, UnsupportedError } = pkg;

const modelFile = existing(storiesPath);
const SKIP = `model file missing: ${storiesPath} (set PIPIT_MODELS_DIR)`;

const CONVERSATION = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'Tell a story' },
];

// Each format written out by hand, as its model card documents it.
const EXPECTED = {
  chatml: {
    bos: '<s>',
    eos: '</s>',
    text:
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n' +
      '<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nTell a story<|im_end|>\n' +
      '<|im_start|>assistant\n',
  },
  llama2: {
    bos: '<s>',
    eos: '</s>',
    text: '<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Tell a story [/INST]',
  },
  llama3: {
    bos: '<|begin_of_text|>',
    eos: '<|end_of_text|>',
    text:
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nTell a story<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\n',
  },
  zephyr: {
    bos: '<s>',
    eos: '</s>',
    text:
      '<|system|>\nYou are terse.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n' +
      '<|user|>\nTell a story</s>\n<|assistant|>\n',
  },
  phi3: {
    bos: '<s>',
    eos: '<|endoftext|>',
    text:
      '<|system|>\nYou are terse.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n' +
      '<|user|>\nTell a story<|end|>\n<|assistant|>\n',
  },
  gemma: {
    bos: '<bos>',
    eos: '<eos>',
    text:
      '<bos><start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n<start_of_turn>model\n' +
      'Hello.<end_of_turn>\n<start_of_turn>user\nTell a story<end_of_turn>\n<start_of_turn>model\n',
  },
};

describe('chat templates', () => {
  test('every named template has an expected rendering here', () => {
    assert.deepEqual([...CHAT_TEMPLATE_NAMES].sort(), Object.keys(EXPECTED).sort());
  });

  for (const [name, e] of Object.entries(EXPECTED)) {
    test(`${name} renders the exact prompt`, async () => {
      const r = await renderChat(CONVERSATION, { chatTemplate: name, modelTemplate: null, bosToken: e.bos, eosToken: e.eos });
      assert.equal(r.prompt, e.text);
      assert.equal(r.template, name);
      assert.equal(r.startsWithBos, e.text.startsWith(e.bos));
      assert.ok(r.stop.length > 0);
      // Without a system message the formats simply leave it out.
      const plain = await renderChat([{ role: 'user', content: 'Hi' }], {
        chatTemplate: name, modelTemplate: null, bosToken: e.bos, eosToken: e.eos,
      });
      assert.ok(!plain.prompt.includes('You are terse.'));
      assert.ok(plain.prompt.includes('Hi'));
    });
  }

  test('add_generation_prompt false leaves the assistant header out', async () => {
    const r = await renderChat(CONVERSATION.slice(0, 3), {
      chatTemplate: 'chatml', modelTemplate: null, bosToken: '<s>', eosToken: '</s>', addGenerationPrompt: false,
    });
    assert.equal(
      r.prompt,
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n',
    );
  });

  test("the model's own template comes first, then chatml; Jinja text can be passed", async () => {
    const own = '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}';
    const base = { bosToken: '<s>', eosToken: '</s>' };
    const fromModel = await renderChat(CONVERSATION.slice(1, 2), { ...base, modelTemplate: own });
    assert.equal(fromModel.prompt, '[user] Hi\n[assistant]');
    assert.equal(fromModel.template, 'model');
    assert.deepEqual(fromModel.stop, []);
    const fallback = await renderChat(CONVERSATION.slice(1, 2), { ...base, modelTemplate: null });
    assert.equal(fallback.template, 'chatml');
    assert.equal(fallback.prompt, '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    const custom = await renderChat(CONVERSATION.slice(1, 2), {
      ...base, modelTemplate: own, chatTemplate: '{{ bos_token }}{{ messages[0].content | upper }}',
    });
    assert.equal(custom.prompt, '<s>HI');
    assert.equal(custom.template, 'custom');
    assert.equal(custom.startsWithBos, true);
    // The named sources are the ones rendered above.
    const viaSource = await renderChat(CONVERSATION, { ...base, modelTemplate: chatTemplateSource('zephyr') });
    assert.equal(viaSource.prompt, EXPECTED.zephyr.text);
  });

  test('text parts are joined; other parts, roles and templates are refused', async () => {
    const base = { modelTemplate: null, bosToken: '<s>', eosToken: '</s>' };
    const parts = await renderChat(
      [{ role: 'user', content: [{ type: 'text', text: 'Hello ' }, { type: 'text', text: 'there' }] }],
      base,
    );
    assert.equal(parts.prompt, '<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n');
    await assert.rejects(
      renderChat([{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }], base),
      (e) => e instanceof UnsupportedError && /image_url/.test(e.message),
    );
    await assert.rejects(renderChat([{ role: 'robot', content: 'x' }], base), InvalidArgumentError);
    await assert.rejects(renderChat([], base), InvalidArgumentError);
    await assert.rejects(
      renderChat(CONVERSATION, { ...base, chatTemplate: '{% for %}' }),
      (e) => e instanceof InvalidArgumentError && /failed to render/.test(e.message),
    );
  });
});

describe('chat with stories260K', () => {
  let model = null;
  before(async () => {
    if (modelFile) model = await Pipit.load(modelFile);
  });
  after(() => model?.dispose());

  test('special-token text in the rendered prompt becomes those tokens, with one BOS', async (t) => {
    if (!model) return t.skip(SKIP);
    const gen = model.chat(CONVERSATION, { chatTemplate: 'llama2', maxTokens: 1, temperature: 0 });
    let result;
    for (;;) {
      const r = await gen.next();
      if (r.done) {
        result = r.value;
        break;
      }
    }
    const ids = result.promptIds;
    // '<s>' twice (two user turns) and '</s>' once, each as its own id, and no doubled BOS.
    assert.equal(ids[0], 1);
    assert.notEqual(ids[1], 1);
    assert.equal(ids.filter((id) => id === 1).length, 2);
    assert.equal(ids.filter((id) => id === 2).length, 1);
    const asText = model.tokenize(EXPECTED.llama2.text, { addBos: false, parseSpecial: false });
    assert.ok(!asText.includes(1) && !asText.includes(2));
    // chatml markers are not in this vocabulary: they stay text.
    assert.deepEqual(
      model.tokenize('<|im_start|>', { addBos: false, parseSpecial: true }),
      model.tokenize('<|im_start|>', { addBos: false, parseSpecial: false }),
    );
  });

  test('a 5-turn chat reuses the cached conversation and answers as a fresh prefill does', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const engine = await createEngine({ model: modelFile });
    const fresh = await createEngine({ model: modelFile });
    try {
      const questions = ['Who is Lily?', 'Where did she go?', 'What did she see?', 'Was she happy?', 'How did it end?'];
      const messages = [{ role: 'system', content: 'You tell stories to children.' }];
      const rows = [];
      for (const q of questions) {
        messages.push({ role: 'user', content: q });
        const params = { messages, max_tokens: 16, temperature: 0, chatTemplate: 'chatml' };
        const r = await engine.chat.completions.create(params);
        // The oracle prefills everything (cache_prompt false) on an engine that has seen nothing else.
        const f = await fresh.chat.completions.create({ ...params, cache_prompt: false });
        assert.equal(f.usage.prompt_tokens_details.cached_tokens, 0);
        assert.equal(r.choices[0].message.content, f.choices[0].message.content);
        assert.equal(r.usage.prompt_tokens, f.usage.prompt_tokens);
        rows.push({
          prompt: r.usage.prompt_tokens,
          reused: r.usage.prompt_tokens_details.cached_tokens,
          prefilled: r.timings.prefillTokens,
          ms: r.timings.prefillMs,
          freshMs: f.timings.prefillMs,
        });
        messages.push({ role: 'assistant', content: r.choices[0].message.content });
      }
      assert.equal(rows[0].reused, 0);
      for (let i = 1; i < rows.length; i++) {
        const r = rows[i];
        assert.equal(r.reused + r.prefilled, r.prompt);
        // Everything up to the last turn's answer is reused (its re-tokenized text may part
        // from the generated ids by a token or two).
        assert.ok(r.reused >= rows[i - 1].prompt, `turn ${i + 1}: ${JSON.stringify(r)}`);
        assert.ok(r.prefilled < r.prompt / 2, `turn ${i + 1}: ${JSON.stringify(r)}`);
      }
      const total = rows.reduce((s, r) => s + r.prompt, 0);
      const reused = rows.reduce((s, r) => s + r.reused, 0);
      t.diagnostic(
        `5 turns: ${total} prompt tokens, ${reused} reused (${((100 * reused) / total).toFixed(0)}% of the ` +
          `prefill saved); per turn prompt/reused: ${rows.map((r) => `${r.prompt}/${r.reused}`).join(' ')}; ` +
          `prefill ms with/without reuse: ${rows.map((r) => `${r.ms.toFixed(1)}/${r.freshMs.toFixed(1)}`).join(' ')}`,
      );
    } finally {
      engine.dispose();
      fresh.dispose();
    }
  });
});

function runChat(args, input, { interruptAfterOutput = false } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, 'chat', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stdout.on('data', (d) => {
      stdout += d;
      if (interruptAfterOutput && !interrupted) {
        interrupted = true;
        child.kill('SIGINT');
        child.stdin.end('/exit\n');
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (interruptAfterOutput) child.stdin.write(input);
    else child.stdin.end(input);
  });
}

describe('pipit chat', () => {
  test('a piped two-turn chat streams both answers and reuses the first turn', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const args = ['--model', modelFile, '--template', 'chatml', '--temp', '0', '-n', '12', '--system', 'You tell stories.'];
    const out = await runChat(args, 'Who is Lily?\n\nWhat did she do?\n/exit\nThis line is never read.\n');
    assert.equal(out.code, 0, out.stderr);
    const stats = out.stderr.split('\n').filter((l) => l.startsWith('['));
    assert.equal(stats.length, 2, out.stderr);
    const reused = stats.map((l) => Number(/(\d+) reused/.exec(l)?.[1]));
    assert.equal(reused[0], 0);
    assert.ok(reused[1] > 20, stats[1]);

    // Both answers are the engine's answers to the same conversation, each followed by a newline.
    const engine = await createEngine({ model: modelFile });
    try {
      const messages = [{ role: 'system', content: 'You tell stories.' }];
      let expected = '';
      for (const q of ['Who is Lily?', 'What did she do?']) {
        messages.push({ role: 'user', content: q });
        const r = await engine.chat.completions.create({ messages, max_tokens: 12, temperature: 0, chatTemplate: 'chatml' });
        const answer = r.choices[0].message.content;
        assert.ok(answer.length > 0);
        messages.push({ role: 'assistant', content: answer });
        expected += `${answer}\n`;
      }
      assert.equal(out.stdout, expected);
    } finally {
      engine.dispose();
    }
  });

  test('end of input quits; a bad template is a usage error', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    const eof = await runChat(['--model', modelFile, '--temp', '0', '-n', '4'], 'Hello\n');
    assert.equal(eof.code, 0, eof.stderr);
    assert.equal(eof.stderr.split('\n').filter((l) => l.startsWith('[')).length, 1);
    const bad = await runChat(['--model', modelFile, '--template', 'nope'], 'Hello\n');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown chatTemplate 'nope'/);
    const missing = await runChat([], '');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /needs --model/);
  });

  test('Ctrl-C stops the answer being written and the chat goes on', async (t) => {
    if (!modelFile) return t.skip(SKIP);
    // An answer that cannot end by itself before the context is full, interrupted as soon as
    // its first piece is out; then /exit.
    const args = ['--model', modelFile, '--temp', '0', '-n', '2000', '--ctx', '2048', '--ignore-eos'];
    const out = await runChat(args, 'Tell a long story\n', { interruptAfterOutput: true });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /\[stopped\]/);
    assert.doesNotMatch(out.stderr, /\[\d+ tokens/);
  });
});
