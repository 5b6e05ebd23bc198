// The element-wise and per-vector operations of a transformer layer, in f32.
#pragma once

#include <cstdint>

namespace pipit::ops {

// out = x / sqrt(mean(x^2) + eps) * weight  (the sum is accumulated in double, as llama.cpp does)
void rms_norm(const float* x, const float* weight, int n, float eps, float* out);

// Rotates pairs (2i, 2i+1) of each head's first rope_dim values by pos * base^(-2i/rope_dim):
// llama.cpp's "normal" RoPE, used by the llama architecture.
void rope_interleaved(float* vec, int n_heads, int head_dim, int rope_dim, int pos, float base);

// x[i] = exp(x[i] - max) / sum, in place.
void softmax(float* x, int n);

// gate[i] = silu(gate[i]) * up[i]
void swiglu(float* gate, const float* up, int n);

// a[i] += b[i]
void add(float* a, const float* b, int n);

}  // namespace pipit::ops
