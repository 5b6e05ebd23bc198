// The attention heatmap: queries down, keys across, darker = more attention.
import type { AttentionWeights } from '../../src/index.js';

/** One head's [query][key] matrix, or the mean over heads when head is -1. */
export function headWeights(a: AttentionWeights, head: number): Float32Array {
  const n = a.tokens.length;
  const size = n * n;
  if (head >= 0) return a.weights.subarray(head * size, (head + 1) * size);
  const mean = new Float32Array(size);
  for (let h = 0; h < a.nHead; h++) {
    const w = a.weights.subarray(h * size, (h + 1) * size);
    for (let i = 0; i < size; i++) mean[i]! += w[i]! / a.nHead;
  }
  return mean;
}

export function drawHeatmap(canvas: HTMLCanvasElement, m: Float32Array, n: number, selected: number): void {
  const ctx = canvas.getContext('2d');
  if (ctx === null || n === 0) return;
  const side = canvas.width;
  const cell = side / n;
  // One pixel per (query, key), scaled up without smoothing: n² pixels instead of n² rectangles
  // keeps long contexts quick to draw. Square root spreads the small weights most rows are made of.
  const pixels = new ImageData(n, n);
  const d = pixels.data;
  for (let q = 0; q < n; q++) {
    for (let k = 0; k < n; k++) {
      const o = (q * n + k) * 4;
      if (k > q) {
        d[o] = 243;
        d[o + 1] = 241;
        d[o + 2] = 236;
      } else {
        const w = Math.sqrt(m[q * n + k] ?? 0);
        d[o] = Math.round(240 - w * 220);
        d[o + 1] = Math.round(244 - w * 180);
        d[o + 2] = Math.round(255 - w * 75);
      }
      d[o + 3] = 255;
    }
  }
  const bitmap = new OffscreenCanvas(n, n);
  bitmap.getContext('2d')?.putImageData(pixels, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(bitmap, 0, 0, side, side);
  // The causal boundary: nothing above the diagonal can be attended to.
  ctx.strokeStyle = '#b3261e';
  ctx.lineWidth = Math.max(1, side / 400);
  ctx.beginPath();
  ctx.moveTo(0, 0);
  for (let q = 0; q < n; q++) {
    ctx.lineTo((q + 1) * cell, q * cell);
    ctx.lineTo((q + 1) * cell, (q + 1) * cell);
  }
  ctx.stroke();
  if (selected >= 0 && selected < n) {
    ctx.strokeStyle = '#e8a200';
    ctx.lineWidth = Math.max(2, cell / 6);
    ctx.strokeRect(0, selected * cell, (selected + 1) * cell, cell);
  }
}
