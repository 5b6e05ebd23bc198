// The element-wise and per-vector operations of a transformer layer, in f32.
#pragma once

#include <cstdint>

namespace pipit::ops {

// out = x / sqrt(mean(x^2) + eps) * weight  (the sum is accumulated in double, as llama.cpp does)
void rms_norm(const float* x, const float* weight, int n, float eps, float* out);

// out = (x - mean) / sqrt(var + eps) * weight + bias  (biased variance)
void layer_norm(const float* x, const float* weight, const float* bias, int n, float eps,
                float* out);

// Which value pairs a rotary embedding turns: (2i, 2i+1) for llama ("interleaved"), or
// (i, i + rope_dim/2) for the GPT-NeoX layout that qwen2, phi3 and gemma2 use.
enum class RopeStyle { kInterleaved, kNeox };

// Rotates the first rope_dim values of each of n_heads heads (head_dim apart) by
// pos * base^(-2i/rope_dim).
void rope(RopeStyle style, float* vec, int n_heads, int head_dim, int rope_dim, int pos,
          float base);

// x[i] = exp(x[i] - max) / sum, in place.
void softmax(float* x, int n);

// gate[i] = silu(gate[i]) * up[i]
void swiglu(float* gate, const float* up, int n);

// GELU, tanh form, evaluated the way llama.cpp's CPU backend does: through half precision
// for |x| < 10, which the reference logits reflect.
float gelu(float x);
void gelu(float* x, int n);

// x[i] = cap * tanh(x[i] / cap)
void softcap(float* x, int n, float cap);

// a[i] += b[i]
void add(float* a, const float* b, int n);

}  // namespace pipit::ops
