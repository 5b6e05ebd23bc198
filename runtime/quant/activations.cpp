#include "quant/activations.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "core/f16.h"
#include "core/simd128.h"

namespace pipit::kernels {
namespace {

float through_f16(float v) {
  return f16_to_f32(f32_to_f16(v));
}

// The vector constants of one quantization call, made once (see simd::held).
struct RoundingConstants {
  simd::F magic = simd::held(simd::splat_f32(simd::kRoundingMagic));
};

// The largest magnitude among n values (a multiple of 4), ignoring NaN, as std::max would.
float largest_magnitude(const float* x, int n) {
  simd::F amax = simd::zero_f32();
  for (int j = 0; j < n; j += 4) amax = simd::max_f32(amax, simd::abs_f32(simd::load_f32(x + j)));
  return simd::max_lane_f32(amax);
}

// q = round-half-even(x * scale) for 16 values, returned as int32 lanes (for sums) and stored
// as int8. The caller makes sure every finite product lies within [-127.5, 127.5]; NaN
// becomes 0.
void round_16(const float* x, simd::F scale, const RoundingConstants& k, int8_t* q, simd::V* sum) {
  simd::V r[4];
  for (int i = 0; i < 4; ++i) {
    r[i] = simd::round_small_to_i32(simd::mul_f32(simd::load_f32(x + 4 * i), scale), k.magic);
  }
  simd::store(q, simd::narrow_i32_to_i8(r[0], r[1], r[2], r[3]));
  *sum = simd::add_i32(simd::add_i32(r[0], r[1]), simd::add_i32(r[2], r[3]));
}

// The shared part of Q8_0 and Q8_1: fills q with round-half-even(x * 127/amax) and returns
// amax and the sum of q. A scale of infinity (amax below 127/FLT_MAX) makes every product
// infinite or NaN, none of which is a quant: the block is zeros.
struct Block32 {
  float amax;
  int32_t sum;
};
Block32 quantize_block32(const float* x, int8_t* q, const RoundingConstants& k) {
  const float amax = largest_magnitude(x, 32);
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  if (!std::isfinite(id)) {
    std::memset(q, 0, 32);
    return {amax, 0};
  }
  simd::V low, high;
  round_16(x, simd::splat_f32(id), k, q, &low);
  round_16(x + 16, simd::splat_f32(id), k, q + 16, &high);
  return {amax, simd::sum_i32(simd::add_i32(low, high))};
}

// The value of largest magnitude: the first of them, with its sign.
float first_of_magnitude(const float* x, int n, float amax) {
  const simd::F target = simd::splat_f32(amax);
  for (int j = 0; j < n; j += 4) {
    if (const int lanes = simd::equal_lanes_f32(simd::abs_f32(simd::load_f32(x + j)), target)) {
      return x[j + std::countr_zero(static_cast<unsigned>(lanes))];
    }
  }
  return amax;  // not reached: amax is one of the magnitudes
}

}  // namespace

ActivationFormat activation_format(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::F32:
    case TensorType::BF16:
      return ActivationFormat::kF32;
    case TensorType::F16:
      return ActivationFormat::kF16;
    case TensorType::Q4_0:
    case TensorType::Q5_0:
    case TensorType::Q8_0:
      return ActivationFormat::kQ8_0;
    case TensorType::Q4_1:
    case TensorType::Q5_1:
      return ActivationFormat::kQ8_1;
    default:
      return ActivationFormat::kQ8_K;
  }
}

void quantize_q8_0(const float* x, BlockQ8_0* out, int64_t n) {
  const RoundingConstants k;
  for (int64_t b = 0; b < n / 32; ++b) {
    const Block32 r = quantize_block32(x + b * 32, out[b].qs, k);
    out[b].d = through_f16(r.amax / 127.0f);
    out[b].sum = r.sum;
  }
}

void quantize_q8_1(const float* x, BlockQ8_1* out, int64_t n) {
  const RoundingConstants k;
  for (int64_t b = 0; b < n / 32; ++b) {
    const Block32 r = quantize_block32(x + b * 32, out[b].qs, k);
    const float d = r.amax / 127.0f;
    out[b].d = through_f16(d);
    out[b].s = through_f16(d * static_cast<float>(r.sum));
  }
}

void quantize_q8_K(const float* x, BlockQ8_K* out, int64_t n) {
  const RoundingConstants k;
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* xb = x + b * 256;
    BlockQ8_K& y = out[b];
    const float amax = largest_magnitude(xb, 256);
    if (amax == 0.0f) {
      std::memset(&y, 0, sizeof y);
      continue;
    }
    const float iscale = -127.0f / first_of_magnitude(xb, 256, amax);
    y.d = 1.0f / iscale;
    if (!std::isfinite(iscale)) {  // as in quantize_block32
      std::memset(y.qs, 0, sizeof y.qs);
      std::memset(y.bsums, 0, sizeof y.bsums);
      continue;
    }
    for (int g = 0; g < 16; ++g) {
      simd::V sum;
      round_16(xb + g * 16, simd::splat_f32(iscale), k, y.qs + g * 16, &sum);
      y.bsums[g] = static_cast<int16_t>(simd::sum_i32(sum));
    }
  }
}

}  // namespace pipit::kernels
