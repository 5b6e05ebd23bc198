#include "quant/kernels.h"

#include <cstring>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "core/f16.h"

namespace pipit::kernels {
namespace {

constexpr int kQ8_0BlockBytes = 34;  // f16 scale, 32 x int8
constexpr int kQ4_0BlockBytes = 18;  // f16 scale, 16 bytes of nibble pairs
constexpr int kBlock = 32;

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void dequantize_q8_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += kQ8_0BlockBytes, dst += kBlock) {
    const float d = f16_to_f32(load_u16(src));
    const int8_t* q = reinterpret_cast<const int8_t*>(src + 2);
    for (int i = 0; i < kBlock; ++i) dst[i] = d * static_cast<float>(q[i]);
  }
}

void dequantize_q4_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += kQ4_0BlockBytes, dst += kBlock) {
    const float d = f16_to_f32(load_u16(src));
    const uint8_t* q = src + 2;
    // Low nibbles hold the first half of the block, high nibbles the second.
    for (int i = 0; i < kBlock / 2; ++i) {
      dst[i] = d * static_cast<float>((q[i] & 0x0F) - 8);
      dst[i + kBlock / 2] = d * static_cast<float>((q[i] >> 4) - 8);
    }
  }
}

void dequantize_f16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(src + 2 * i));
}

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

bool is_supported(TensorType type) {
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::Q8_0:
    case TensorType::Q4_0:
      return true;
    default:
      return false;
  }
}

void dequantize_row(TensorType type, const uint8_t* src, float* dst, int64_t n) {
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::F16:
      dequantize_f16(src, dst, n);
      return;
    case TensorType::Q8_0:
      dequantize_q8_0(src, dst, n);
      return;
    case TensorType::Q4_0:
      dequantize_q4_0(src, dst, n);
      return;
    default:
      break;
  }
  // Model loading refuses unsupported types, so reaching this is a bug.
  std::abort();
}

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
