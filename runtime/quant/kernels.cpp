#include "quant/kernels.h"

#include <cstring>
#include <vector>

#include <xsimd/xsimd.hpp>

namespace pipit::kernels {
namespace {

float dot_f32(const float* a, const float* b, int64_t n) {
  using Batch = xsimd::batch<float>;
  constexpr int64_t kWidth = static_cast<int64_t>(Batch::size);
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

void matmul(const Matrix& w, const float* x, int n_tokens, float* y) {
  thread_local std::vector<float> row;
  if (w.type != TensorType::F32) row.resize(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* wr;
    if (w.type == TensorType::F32) {
      wr = reinterpret_cast<const float*>(w.row(r));
    } else {
      dequantize_row(w.type, w.row(r), row.data(), w.cols);
      wr = row.data();
    }
    for (int t = 0; t < n_tokens; ++t) y[t * w.rows + r] = dot_f32(wr, x + t * w.cols, w.cols);
  }
}

}  // namespace pipit::kernels
