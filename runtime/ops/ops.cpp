#include "ops/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <xsimd/xsimd.hpp>

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

// GCC 12 warns that its own AVX-512 intrinsics, inlined from xsimd::exp, may read an
// uninitialized register (a known false positive of _mm512_undefined_*).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
void softmax(float* x, int n) {
  using Batch = xsimd::batch<float>;
  constexpr int kLanes = static_cast<int>(Batch::size);
  const int vector_end = n - n % kLanes;
  const float max = *std::max_element(x, x + n);
  const Batch max_batch(max);
  Batch sum_batch(0.0f);
  for (int i = 0; i < vector_end; i += kLanes) {
    const Batch e = xsimd::exp(Batch::load_unaligned(x + i) - max_batch);
    e.store_unaligned(x + i);
    sum_batch += e;
  }
  double sum = xsimd::hadd(sum_batch);
  for (int i = vector_end; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int i = 0; i < n; ++i) x[i] *= inv;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

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
