// SIMD dot products: xsimd where it has the words (f32), WebAssembly SIMD128 or x86 SSE
// intrinsics for the integer products it lacks. The same source serves WASM and native.
#include <xsimd/xsimd.hpp>

#include <cstring>

#include "core/f16.h"
#include "core/simd128.h"
#include "quant/dot.h"
#include "quant/k_scales.h"
#include "quant/legacy_quants.h"
#include "quant/quant_simd.h"

namespace pipit::kernels {
namespace {

float dot_f32(const uint8_t* w, const void* x, int64_t n) {
  using Batch = xsimd::batch<float>;
  constexpr int64_t kWidth = static_cast<int64_t>(Batch::size);
  const float* a = reinterpret_cast<const float*>(w);
  const float* b = static_cast<const float*>(x);
  // Four independent accumulators hide the add latency.
  Batch acc0(0.0f), acc1(0.0f), acc2(0.0f), acc3(0.0f);
  int64_t i = 0;
  for (; i + 4 * kWidth <= n; i += 4 * kWidth) {
    acc0 = xsimd::fma(Batch::load_unaligned(a + i), Batch::load_unaligned(b + i), acc0);
    acc1 = xsimd::fma(Batch::load_unaligned(a + i + kWidth), Batch::load_unaligned(b + i + kWidth),
                      acc1);
    acc2 = xsimd::fma(Batch::load_unaligned(a + i + 2 * kWidth),
                      Batch::load_unaligned(b + i + 2 * kWidth), acc2);
    acc3 = xsimd::fma(Batch::load_unaligned(a + i + 3 * kWidth),
                      Batch::load_unaligned(b + i + 3 * kWidth), acc3);
  }
  for (; i + kWidth <= n; i += kWidth) {
    acc0 = xsimd::fma(Batch::load_unaligned(a + i), Batch::load_unaligned(b + i), acc0);
  }
  float sum = xsimd::hadd((acc0 + acc1) + (acc2 + acc3));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// F16 and BF16 weights widen to f32 in registers; the activations are f32 (rounded to half
// precision beforehand for F16, as llama.cpp does).
float dot_f16(const uint8_t* w, const void* x, int64_t n) {
  using namespace simd;
  const float* xf = static_cast<const float*>(x);
  F acc0 = zero_f32(), acc1 = zero_f32();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const V h = load(w + 2 * i);
    acc0 = mul_add_f32(halves_to_f32(widen_low_u16(h)), load_f32(xf + i), acc0);
    acc1 = mul_add_f32(halves_to_f32(widen_high_u16(h)), load_f32(xf + i + 4), acc1);
  }
  float sum = sum_f32(acc0) + sum_f32(acc1);
  for (; i < n; ++i) sum += half(w + 2 * i) * xf[i];
  return sum;
}

float dot_bf16(const uint8_t* w, const void* x, int64_t n) {
  using namespace simd;
  const float* xf = static_cast<const float*>(x);
  F acc0 = zero_f32(), acc1 = zero_f32();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const V h = load(w + 2 * i);
    acc0 = mul_add_f32(bits_as_f32(shl_i32<16>(widen_low_u16(h))), load_f32(xf + i), acc0);
    acc1 = mul_add_f32(bits_as_f32(shl_i32<16>(widen_high_u16(h))), load_f32(xf + i + 4), acc1);
  }
  float sum = sum_f32(acc0) + sum_f32(acc1);
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, w + 2 * i, 2);
    sum += bits_float(static_cast<uint32_t>(h) << 16) * xf[i];
  }
  return sum;
}

// Each kernel multiplies one weight row with N activation rows (`stride` bytes apart) at
// once: the weights are loaded and unpacked once per block and reused for every token of a
// prompt. Decoding is N = 1.

// Legacy types: each 32-value block gives an int32x4 partial sum, scaled by the two block
// scales into a float accumulator that stays in a register for the whole row. Symmetric types
// (Q8_0 activations) are w = d * (q - offset): the offset's share, offset * sum(qx), is taken
// from the integers, a quarter from each lane. Types with a minimum m (Q8_1 activations) are
// w = d * q + m: the dot is d * dx * sum(q * qx) + m * s, where s = dx * sum(qx).
template <typename T, int N>
void dot_legacy(const uint8_t* w, const uint8_t* x, size_t stride, int64_t n, float* out) {
  using namespace simd;
  constexpr int kHeader = T::kHasMin ? 4 : 2;
  static_assert(T::kOffset % 4 == 0);
  const LegacyMasks masks;
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  float min_sum[N] = {};
  for (int64_t b = 0; b < n / 32; ++b, w += kHeader + T::kQuantBytes) {
    const Quants32 q = T::unpack(w + kHeader, masks);
    const float dw = half(w);
    for (int k = 0; k < N; ++k) {
      const auto& y = block_of<typename T::Activations>(x, stride, k, b);
      V sum = T::dot(q, load(y.qs), load(y.qs + 16));
      if constexpr (T::kOffset != 0) sum = sub_i32(sum, splat_i32(T::kOffset / 4 * y.sum));
      acc[k] = mul_add_f32(to_f32(sum), splat_f32(dw * y.d), acc[k]);
      if constexpr (T::kHasMin) min_sum[k] += half(w + 2) * y.s;
    }
  }
  for (int k = 0; k < N; ++k) out[k] = sum_f32(acc[k]) + min_sum[k];
}

template <int N>
constexpr auto dot_q8_0 = dot_legacy<Q8_0Quants, N>;
template <int N>
constexpr auto dot_q4_0 = dot_legacy<Q4_0Quants, N>;
template <int N>
constexpr auto dot_q5_0 = dot_legacy<Q5_0Quants, N>;
template <int N>
constexpr auto dot_q4_1 = dot_legacy<Q4_1Quants, N>;
template <int N>
constexpr auto dot_q5_1 = dot_legacy<Q5_1Quants, N>;

// K-quants. Weight quants stay unsigned (before any offset) so that dot_u7_pairs multiplies 16
// of them with 16 activations into eight int16 lanes, one instruction under relaxed SIMD; then
// madd_i16 applies the sub-block's integer scale while widening to int32. Mins and offsets
// (Q6_K's -32, Q3_K's -4) come out once per super-block and token, from the activation block's
// sums of 16 (bsums). One float multiply-add per super-block and token scales the integers.
// int16 lanes hold at most (|x| <= 127): 2 * 63 * 127 = 16002 for Q6_K; four products of 4-bit
// quants (7620) for Q4_K, of 5-bit ones (15748) for Q5_K, two of 3-bit (1778) for Q3_K.

// Q4_K, and Q5_K with a fifth bit for every quant (two bits per 64 values in qh): eight
// sub-blocks of 32 with a 6-bit scale and a 6-bit min each.
template <bool kFiveBits, int N>
void dot_q45_k(const uint8_t* w, const uint8_t* x, size_t stride, int64_t n, float* out) {
  using namespace simd;
  constexpr int kBlockBytes = kFiveBits ? 176 : 144;
  const V low_nibbles = splat_i8(0x0F);
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  for (int64_t b = 0; b < n / 256; ++b, w += kBlockBytes) {
    const V scales_and_mins = k4_scales_and_mins(w + 4);
    alignas(16) int16_t scale[8];
    store_i16(scale, low_bytes_as_i16(scales_and_mins));
    const V min_lo = k4_min_pairs<0>(scales_and_mins), min_hi = k4_min_pairs<1>(scales_and_mins);
    const float d = half(w), dmin = half(w + 2);
    const V qh0 = kFiveBits ? load(w + 16) : zero(), qh1 = kFiveBits ? load(w + 32) : zero();
    V sumi[N];
    for (auto& v : sumi) v = zero();
    const uint8_t* q = w + (kFiveBits ? 48 : 16);
    for (int j = 0; j < 4; ++j, q += 32) {
      const V q0 = load(q), q1 = load(q + 16);
      V lo0 = bit_and(q0, low_nibbles), lo1 = bit_and(q1, low_nibbles);
      V hi0 = shr_u8<4>(q0), hi1 = shr_u8<4>(q1);
      if constexpr (kFiveBits) {
        add_q5_k_fifth_bits(qh0, qh1, j, lo0, lo1, hi0, hi1);
      }
      const V scale_lo = splat_i16(scale[2 * j]), scale_hi = splat_i16(scale[2 * j + 1]);
      for (int k = 0; k < N; ++k) {
        const int8_t* xq = block_of<BlockQ8_K>(x, stride, k, b).qs + 64 * j;
        const V lo = add_i16(dot_u7_pairs(lo0, load(xq)), dot_u7_pairs(lo1, load(xq + 16)));
        const V hi = add_i16(dot_u7_pairs(hi0, load(xq + 32)), dot_u7_pairs(hi1, load(xq + 48)));
        sumi[k] = add_i32(sumi[k], add_i32(madd_i16(lo, scale_lo), madd_i16(hi, scale_hi)));
      }
    }
    for (int k = 0; k < N; ++k) {
      const auto& y = block_of<BlockQ8_K>(x, stride, k, b);
      const V mins = add_i32(madd_i16(load(y.bsums), min_lo), madd_i16(load(y.bsums + 8), min_hi));
      acc[k] = mul_add_f32(to_f32(sumi[k]), splat_f32(y.d * d), acc[k]);
      acc[k] = mul_add_f32(to_f32(mins), splat_f32(-y.d * dmin), acc[k]);
    }
  }
  for (int k = 0; k < N; ++k) out[k] = sum_f32(acc[k]);
}

template <int N>
constexpr auto dot_q4_k = dot_q45_k<false, N>;
template <int N>
constexpr auto dot_q5_k = dot_q45_k<true, N>;

// The four 2-bit fields of 16 bytes: fields[j] holds bits 2j..2j+1 of every byte.
void two_bit_fields(simd::V q, simd::V* fields) {
  using namespace simd;
  const V three = splat_i8(3);
  fields[0] = bit_and(q, three);
  fields[1] = bit_and(shr_u8<2>(q), three);
  fields[2] = bit_and(shr_u8<4>(q), three);
  fields[3] = shr_u8<6>(q);
}

// Q2_K: 2-bit quants in 16 groups of 16, each group with a 4-bit scale and a 4-bit min.
template <int N>
void dot_q2_k(const uint8_t* w, const uint8_t* x, size_t stride, int64_t n, float* out) {
  using namespace simd;
  const V low_nibbles = splat_i8(0x0F);
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  for (int64_t b = 0; b < n / 256; ++b, w += 84) {
    const V packed = load(w);
    const V scales = bit_and(packed, low_nibbles), mins = shr_u8<4>(packed);
    alignas(16) int16_t scale[16];
    store_i16(scale, low_bytes_as_i16(scales));
    store_i16(scale + 8, high_bytes_as_i16(scales));
    const V min_lo = low_bytes_as_i16(mins), min_hi = high_bytes_as_i16(mins);
    V sumi[N];
    for (auto& v : sumi) v = zero();
    for (int chunk = 0; chunk < 2; ++chunk) {
      V lo[4], hi[4];
      two_bit_fields(load(w + 16 + 32 * chunk), lo);
      two_bit_fields(load(w + 32 + 32 * chunk), hi);
      for (int j = 0; j < 4; ++j) {
        const int g = chunk * 8 + 2 * j;
        const V s_lo = splat_i16(scale[g]), s_hi = splat_i16(scale[g + 1]);
        for (int k = 0; k < N; ++k) {
          const int8_t* xq = block_of<BlockQ8_K>(x, stride, k, b).qs + 128 * chunk + 32 * j;
          sumi[k] = add_i32(sumi[k], add_i32(madd_i16(dot_u7_pairs(lo[j], load(xq)), s_lo),
                                             madd_i16(dot_u7_pairs(hi[j], load(xq + 16)), s_hi)));
        }
      }
    }
    const float d = half(w + 80), dmin = half(w + 82);
    for (int k = 0; k < N; ++k) {
      const auto& y = block_of<BlockQ8_K>(x, stride, k, b);
      const V mins_sum =
          add_i32(madd_i16(load(y.bsums), min_lo), madd_i16(load(y.bsums + 8), min_hi));
      acc[k] = mul_add_f32(to_f32(sumi[k]), splat_f32(y.d * d), acc[k]);
      acc[k] = mul_add_f32(to_f32(mins_sum), splat_f32(-y.d * dmin), acc[k]);
    }
  }
  for (int k = 0; k < N; ++k) out[k] = sum_f32(acc[k]);
}

// Q3_K: Q2_K's 2-bit fields plus 4 where the high-bit mask is set, all offset by -4, and
// sixteen 6-bit signed scales.
template <int N>
void dot_q3_k(const uint8_t* w, const uint8_t* x, size_t stride, int64_t n, float* out) {
  using namespace simd;
  const V four = splat_i8(4);
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  for (int64_t b = 0; b < n / 256; ++b, w += 110) {
    alignas(16) int16_t scale[16];
    unpack_q3_k_scales(w + 96, scale);
    const V scale_lo = load(scale), scale_hi = load(scale + 8);
    const V hmask_lo = load(w), hmask_hi = load(w + 16);
    V sumi[N];
    for (auto& v : sumi) v = zero();
    for (int chunk = 0; chunk < 2; ++chunk) {
      V lo[4], hi[4];
      two_bit_fields(load(w + 32 + 32 * chunk), lo);
      two_bit_fields(load(w + 48 + 32 * chunk), hi);
      for (int j = 0; j < 4; ++j) {
        const V bit = splat_i8(static_cast<int8_t>(1 << (4 * chunk + j)));
        const V u_lo = bit_or(lo[j], bit_and(has_bits(hmask_lo, bit), four));
        const V u_hi = bit_or(hi[j], bit_and(has_bits(hmask_hi, bit), four));
        const int g = chunk * 8 + 2 * j;
        const V s_lo = splat_i16(scale[g]), s_hi = splat_i16(scale[g + 1]);
        for (int k = 0; k < N; ++k) {
          const int8_t* xq = block_of<BlockQ8_K>(x, stride, k, b).qs + 128 * chunk + 32 * j;
          sumi[k] = add_i32(sumi[k], add_i32(madd_i16(dot_u7_pairs(u_lo, load(xq)), s_lo),
                                             madd_i16(dot_u7_pairs(u_hi, load(xq + 16)), s_hi)));
        }
      }
    }
    const float d = half(w + 108);
    for (int k = 0; k < N; ++k) {
      const auto& y = block_of<BlockQ8_K>(x, stride, k, b);
      const V offset =
          add_i32(madd_i16(load(y.bsums), scale_lo), madd_i16(load(y.bsums + 8), scale_hi));
      acc[k] =
          mul_add_f32(to_f32(sub_i32(sumi[k], shl_i32<2>(offset))), splat_f32(y.d * d), acc[k]);
    }
  }
  for (int k = 0; k < N; ++k) out[k] = sum_f32(acc[k]);
}

// Q6_K: 6-bit quants stored plus 32 (low nibbles in ql, two high bits in qh), sixteen groups of
// 16 with a signed 8-bit scale each.
template <int N>
void dot_q6_k(const uint8_t* w, const uint8_t* x, size_t stride, int64_t n, float* out) {
  using namespace simd;
  const V low_nibbles = splat_i8(0x0F), bits_4_5 = splat_i8(0x30);
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  for (int64_t b = 0; b < n / 256; ++b, w += 210) {
    const uint8_t* ql = w;
    const uint8_t* qh = w + 128;
    alignas(16) int16_t scale[16];
    for (int g = 0; g < 16; ++g) scale[g] = static_cast<int8_t>(w[192 + g]);
    const V scale_lo = load(scale), scale_hi = load(scale + 8);
    V sumi[N];
    for (auto& v : sumi) v = zero();
    for (int chunk = 0; chunk < 2; ++chunk, ql += 64, qh += 32) {
      for (int l = 0; l < 32; l += 16) {
        const V a = load(ql + l), c = load(ql + 32 + l), h = load(qh + l);
        // Four 6-bit quants per position: the low and high nibbles of a and c, each with two
        // bits of h (bits 0-1, 2-3, 4-5, 6-7) moved to bits 4-5.
        const V h_up = shl_u16<4>(bit_and(h, low_nibbles));
        const V q1 = bit_or(bit_and(a, low_nibbles), bit_and(h_up, bits_4_5));
        const V q2 = bit_or(bit_and(c, low_nibbles), bit_and(shr_u8<2>(h_up), bits_4_5));
        const V q3 = bit_or(shr_u8<4>(a), bit_and(h, bits_4_5));
        const V q4 = bit_or(shr_u8<4>(c), bit_and(shr_u8<2>(h), bits_4_5));
        const int g = 8 * chunk + l / 16;
        const V s1 = splat_i16(scale[g]), s2 = splat_i16(scale[g + 2]);
        const V s3 = splat_i16(scale[g + 4]), s4 = splat_i16(scale[g + 6]);
        for (int k = 0; k < N; ++k) {
          const int8_t* xq = block_of<BlockQ8_K>(x, stride, k, b).qs + 128 * chunk + l;
          V sum = madd_i16(dot_u7_pairs(q1, load(xq)), s1);
          sum = add_i32(sum, madd_i16(dot_u7_pairs(q2, load(xq + 32)), s2));
          sum = add_i32(sum, madd_i16(dot_u7_pairs(q3, load(xq + 64)), s3));
          sum = add_i32(sum, madd_i16(dot_u7_pairs(q4, load(xq + 96)), s4));
          sumi[k] = add_i32(sumi[k], sum);
        }
      }
    }
    const float d = half(w + 208);
    for (int k = 0; k < N; ++k) {
      const auto& y = block_of<BlockQ8_K>(x, stride, k, b);
      // The stored quants are 32 too high: take 32 times each group's scaled sum back out.
      const V offset =
          add_i32(madd_i16(load(y.bsums), scale_lo), madd_i16(load(y.bsums + 8), scale_hi));
      acc[k] =
          mul_add_f32(to_f32(sub_i32(sumi[k], shl_i32<5>(offset))), splat_f32(y.d * d), acc[k]);
    }
  }
  for (int k = 0; k < N; ++k) out[k] = sum_f32(acc[k]);
}

// Adapts a kernel template to both entry points: one activation row, or up to four.
#define PIPIT_KERNEL_ENTRIES(name)                                                       \
  float name##_one(const uint8_t* w, const void* x, int64_t n) {                         \
    float out;                                                                           \
    name<1>(w, static_cast<const uint8_t*>(x), 0, n, &out);                              \
    return out;                                                                          \
  }                                                                                      \
  void name##_many(const uint8_t* w, const void* x, size_t stride, int count, int64_t n, \
                   float* out) {                                                         \
    const auto* xb = static_cast<const uint8_t*>(x);                                     \
    switch (count) {                                                                     \
      case 1:                                                                            \
        name<1>(w, xb, stride, n, out);                                                  \
        return;                                                                          \
      case 2:                                                                            \
        name<2>(w, xb, stride, n, out);                                                  \
        return;                                                                          \
      case 3:                                                                            \
        name<3>(w, xb, stride, n, out);                                                  \
        return;                                                                          \
      default:                                                                           \
        name<4>(w, xb, stride, n, out);                                                  \
        return;                                                                          \
    }                                                                                    \
  }

PIPIT_KERNEL_ENTRIES(dot_q8_0)
PIPIT_KERNEL_ENTRIES(dot_q4_0)
PIPIT_KERNEL_ENTRIES(dot_q4_k)
PIPIT_KERNEL_ENTRIES(dot_q6_k)
PIPIT_KERNEL_ENTRIES(dot_q4_1)
PIPIT_KERNEL_ENTRIES(dot_q5_0)
PIPIT_KERNEL_ENTRIES(dot_q5_1)
PIPIT_KERNEL_ENTRIES(dot_q5_k)
PIPIT_KERNEL_ENTRIES(dot_q2_k)
PIPIT_KERNEL_ENTRIES(dot_q3_k)

}  // namespace

DotFn simd_dot(TensorType type) {
  switch (type) {
    case TensorType::F32:
      return dot_f32;
    case TensorType::F16:
      return dot_f16;
    case TensorType::BF16:
      return dot_bf16;
    case TensorType::Q8_0:
      return dot_q8_0_one;
    case TensorType::Q4_0:
      return dot_q4_0_one;
    case TensorType::Q4_K:
      return dot_q4_k_one;
    case TensorType::Q6_K:
      return dot_q6_k_one;
    case TensorType::Q2_K:
      return dot_q2_k_one;
    case TensorType::Q3_K:
      return dot_q3_k_one;
    case TensorType::Q4_1:
      return dot_q4_1_one;
    case TensorType::Q5_0:
      return dot_q5_0_one;
    case TensorType::Q5_1:
      return dot_q5_1_one;
    case TensorType::Q5_K:
      return dot_q5_k_one;
    default:
      return reference_dot(type);
  }
}

MultiDotFn simd_multi_dot(TensorType type) {
  switch (type) {
    case TensorType::Q8_0:
      return dot_q8_0_many;
    case TensorType::Q4_0:
      return dot_q4_0_many;
    case TensorType::Q4_K:
      return dot_q4_k_many;
    case TensorType::Q6_K:
      return dot_q6_k_many;
    case TensorType::Q2_K:
      return dot_q2_k_many;
    case TensorType::Q3_K:
      return dot_q3_k_many;
    case TensorType::Q4_1:
      return dot_q4_1_many;
    case TensorType::Q5_0:
      return dot_q5_0_many;
    case TensorType::Q5_1:
      return dot_q5_1_many;
    case TensorType::Q5_K:
      return dot_q5_k_many;
    default:
      return nullptr;
  }
}

}  // namespace pipit::kernels
