// Chat prompts: a list of messages rendered into the one text the model was trained to
// continue. The GGUF's own `tokenizer.chat_template` (Jinja) comes first; files without one
// (or callers who know better) pick a named template or pass their own Jinja text.

import { InvalidArgumentError, UnsupportedError, shown } from './errors.js';

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

/** A text part of a message; other part types (images, audio) are not supported. */
export interface ChatContentPart {
  type: 'text';
  text: string;
}

export interface ChatMessage {
  role: ChatRole;
  content: string | ChatContentPart[];
  name?: string;
}

export type ChatTemplateName = 'chatml' | 'llama2' | 'llama3' | 'zephyr' | 'phi3' | 'gemma';

// The named formats, written for @huggingface/jinja. Each keeps to the Jinja subset every
// renderer handles: `{%- -%}` trims the template's own line breaks, so only the quoted text
// reaches the prompt.
const TEMPLATES: Readonly<Record<ChatTemplateName, string>> = Object.freeze({
  chatml: `
{%- for message in messages -%}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}`,
  // Llama 2 has no system turn: the system text is wrapped into the first user turn.
  llama2: `
{%- if messages[0].role == 'system' -%}{%- set system = messages[0].content -%}
{%- else -%}{%- set system = '' -%}{%- endif -%}
{%- for message in messages -%}
{%- if message.role == 'user' -%}
{{- bos_token + '[INST] ' -}}
{%- if loop.index0 == 1 and system != '' -%}{{- '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' -}}{%- endif -%}
{{- message.content + ' [/INST]' -}}
{%- elif message.role == 'assistant' -%}
{{- ' ' + (message.content | trim) + ' ' + eos_token -}}
{%- endif -%}
{%- endfor -%}`,
  llama3: `
{{- bos_token -}}
{%- for message in messages -%}
{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + (message.content | trim) + '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}`,
  zephyr: `
{%- for message in messages -%}
{{- '<|' + message.role + '|>\\n' + message.content + eos_token + '\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}`,
  phi3: `
{%- for message in messages -%}
{{- '<|' + message.role + '|>\\n' + message.content + '<|end|>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}`,
  // Gemma has no system turn either, and calls the assistant 'model'.
  gemma: `
{{- bos_token -}}
{%- if messages[0].role == 'system' -%}{%- set system = (messages[0].content | trim) + '\\n\\n' -%}
{%- else -%}{%- set system = '' -%}{%- endif -%}
{%- for message in messages -%}
{%- if message.role != 'system' -%}
{%- if message.role == 'assistant' -%}{%- set role = 'model' -%}{%- else -%}{%- set role = message.role -%}{%- endif -%}
{{- '<start_of_turn>' + role + '\\n' -}}
{%- if loop.index0 == 1 -%}{{- system -}}{%- endif -%}
{{- (message.content | trim) + '<end_of_turn>\\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}`,
});

// The text that ends an assistant turn in each format. Models trained on the format have it
// as one special token (and stop there by themselves); a model whose vocabulary lacks it
// spells it out in pieces, so generation also stops on the text.
const TURN_ENDS: Readonly<Record<ChatTemplateName, readonly string[]>> = Object.freeze({
  chatml: ['<|im_end|>', '<|im_start|>'],
  llama2: ['[INST]'],
  llama3: ['<|eot_id|>', '<|start_header_id|>'],
  zephyr: ['<|user|>', '<|system|>'],
  phi3: ['<|end|>', '<|user|>'],
  gemma: ['<end_of_turn>', '<start_of_turn>'],
});

export const CHAT_TEMPLATE_NAMES: readonly ChatTemplateName[] = Object.freeze(
  Object.keys(TEMPLATES) as ChatTemplateName[],
);

/** The Jinja text of a named template. */
export function chatTemplateSource(name: ChatTemplateName): string {
  return TEMPLATES[name].trim();
}

function isTemplateName(value: string): value is ChatTemplateName {
  return Object.prototype.hasOwnProperty.call(TEMPLATES, value);
}

export interface RenderChatOptions {
  /** A named template or Jinja text; absent: the model's own, else 'chatml'. */
  chatTemplate?: ChatTemplateName | string;
  /** The model's `tokenizer.chat_template`, or null. */
  modelTemplate: string | null;
  bosToken: string;
  eosToken: string;
  /** End with the header of the assistant's turn (default true). */
  addGenerationPrompt?: boolean;
}

export interface RenderedChat {
  prompt: string;
  /** Which template rendered it: a name, 'model' (the GGUF's own) or 'custom'. */
  template: ChatTemplateName | 'model' | 'custom';
  /** Texts that end the assistant's turn in this format (empty for model and custom ones). */
  stop: string[];
  /** The rendered text already starts with the BOS token's text. */
  startsWithBos: boolean;
}

const ROLES: ReadonlySet<string> = new Set<ChatRole>(['system', 'user', 'assistant', 'tool']);

/** Checks the messages and flattens text parts into one string per message. */
export function normalizeMessages(
  where: string,
  messages: unknown,
): Array<{ role: ChatRole; content: string; name?: string }> {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new InvalidArgumentError(`${where}: messages must be a non-empty array`);
  }
  return messages.map((m: unknown, i) => {
    if (m === null || typeof m !== 'object') {
      throw new InvalidArgumentError(`${where}: messages[${i}] must be an object`);
    }
    const { role, content, name } = m as { role?: unknown; content?: unknown; name?: unknown };
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw new InvalidArgumentError(
        `${where}: messages[${i}].role must be one of ${[...ROLES].join(', ')}, got ${shown(role)}`,
      );
    }
    let text: string;
    if (typeof content === 'string') {
      text = content;
    } else if (Array.isArray(content)) {
      text = content
        .map((part: unknown, j) => {
          const p = part as { type?: unknown; text?: unknown } | null;
          if (p !== null && typeof p === 'object' && p.type === 'text' && typeof p.text === 'string') {
            return p.text;
          }
          const type = p !== null && typeof p === 'object' ? shown(p.type) : typeof p;
          throw new UnsupportedError(
            `${where}: messages[${i}].content[${j}] is a '${type}' part; pipit runs text-only ` +
              "models, so pass { type: 'text', text } parts or a string",
          );
        })
        .join('');
    } else {
      throw new InvalidArgumentError(
        `${where}: messages[${i}].content must be a string or an array of text parts`,
      );
    }
    const out: { role: ChatRole; content: string; name?: string } = {
      role: role as ChatRole,
      content: text,
    };
    if (typeof name === 'string') out.name = name;
    return out;
  });
}

type JinjaModule = typeof import('@huggingface/jinja');
let jinja: Promise<JinjaModule> | null = null;

// Loaded on first use, so that plain generation never needs the template engine.
function loadJinja(): Promise<JinjaModule> {
  if (jinja === null) {
    jinja = import('@huggingface/jinja');
    jinja.catch(() => {
      jinja = null;
    });
  }
  return jinja;
}

/** Renders `messages` into a prompt. */
export async function renderChat(messages: unknown, options: RenderChatOptions): Promise<RenderedChat> {
  const where = 'chat template';
  const list = normalizeMessages(where, messages);
  const choice = options.chatTemplate;
  let source: string;
  let template: RenderedChat['template'];
  if (choice !== undefined) {
    if (typeof choice !== 'string' || choice.length === 0) {
      throw new InvalidArgumentError(
        `${where}: chatTemplate must be one of ${CHAT_TEMPLATE_NAMES.join(', ')} or Jinja text`,
      );
    }
    if (isTemplateName(choice)) {
      source = TEMPLATES[choice];
      template = choice;
    } else if (choice.includes('{{') || choice.includes('{%')) {
      source = choice;
      template = 'custom';
    } else {
      throw new InvalidArgumentError(
        `${where}: unknown chatTemplate '${choice}'; use one of ` +
          `${CHAT_TEMPLATE_NAMES.join(', ')} or pass Jinja text`,
      );
    }
  } else if (options.modelTemplate !== null && options.modelTemplate.length > 0) {
    source = options.modelTemplate;
    template = 'model';
  } else {
    source = TEMPLATES.chatml;
    template = 'chatml';
  }

  const { Template } = await loadJinja();
  let prompt: string;
  try {
    prompt = new Template(source).render({
      messages: list,
      bos_token: options.bosToken,
      eos_token: options.eosToken,
      add_generation_prompt: options.addGenerationPrompt ?? true,
    });
  } catch (e) {
    const which = template === 'model' ? "the model's chat template" : `the ${template} chat template`;
    throw new InvalidArgumentError(`${where}: ${which} failed to render: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return {
    prompt,
    template,
    stop: template === 'model' || template === 'custom' ? [] : [...TURN_ENDS[template]],
    startsWithBos: options.bosToken.length > 0 && prompt.startsWith(options.bosToken),
  };
}
