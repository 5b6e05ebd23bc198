#include "ops/ops.h"

#include <algorithm>
#include <cmath>

#include "core/f16.h"

namespace pipit::ops {

void rms_norm(const float* x, const float* weight, int n, float eps, float* out) {
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / n) + eps);
  for (int i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void layer_norm(const float* x, const float* weight, const float* bias, int n, float eps,
                float* out) {
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += x[i];
  const float mean = static_cast<float>(sum / n);
  double var = 0.0;
  for (int i = 0; i < n; ++i) var += static_cast<double>(x[i] - mean) * (x[i] - mean);
  const float scale = 1.0f / std::sqrt(static_cast<float>(var / n) + eps);
  for (int i = 0; i < n; ++i) out[i] = (x[i] - mean) * scale * weight[i] + bias[i];
}

void rope(RopeStyle style, float* vec, int n_heads, int head_dim, int rope_dim, int pos,
          float base) {
  // The angle advances by repeated multiplication in float, as llama.cpp computes it, so
  // positions far into the context agree with it to the last bits.
  const float theta_scale = std::pow(base, -2.0f / static_cast<float>(rope_dim));
  const int half = rope_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = vec + h * head_dim;
    float theta = static_cast<float>(pos);
    for (int i = 0; i < half; ++i, theta *= theta_scale) {
      const float c = std::cos(theta), s = std::sin(theta);
      const int i0 = style == RopeStyle::kInterleaved ? 2 * i : i;
      const int i1 = style == RopeStyle::kInterleaved ? 2 * i + 1 : i + half;
      const float a = v[i0], b = v[i1];
      v[i0] = a * c - b * s;
      v[i1] = a * s + b * c;
    }
  }
}

void softmax(float* x, int n) {
  const float max = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(float* gate, const float* up, int n) {
  for (int i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

float gelu(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoefA = 0.044715f;
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  const float h = f16_to_f32(f32_to_f16(x));
  const float g = 0.5f * h * (1.0f + std::tanh(kSqrt2OverPi * h * (1.0f + kCoefA * h * h)));
  return f16_to_f32(f32_to_f16(g));
}

void gelu(float* x, int n) {
  for (int i = 0; i < n; ++i) x[i] = gelu(x[i]);
}

void softcap(float* x, int n, float cap) {
  for (int i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

void add(float* a, const float* b, int n) {
  for (int i = 0; i < n; ++i) a[i] += b[i];
}

}  // namespace pipit::ops
