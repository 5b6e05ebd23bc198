#include "ops/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/f16.h"
#include "core/simd128.h"

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

void yarn_ramp(Rope& rope, int original_context, float beta_fast, float beta_slow) {
  // Pair i turns pos * base^(-2i/dims) radians, i.e. original_context * base^(-2i/dims) / 2pi
  // times over the original context; solve for the i that turns `beta` times.
  const auto pair_turning = [&](float beta) {
    const float two_pi = 6.28318530717958647692f;
    return static_cast<float>(rope.dims) *
           std::log(static_cast<float>(original_context) / (beta * two_pi)) /
           (2.0f * std::log(rope.base));
  };
  rope.yarn = true;
  rope.yarn_low = std::max(0.0f, std::floor(pair_turning(beta_fast)));
  rope.yarn_high = std::min(static_cast<float>(rope.dims - 1), std::ceil(pair_turning(beta_slow)));
}

void rope_angles(const Rope& rope, int pos, float* theta) {
  // The angle advances by repeated multiplication in float, as llama.cpp computes it, so
  // positions far into the context agree with it to the last bits.
  const float step = std::pow(rope.base, -2.0f / static_cast<float>(rope.dims));
  float unscaled = static_cast<float>(pos);
  for (int i = 0; i < rope.dims / 2; ++i, unscaled *= step) {
    const float extrapolated = rope.freq_factors ? unscaled / rope.freq_factors[i] : unscaled;
    const float interpolated = extrapolated * rope.freq_scale;
    if (!rope.yarn) {
      theta[i] = interpolated;
      continue;
    }
    const float y =
        (static_cast<float>(i) - rope.yarn_low) / std::max(0.001f, rope.yarn_high - rope.yarn_low);
    const float keep = 1.0f - std::clamp(y, 0.0f, 1.0f);
    theta[i] = interpolated * (1.0f - keep) + extrapolated * keep;
  }
}

namespace {

void rotate(const Rope& rope, float* vec, int n_heads, int head_dim, int pos, float magnitude) {
  const int half = rope.dims / 2;
  std::vector<float> theta(half), cos(half), sin(half);
  rope_angles(rope, pos, theta.data());
  for (int i = 0; i < half; ++i) {
    cos[i] = std::cos(theta[i]) * magnitude;
    sin[i] = std::sin(theta[i]) * magnitude;
  }
  for (int h = 0; h < n_heads; ++h) {
    float* v = vec + h * head_dim;
    for (int i = 0; i < half; ++i) {
      const int i0 = rope.style == RopeStyle::kInterleaved ? 2 * i : i;
      const int i1 = rope.style == RopeStyle::kInterleaved ? 2 * i + 1 : i + half;
      const float a = v[i0], b = v[i1];
      v[i0] = a * cos[i] - b * sin[i];
      v[i1] = a * sin[i] + b * cos[i];
    }
  }
}

}  // namespace

void rope(const Rope& rope, float* vec, int n_heads, int head_dim, int pos) {
  rotate(rope, vec, n_heads, head_dim, pos, rope.magnitude);
}

void rope_shift(const Rope& rope, float* vec, int n_heads, int head_dim, int delta) {
  rotate(rope, vec, n_heads, head_dim, delta, 1.0f);
}

void softmax(float* x, int n) {
  const int vector_end = n - n % 4;
  const float max = *std::max_element(x, x + n);
  const simd::ExpConstants k;
  const simd::F max_lanes = simd::splat_f32(max);
  simd::F sum_lanes = simd::zero_f32();
  for (int i = 0; i < vector_end; i += 4) {
    const simd::F e = simd::exp_f32(simd::sub_f32(simd::load_f32(x + i), max_lanes), k);
    simd::store_f32(x + i, e);
    sum_lanes = simd::add_f32(sum_lanes, e);
  }
  double sum = simd::sum_f32(sum_lanes);
  for (int i = vector_end; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(float* gate, const float* up, int n) {
  const int vector_end = n - n % 4;
  const simd::ExpConstants k;
  for (int i = 0; i < vector_end; i += 4) {
    const simd::F g = simd::load_f32(gate + i);
    const simd::F silu = simd::div_f32(
        g, simd::add_f32(k.one, simd::exp_f32(simd::sub_f32(simd::zero_f32(), g), k)));
    simd::store_f32(gate + i, simd::mul_f32(silu, simd::load_f32(up + i)));
  }
  for (int i = vector_end; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
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
