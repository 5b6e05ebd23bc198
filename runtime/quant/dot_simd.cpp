// SIMD dot products: xsimd where it has the words (f32), WebAssembly SIMD128 or x86 SSE
// intrinsics for the integer products it lacks. The same source serves WASM and native.
#include <xsimd/xsimd.hpp>

#include <cstring>

#include "core/f16.h"
#include "quant/dot.h"
#include "quant/simd128.h"

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

// Legacy types: each 32-value block gives an int32x4 partial sum, scaled by the two block
// scales into a float accumulator that stays in a register for the whole row.
float dot_q8_0(const uint8_t* w, const void* x, int64_t n) {
  using namespace simd;
  const auto* y = static_cast<const kernels::BlockQ8_0*>(x);
  auto acc = zero_f32();
  for (int64_t b = 0; b < n / 32; ++b, w += 34) {
    const V sum =
        add_i32(dot_i8(load(w + 2), load(y[b].qs)), dot_i8(load(w + 18), load(y[b].qs + 16)));
    acc = mul_add_f32(to_f32(sum), splat_f32(half(w) * y[b].d), acc);
  }
  return sum_f32(acc);
}

float dot_q4_0(const uint8_t* w, const void* x, int64_t n) {
  using namespace simd;
  const auto* y = static_cast<const kernels::BlockQ8_0*>(x);
  const V low_nibbles = splat_i8(0x0F), eight = splat_i8(8);
  auto acc = zero_f32();
  for (int64_t b = 0; b < n / 32; ++b, w += 18) {
    const V packed = load(w + 2);
    const V lo = sub_i8(bit_and(packed, low_nibbles), eight);
    const V hi = sub_i8(shr_u8<4>(packed), eight);
    const V sum = add_i32(dot_i8(lo, load(y[b].qs)), dot_i8(hi, load(y[b].qs + 16)));
    acc = mul_add_f32(to_f32(sum), splat_f32(half(w) * y[b].d), acc);
  }
  return sum_f32(acc);
}

// K-quants: integer sums of whole super-blocks, each sub-block's product scaled by its integer
// scale inside int32 lanes; one float multiply-add per super-block.
float dot_q4_k(const uint8_t* w, const void* x, int64_t n) {
  using namespace simd;
  const auto* y = static_cast<const kernels::BlockQ8_K*>(x);
  const V low_nibbles = splat_i8(0x0F);
  auto acc = zero_f32();
  float min_sum = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b, w += 144) {
    const uint8_t* packed_scales = w + 4;
    int scale[8], min[8];
    for (int j = 0; j < 8; ++j) {
      if (j < 4) {
        scale[j] = packed_scales[j] & 63;
        min[j] = packed_scales[j + 4] & 63;
      } else {
        scale[j] = (packed_scales[j + 4] & 0x0F) | ((packed_scales[j - 4] >> 6) << 4);
        min[j] = (packed_scales[j + 4] >> 4) | ((packed_scales[j] >> 6) << 4);
      }
    }
    const uint8_t* q = w + 16;
    const int8_t* xq = y[b].qs;
    V sumi = zero();
    for (int j = 0; j < 4; ++j, q += 32, xq += 64) {
      const V q0 = load(q), q1 = load(q + 16);
      const V lo = add_i32(dot_i8(bit_and(q0, low_nibbles), load(xq)),
                           dot_i8(bit_and(q1, low_nibbles), load(xq + 16)));
      const V hi =
          add_i32(dot_i8(shr_u8<4>(q0), load(xq + 32)), dot_i8(shr_u8<4>(q1), load(xq + 48)));
      sumi = add_i32(sumi, add_i32(mul_i32(lo, splat_i32(scale[2 * j])),
                                   mul_i32(hi, splat_i32(scale[2 * j + 1]))));
    }
    int mins = 0;
    for (int j = 0; j < 8; ++j) mins += min[j] * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
    acc = mul_add_f32(to_f32(sumi), splat_f32(y[b].d * half(w)), acc);
    min_sum += (y[b].d * half(w + 2)) * static_cast<float>(mins);
  }
  return sum_f32(acc) - min_sum;
}

float dot_q6_k(const uint8_t* w, const void* x, int64_t n) {
  using namespace simd;
  const auto* y = static_cast<const kernels::BlockQ8_K*>(x);
  const V low_nibbles = splat_i8(0x0F), two_bits = splat_i8(3), offset = splat_i8(32);
  auto acc = zero_f32();
  for (int64_t b = 0; b < n / 256; ++b, w += 210) {
    const uint8_t* ql = w;
    const uint8_t* qh = w + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    const int8_t* xq = y[b].qs;
    V sumi = zero();
    for (int chunk = 0; chunk < 2; ++chunk, ql += 64, qh += 32, sc += 8, xq += 128) {
      for (int l = 0; l < 32; l += 16) {
        const V a = load(ql + l), c = load(ql + 32 + l), h = load(qh + l);
        // Four 6-bit values per position: low nibbles of a and c, high nibbles of a and c,
        // each with two bits of h on top.
        const V q1 =
            sub_i8(bit_or(bit_and(a, low_nibbles), shl4_small(bit_and(h, two_bits))), offset);
        const V q2 = sub_i8(
            bit_or(bit_and(c, low_nibbles), shl4_small(bit_and(shr_u8<2>(h), two_bits))), offset);
        const V q3 =
            sub_i8(bit_or(shr_u8<4>(a), shl4_small(bit_and(shr_u8<4>(h), two_bits))), offset);
        const V q4 = sub_i8(bit_or(shr_u8<4>(c), shl4_small(shr_u8<6>(h))), offset);
        const int g = l / 16;
        sumi = add_i32(sumi, mul_i32(dot_i8(q1, load(xq + l)), splat_i32(sc[g])));
        sumi = add_i32(sumi, mul_i32(dot_i8(q2, load(xq + 32 + l)), splat_i32(sc[g + 2])));
        sumi = add_i32(sumi, mul_i32(dot_i8(q3, load(xq + 64 + l)), splat_i32(sc[g + 4])));
        sumi = add_i32(sumi, mul_i32(dot_i8(q4, load(xq + 96 + l)), splat_i32(sc[g + 6])));
      }
    }
    acc = mul_add_f32(to_f32(sumi), splat_f32(y[b].d * half(w + 208)), acc);
  }
  return sum_f32(acc);
}

}  // namespace

DotFn simd_dot(TensorType type) {
  switch (type) {
    case TensorType::F32:
      return dot_f32;
    case TensorType::Q8_0:
      return dot_q8_0;
    case TensorType::Q4_0:
      return dot_q4_0;
    case TensorType::Q4_K:
      return dot_q4_k;
    case TensorType::Q6_K:
      return dot_q6_k;
    default:
      return reference_dot(type);
  }
}

}  // namespace pipit::kernels
