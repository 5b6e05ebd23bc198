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
// (i, i + dims/2) for the GPT-NeoX layout that qwen2, phi3 and gemma2 use.
enum class RopeStyle { kInterleaved, kNeox };

// How a model turns a position into rotation angles. Pair i of the first `dims` values of a
// head turns by theta_i(pos) = pos * base^(-2i/dims) / freq_factors[i], then
//  - linear scaling (positions interpolated): theta_i *= freq_scale, with freq_scale = 1/factor;
//  - YaRN: pairs that turn fast (i <= yarn_low) keep theta_i, slow ones (i >= yarn_high) are
//    interpolated as above, and a linear ramp blends the pairs in between;
// and both sine and cosine are multiplied by `magnitude` (YaRN's and LongRoPE's attention
// factor, which scales q.k by its square). Every variant is linear in pos, so turning a key
// from position p to p + delta is the same rotation at delta with magnitude 1.
struct Rope {
  RopeStyle style = RopeStyle::kInterleaved;
  int dims = 0;
  float base = 10000.0f;
  float freq_scale = 1.0f;
  const float* freq_factors = nullptr;  // dims/2 divisors (llama3 rope_freqs, LongRoPE), or none
  float magnitude = 1.0f;
  bool yarn = false;
  float yarn_low = 0.0f, yarn_high = 0.0f;  // pair indices where the YaRN ramp starts and ends
};

// YaRN's ramp ends for a model of `dims` rotated values trained on `original_context`
// positions: the pair index that turns beta_fast (resp. beta_slow) times over that context.
void yarn_ramp(Rope& rope, int original_context, float beta_fast, float beta_slow);

// theta_i(pos) for the dims/2 pairs, before `magnitude`.
void rope_angles(const Rope& rope, int pos, float* theta);

// Rotates the first rope.dims values of each of n_heads heads (head_dim apart) to position pos.
void rope(const Rope& rope, float* vec, int n_heads, int head_dim, int pos);

// Turns vectors already rotated to some position p on to p + delta (delta may be negative),
// leaving their length alone.
void rope_shift(const Rope& rope, float* vec, int n_heads, int head_dim, int delta);

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
