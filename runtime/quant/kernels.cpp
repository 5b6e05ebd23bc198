#include "quant/kernels.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/f16.h"
#include "core/thread_pool.h"
#include "quant/activations.h"
#include "quant/dot.h"

namespace pipit::kernels {

void matmul(const Matrix& w, const float* x, int n_tokens, float* y) {
  const DotFn dot = simd_dot(w.type);
  const int64_t cols = w.cols;
  // Each token's activations are converted once into the form the weight type multiplies
  // with, then reused by every row.
  thread_local std::vector<uint8_t> converted;
  size_t stride = 0;
  const void* act = x;
  switch (activation_format(w.type)) {
    case ActivationFormat::kF32:
      stride = cols * sizeof(float);
      break;
    case ActivationFormat::kF16: {
      stride = cols * sizeof(float);
      converted.resize(stride * n_tokens);
      auto* h = reinterpret_cast<float*>(converted.data());
      for (int64_t i = 0; i < cols * n_tokens; ++i) h[i] = f16_to_f32(f32_to_f16(x[i]));
      act = h;
      break;
    }
    case ActivationFormat::kQ8_0:
      stride = cols / 32 * sizeof(BlockQ8_0);
      converted.resize(stride * n_tokens);
      for (int t = 0; t < n_tokens; ++t) {
        quantize_q8_0(x + t * cols, reinterpret_cast<BlockQ8_0*>(converted.data() + t * stride),
                      cols);
      }
      act = converted.data();
      break;
    case ActivationFormat::kQ8_1:
      stride = cols / 32 * sizeof(BlockQ8_1);
      converted.resize(stride * n_tokens);
      for (int t = 0; t < n_tokens; ++t) {
        quantize_q8_1(x + t * cols, reinterpret_cast<BlockQ8_1*>(converted.data() + t * stride),
                      cols);
      }
      act = converted.data();
      break;
    case ActivationFormat::kQ8_K:
      stride = cols / 256 * sizeof(BlockQ8_K);
      converted.resize(stride * n_tokens);
      for (int t = 0; t < n_tokens; ++t) {
        quantize_q8_K(x + t * cols, reinterpret_cast<BlockQ8_K*>(converted.data() + t * stride),
                      cols);
      }
      act = converted.data();
      break;
  }
  const auto* act_bytes = static_cast<const uint8_t*>(act);
  const MultiDotFn multi = simd_multi_dot(w.type);
  const auto rows = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (multi) {
        // Up to four tokens share each unpacked weight block.
        float out[4];
        for (int t = 0; t < n_tokens; t += 4) {
          const int count = std::min(4, n_tokens - t);
          multi(w.row(r), act_bytes + t * stride, stride, count, cols, out);
          for (int k = 0; k < count; ++k) y[(t + k) * w.rows + r] = out[k];
        }
      } else {
        for (int t = 0; t < n_tokens; ++t) {
          y[t * w.rows + r] = dot(w.row(r), act_bytes + t * stride, cols);
        }
      }
    }
  };
  if (ThreadPool* pool = ThreadPool::current(); pool && pool->size() > 1) {
    pool->parallel_for(w.rows, rows);
  } else {
    rows(0, w.rows);
  }
}

}  // namespace pipit::kernels
