// The demo page: loads a model into its worker, chats with it, shows its speed and what it
// computed (token alternatives, attention).
import { cache } from '../../src/index.js';
import type { AttentionWeights, ChatMessage, GenerationResult, ModelInfo } from '../../src/index.js';
import type { FromWorker, Sampling, TokenChip, ToWorker } from './protocol.js';
import { drawHeatmap, headWeights } from './heatmap.js';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`missing #${id}`);
  return el as T;
};

interface CatalogEntry {
  id: string;
  name: string;
  url: string;
  sizeBytes?: number | null;
  license?: string;
  description?: string;
}

const worker = new Worker(new URL('./model-worker.ts', import.meta.url), { type: 'module' });
const send = (message: ToWorker): void => worker.postMessage(message);

let info: ModelInfo | null = null;
let modelName = '';
let loadStarted = 0;
let generating = false;
let messages: ChatMessage[] = [];
let chips: TokenChip[] = [];
let attention: { weights: AttentionWeights; pieces: string[] } | null = null;
let selectedQuery = -1;
let answerEl: HTMLElement | null = null;
const stats = new Map<string, string>();

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

function setStat(name: string, value: string): void {
  stats.set(name, value);
  const dl = $('stats');
  dl.replaceChildren();
  for (const [k, v] of stats) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    dd.dataset['stat'] = k;
    dl.append(dt, dd);
  }
}

function showError(text: string): void {
  $('error').textContent = text;
}

function setBusy(busy: boolean): void {
  generating = busy;
  $<HTMLButtonElement>('send').disabled = busy || info === null;
  $<HTMLButtonElement>('stop').disabled = !busy;
  $<HTMLButtonElement>('attention-refresh').disabled = busy || info === null;
}

// --- cross-origin isolation -------------------------------------------------------------

const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
const cores = navigator.hardwareConcurrency || 1;
if (!isolated) {
  const n = $('isolation');
  n.hidden = false;
  n.textContent =
    'Threads are off: this page is not cross-origin isolated (its server sends no ' +
    'Cross-Origin-Opener-Policy / Cross-Origin-Embedder-Policy headers, and the isolation ' +
    'service worker is not active yet), so browsers withhold SharedArrayBuffer. The model runs ' +
    'on one thread.';
}
setStat('Build', isolated ? `threads (pipit-mt.wasm), SIMD128, up to ${cores} threads` : 'single thread (pipit.wasm), SIMD128');

// --- loading ------------------------------------------------------------------------------

function startLoad(source: string | Blob | ArrayBuffer, name: string): void {
  if (generating) return;
  info = null;
  modelName = name;
  loadStarted = performance.now();
  setBusy(false);
  showError('');
  $<HTMLProgressElement>('progress').value = 0;
  $('load-status').textContent = `Reading ${name} into the engine…`;
  send({ type: 'load', source, threads: isolated ? cores : 1 });
}

async function loadUrl(url: string, name: string): Promise<void> {
  if (generating) return;
  showError('');
  const absolute = new URL(url, location.href).href;
  try {
    // Models bundled with the site are in the service worker's cache already; anything else
    // the engine downloads itself, keeping it in the package's model cache (pipit.cache).
    const precached = typeof caches === 'undefined' ? undefined : await caches.match(absolute);
    startLoad(precached ? await precached.blob() : absolute, name);
  } catch (e) {
    $('load-status').textContent = 'Loading failed.';
    showError((e as Error).message);
  }
}

async function refreshCache(): Promise<void> {
  const list = $('cache-list');
  const entries = await cache.list();
  list.replaceChildren();
  let total = 0;
  for (const entry of entries) {
    total += entry.size;
    const li = document.createElement('li');
    const name = decodeURIComponent(entry.url.split('/').pop() ?? entry.url);
    li.append(`${name} (${formatBytes(entry.size)}) `);
    const del = document.createElement('button');
    del.type = 'button';
    del.textContent = 'Delete';
    del.setAttribute('aria-label', `Delete ${name}`);
    del.onclick = async () => {
      await cache.delete(entry.url);
      void refreshCache();
    };
    li.append(del);
    list.append(li);
  }
  if (entries.length === 0) list.innerHTML = '<li>None yet.</li>';
  $('cache-total').textContent = formatBytes(total);
  for (const option of $<HTMLSelectElement>('catalog').options) {
    const url = option.value ? new URL(option.value, location.href).href : '';
    const cached = entries.some((e) => e.url === url);
    option.textContent = (option.dataset['label'] ?? option.textContent ?? '') + (cached ? ' · downloaded' : '');
  }
}

async function loadCatalog(): Promise<void> {
  const select = $<HTMLSelectElement>('catalog');
  let entries: CatalogEntry[] = [];
  try {
    const response = await fetch('./catalog.json');
    if (response.ok) {
      const data = (await response.json()) as { models?: unknown };
      if (Array.isArray(data.models)) {
        entries = data.models.filter(
          (m): m is CatalogEntry =>
            m !== null && typeof m === 'object' && typeof (m as CatalogEntry).url === 'string' &&
            typeof (m as CatalogEntry).name === 'string',
        );
      }
    }
  } catch {
    // No catalog: the URL and file inputs still work.
  }
  select.replaceChildren();
  for (const m of entries) {
    const option = document.createElement('option');
    option.value = m.url;
    const label = `${m.name}${typeof m.sizeBytes === 'number' ? ` (${formatBytes(m.sizeBytes)})` : ''}`;
    option.textContent = label;
    option.dataset['label'] = label;
    option.dataset['name'] = m.name;
    option.title = [m.description, m.license ? `License: ${m.license}` : ''].filter(Boolean).join(' · ');
    select.append(option);
  }
  if (entries.length === 0) {
    select.innerHTML = '<option value="">(no catalog on this site)</option>';
    $<HTMLButtonElement>('load-catalog').disabled = true;
  }
  const note = () => {
    const selected = select.selectedOptions[0];
    $('catalog-note').textContent = selected?.title ?? '';
  };
  select.onchange = note;
  note();
  await refreshCache();
}

$('load-catalog').onclick = () => {
  const option = $<HTMLSelectElement>('catalog').selectedOptions[0];
  if (option?.value) void loadUrl(option.value, option.dataset['name'] ?? option.value);
};
$('load-url').onclick = () => {
  const url = $<HTMLInputElement>('model-url').value.trim();
  if (url) void loadUrl(url, url.split('/').pop() ?? url);
};
$<HTMLInputElement>('model-file').onchange = (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file) startLoad(file, file.name);
};
const drop = $('drop-zone');
drop.ondragover = (event) => {
  event.preventDefault();
  drop.classList.add('over');
};
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) startLoad(file, file.name);
};
$('cache-clear').onclick = async () => {
  await cache.clear();
  void refreshCache();
};

// --- chat -----------------------------------------------------------------------------------

function mode(): 'chat' | 'complete' {
  return (document.querySelector('input[name="mode"]:checked') as HTMLInputElement).value as 'chat' | 'complete';
}

function numberInput(id: string): number {
  return Number($<HTMLInputElement>(id).value);
}

function sampling(): Sampling {
  const seed = $<HTMLInputElement>('seed').value.trim();
  return {
    temperature: numberInput('temperature'),
    topK: numberInput('top-k'),
    topP: numberInput('top-p'),
    maxTokens: numberInput('max-tokens'),
    ...(seed === '' ? {} : { seed: Number(seed) }),
  };
}

function addBubble(role: string, text: string): HTMLElement {
  const el = document.createElement('div');
  el.className = `bubble ${role}`;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : role === 'assistant' ? 'Model' : 'Prompt';
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  el.append(who, body);
  $('transcript').append(el);
  return body;
}

function newChat(): void {
  messages = [];
  $('transcript').replaceChildren();
  chips = [];
  $('token-chips').replaceChildren();
  $('token-detail').textContent = '';
}

$('new-chat').onclick = newChat;
for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) {
  radio.onchange = () => {
    $('system-field').hidden = mode() !== 'chat';
    newChat();
  };
}

$('send-form').onsubmit = (event) => {
  event.preventDefault();
  if (info === null || generating) return;
  const text = $<HTMLTextAreaElement>('prompt').value;
  if (text.trim() === '') return;
  showError('');
  chips = [];
  $('token-chips').replaceChildren();
  $('token-detail').textContent = '';
  const alternatives = Math.max(0, Math.min(20, Math.floor(numberInput('alternatives'))));
  setBusy(true);
  if (mode() === 'chat') {
    if (messages.length === 0) {
      const system = $<HTMLTextAreaElement>('system').value.trim();
      if (system) messages.push({ role: 'system', content: system });
    }
    messages.push({ role: 'user', content: text });
    addBubble('user', text);
    $<HTMLTextAreaElement>('prompt').value = '';
    answerEl = addBubble('assistant', '');
    send({ type: 'chat', messages, sampling: sampling(), alternatives });
  } else {
    $('transcript').replaceChildren();
    addBubble('prompt', text);
    answerEl = addBubble('assistant', '');
    send({ type: 'complete', prompt: text, sampling: sampling(), alternatives });
  }
};
$('prompt').onkeydown = (event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    $<HTMLFormElement>('send-form').requestSubmit();
  }
};
$('stop').onclick = () => send({ type: 'stop' });

// What a chip shows: newlines and whitespace-only tokens made visible.
function chipLabel(text: string): string {
  const shown = text.replace(/\n/g, '⏎');
  if (shown === '') return '∅';
  return shown.trim() === '' ? shown.replace(/ /g, '␣') : shown;
}

// --- token view -----------------------------------------------------------------------------

function chipDetail(index: number): void {
  const chip = chips[index];
  const detail = $('token-detail');
  if (chip === undefined) return;
  detail.replaceChildren();
  const head = document.createElement('p');
  const lp = chip.logprob;
  if (lp === undefined) {
    head.textContent = `Token ${chip.token} ${JSON.stringify(chip.text)}: set "Alternatives per token" above 0 to see alternatives.`;
    detail.append(head);
    return;
  }
  const rank = lp.top_logprobs.findIndex((t) => t.token === lp.token);
  head.textContent =
    `${JSON.stringify(lp.token)} (id ${chip.token}): p = ${(Math.exp(lp.logprob) * 100).toFixed(1)}%, ` +
    (rank >= 0 ? `rank ${rank + 1} of the model's choices` : `outside the top ${lp.top_logprobs.length}`);
  const table = document.createElement('table');
  table.innerHTML = '<caption>Most likely tokens at this step</caption><thead><tr><th scope="col">#</th><th scope="col">token</th><th scope="col">probability</th></tr></thead>';
  const body = document.createElement('tbody');
  lp.top_logprobs.forEach((t, i) => {
    const tr = document.createElement('tr');
    if (i === rank) tr.className = 'sampled';
    const p = Math.exp(t.logprob);
    const cells = [String(i + 1), JSON.stringify(t.token), `${(p * 100).toFixed(1)}%`];
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.append(td);
    }
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${Math.max(1, p * 100)}%`;
    tr.lastElementChild?.append(bar);
    body.append(tr);
  });
  table.append(body);
  detail.append(head, table);
}

function addChip(chip: TokenChip): void {
  chips.push(chip);
  const index = chips.length - 1;
  const el = document.createElement('button');
  el.type = 'button';
  el.className = 'chip';
  el.setAttribute('role', 'listitem');
  el.textContent = chipLabel(chip.text);
  const p = chip.logprob ? Math.exp(chip.logprob.logprob) : 1;
  // Light for likely tokens, more saturated for surprising ones.
  el.style.setProperty('--surprise', String(1 - p));
  el.setAttribute('aria-label', `token ${JSON.stringify(chip.text)}, probability ${(p * 100).toFixed(0)}%`);
  const show = () => chipDetail(index);
  el.onmouseenter = show;
  el.onfocus = show;
  el.onclick = show;
  $('token-chips').append(el);
}

// --- attention view ------------------------------------------------------------------------

function renderAttention(): void {
  if (attention === null) return;
  const headSelect = $<HTMLSelectElement>('head');
  const head = headSelect.value === 'mean' ? -1 : Number(headSelect.value);
  const { weights, pieces } = attention;
  const matrix = headWeights(weights, head);
  drawHeatmap($<HTMLCanvasElement>('heatmap'), matrix, weights.tokens.length, selectedQuery);
  const list = $('attention-tokens');
  list.replaceChildren();
  const n = weights.tokens.length;
  pieces.forEach((piece, i) => {
    const el = document.createElement('button');
    el.type = 'button';
    el.className = 'chip attn';
    el.setAttribute('role', 'listitem');
    el.textContent = chipLabel(piece);
    if (selectedQuery >= 0) {
      if (i === selectedQuery) el.classList.add('query');
      else if (i < selectedQuery) el.style.setProperty('--weight', String(Math.sqrt(matrix[selectedQuery * n + i] ?? 0)));
    }
    el.setAttribute('aria-pressed', String(i === selectedQuery));
    el.onclick = () => {
      selectedQuery = selectedQuery === i ? -1 : i;
      renderAttention();
      (list.children[i] as HTMLElement | undefined)?.focus();
    };
    list.append(el);
  });
  if (selectedQuery >= 0) {
    const row = Array.from(matrix.subarray(selectedQuery * n, selectedQuery * n + selectedQuery + 1));
    const best = row.indexOf(Math.max(...row));
    $('attention-status').textContent =
      `Token ${selectedQuery} ${JSON.stringify(pieces[selectedQuery])} attends most to token ${best} ` +
      `${JSON.stringify(pieces[best])} (${((row[best] ?? 0) * 100).toFixed(0)}%).`;
  }
}

$('heatmap').onclick = (event) => {
  if (attention === null) return;
  const canvas = event.target as HTMLCanvasElement;
  const rect = canvas.getBoundingClientRect();
  const n = attention.weights.tokens.length;
  const q = Math.floor(((event.clientY - rect.top) / rect.height) * n);
  selectedQuery = q >= 0 && q < n ? q : -1;
  renderAttention();
};
$('head').onchange = renderAttention;
$('layer').onchange = () => requestAttention();
$('attention-refresh').onclick = () => requestAttention();

function requestAttention(): void {
  if (info === null || generating) return;
  $('attention-status').textContent = 'Computing attention…';
  send({ type: 'attention', layer: Number($<HTMLSelectElement>('layer').value) });
}

function fillSelect(select: HTMLSelectElement, options: Array<[string, string]>): void {
  select.replaceChildren();
  for (const [value, label] of options) {
    const option = document.createElement('option');
    option.value = value;
    option.textContent = label;
    select.append(option);
  }
}

// --- worker replies -----------------------------------------------------------------------

function showResult(result: GenerationResult, wasmBytes: number): void {
  const t = result.timings;
  setStat('Prefill', `${t.prefillTokens} tokens, ${t.prefillTokensPerSecond.toFixed(1)} tokens/s` + (t.reusedTokens ? ` (${t.reusedTokens} reused)` : ''));
  setStat('Decode', `${t.decodeTokens} tokens, ${t.decodeTokensPerSecond.toFixed(1)} tokens/s`);
  if (info !== null) {
    const used = result.promptIds.length + result.ids.length;
    setStat('Context', `${used} of ${info.sessionContextLength} tokens`);
  }
  setStat('WASM memory', formatBytes(wasmBytes));
}

worker.onmessage = (event: MessageEvent<FromWorker>) => {
  const m = event.data;
  switch (m.type) {
    case 'progress': {
      $<HTMLProgressElement>('progress').value = m.total > 0 ? m.loaded / m.total : 0;
      const seconds = (performance.now() - loadStarted) / 1000;
      const speed = seconds > 0 ? ` at ${formatBytes(m.loaded / seconds)}/s` : '';
      $('load-status').textContent = `Loading ${modelName}: ${formatBytes(m.loaded)}` +
        (m.total > 0 ? ` of ${formatBytes(m.total)}` : '') + speed;
      return;
    }
    case 'loaded': {
      info = m.info;
      $<HTMLProgressElement>('progress').value = 1;
      $('load-status').textContent = `Loaded ${modelName} in ${m.loadMs.toFixed(0)} ms.`;
      void refreshCache();
      const quant = Object.entries(info.tensorTypes).map(([t, n]) => `${t} ×${n}`).join(', ');
      setStat('Model', `${info.name || modelName}: ${info.architecture}, ${info.nLayer} layers, ${info.nHead} heads, ${info.nEmbd} wide, ${info.nVocab} tokens`);
      setStat('Weights', `${quant}; file ${formatBytes(info.fileBytes)}`);
      setStat('Threads', `${info.threads}${m.threadsAvailable ? '' : ' (not cross-origin isolated)'}`);
      // Both engines are built for WASM SIMD128; which one runs is the engine's own answer.
      setStat('Build', `${info.engine.startsWith('pipit-mt') ? 'threaded' : 'single thread'} (${info.engine}.wasm), ${info.engine.endsWith('-relaxed') ? 'relaxed SIMD' : 'SIMD128'}`);
      setStat('Context', `0 of ${info.sessionContextLength} tokens`);
      setStat('WASM memory', formatBytes(m.wasmBytes));
      fillSelect($('layer'), Array.from({ length: info.nLayer }, (_, i) => [String(i), String(i)]));
      fillSelect($('head'), [['mean', 'mean of all'], ...Array.from({ length: info.nHead }, (_, i): [string, string] => [String(i), String(i)])]);
      if (info.chatTemplate === null && mode() === 'chat') {
        // Story models have no chat template and are at their best continuing a text.
        document.querySelector<HTMLInputElement>('input[name="mode"][value="complete"]')!.checked = true;
        $('system-field').hidden = true;
        $('load-status').textContent += ' It has no chat template, so the page continues text; choose Chat to try anyway.';
      }
      setBusy(false);
      return;
    }
    case 'token': {
      if (answerEl !== null) answerEl.textContent += m.chip.text;
      if (m.chip.token >= 0) addChip(m.chip);
      return;
    }
    case 'done': {
      if (mode() === 'chat') messages.push({ role: 'assistant', content: answerEl?.textContent ?? '' });
      answerEl = null;
      showResult(m.result, m.wasmBytes);
      setBusy(false);
      requestAttention();
      return;
    }
    case 'attention': {
      attention = { weights: m.attention, pieces: m.pieces };
      if (selectedQuery >= m.attention.tokens.length) selectedQuery = -1;
      $('attention-status').textContent =
        `Layer ${m.attention.layer}: ${m.attention.tokens.length} tokens × ${m.attention.nHead} heads.`;
      renderAttention();
      return;
    }
    case 'error': {
      showError(`${m.name}: ${m.message}`);
      if (m.during === 'load') $('load-status').textContent = 'Loading failed.';
      if (m.during === 'generate') setBusy(false);
      if (m.during === 'attention') $('attention-status').textContent = '';
      return;
    }
  }
};
worker.onerror = (event) => showError(`The model worker failed: ${event.message}`);

void loadCatalog().then(() => {
  const preset = new URLSearchParams(location.search).get('model');
  if (preset) void loadUrl(preset, preset.split('/').pop() ?? preset);
});
