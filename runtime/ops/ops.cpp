#include "ops/ops.h"

#include <algorithm>
#include <cmath>

namespace pipit::ops {

void rms_norm(const float* x, const float* weight, int n, float eps, float* out) {
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / n) + eps);
  for (int i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void rope_interleaved(float* vec, int n_heads, int head_dim, int rope_dim, int pos, float base) {
  // The angle advances by repeated multiplication in float, as llama.cpp computes it, so
  // positions far into the context agree with it to the last bits.
  const float theta_scale = std::pow(base, -2.0f / static_cast<float>(rope_dim));
  for (int h = 0; h < n_heads; ++h) {
    float* v = vec + h * head_dim;
    float theta = static_cast<float>(pos);
    for (int i = 0; i < rope_dim; i += 2) {
      const float c = std::cos(theta), s = std::sin(theta);
      const float a = v[i], b = v[i + 1];
      v[i] = a * c - b * s;
      v[i + 1] = a * s + b * c;
      theta *= theta_scale;
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

void add(float* a, const float* b, int n) {
  for (int i = 0; i < n; ++i) a[i] += b[i];
}

}  // namespace pipit::ops
