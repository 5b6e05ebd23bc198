// The demo page's logic: pick a .gguf, load it with progress, stream a generation.
import { Pipit } from '../lib/index.js';

const $ = (id) => document.getElementById(id);
const fileInput = $('file');
const progress = $('progress');
const loadStatus = $('load-status');
const promptInput = $('prompt');
const generateButton = $('generate');
const stopButton = $('stop');
const output = $('output');
const speed = $('speed');
const errorBox = $('error');

let model = null;
let controller = null;

function showError(e) {
  errorBox.textContent = e ? `${e.name ?? 'Error'}: ${e.message ?? e}` : '';
}

fileInput.addEventListener('change', async () => {
  const file = fileInput.files?.[0];
  if (!file) return;
  showError(null);
  generateButton.disabled = true;
  model?.dispose();
  model = null;
  progress.value = 0;
  loadStatus.textContent = `Loading ${file.name}...`;
  try {
    model = await Pipit.load(file, {
      onProgress: ({ loaded, total }) => {
        progress.value = total > 0 ? loaded / total : 0;
      },
    });
    const i = model.info;
    loadStatus.textContent =
      `Loaded ${file.name}: ${i.architecture}, ${i.nLayer} layers, ${i.nVocab} tokens, ` +
      `${(i.fileBytes / 1e6).toFixed(1)} MB in ${model.loadMs.toFixed(0)} ms.`;
    generateButton.disabled = false;
  } catch (e) {
    loadStatus.textContent = 'Loading failed.';
    showError(e);
  }
});

generateButton.addEventListener('click', async () => {
  if (!model) return;
  showError(null);
  output.textContent = '';
  speed.textContent = '';
  controller = new AbortController();
  generateButton.disabled = true;
  stopButton.disabled = false;
  try {
    const gen = model.generate(promptInput.value, {
      maxTokens: Number($('max-tokens').value),
      temperature: Number($('temperature').value),
      signal: controller.signal,
    });
    for (;;) {
      const r = await gen.next();
      if (r.done) {
        const t = r.value.timings;
        speed.textContent =
          `${r.value.ids.length} tokens (${r.value.finishReason}): prompt ` +
          `${t.prefillTokensPerSecond.toFixed(1)} tokens/s, generation ` +
          `${t.decodeTokensPerSecond.toFixed(1)} tokens/s.`;
        break;
      }
      output.textContent += r.value;
    }
  } catch (e) {
    showError(e);
  } finally {
    generateButton.disabled = false;
    stopButton.disabled = true;
    controller = null;
  }
});

stopButton.addEventListener('click', () => controller?.abort());
