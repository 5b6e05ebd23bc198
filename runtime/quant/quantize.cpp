#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/f16.h"

namespace pipit {
namespace {

// Block layouts as ggml stores them: a little-endian f16 scale, then the quants.
constexpr int kQ8Block = 32;
constexpr int kQ8Bytes = 2 + kQ8Block;
constexpr int kQ4Block = 32;
constexpr int kQ4Bytes = 2 + kQ4Block / 2;

void store_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  p[0] = static_cast<uint8_t>(h & 0xFF);
  p[1] = static_cast<uint8_t>(h >> 8);
}

float load_f16(const uint8_t* p) {
  return f16_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8)));
}

// Returns the block size of a type this file implements, or throws.
int64_t checked_block(TensorType type, int64_t n, const char* what) {
  int64_t block = 0;
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
      block = 1;
      break;
    case TensorType::Q8_0:
      block = kQ8Block;
      break;
    case TensorType::Q4_0:
      block = kQ4Block;
      break;
    default:
      fail(ErrorKind::kUnsupported, std::string(what) + " does not support tensor type " +
                                        type_name(static_cast<uint32_t>(type)) +
                                        " (only F32, F16, Q8_0 and Q4_0)");
  }
  if (n < 0 || n % block != 0) {
    fail(ErrorKind::kInvalidArgument, std::string(what) + ": " + std::to_string(n) + " values of " +
                                          type_name(static_cast<uint32_t>(type)) +
                                          " are not a whole number of " + std::to_string(block) +
                                          "-value blocks");
  }
  return block;
}

void quantize_q8_0(const float* x, uint8_t* out, int64_t nblocks) {
  for (int64_t b = 0; b < nblocks; ++b, x += kQ8Block, out += kQ8Bytes) {
    float amax = 0.0f;
    for (int j = 0; j < kQ8Block; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    // ggml multiplies by the reciprocal rather than dividing; doing the same keeps the
    // rounding of halfway cases, and so the bytes, identical to llama-quantize's.
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(out, d);
    for (int j = 0; j < kQ8Block; ++j) {
      out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id)));
    }
  }
}

// Truncating v+8.5 rounds to nearest; the clamp catches the +8 that only the extreme of
// opposite sign can reach.
int nibble(float v) {
  const float shifted = v + 8.5f;
  return std::min(15, static_cast<int>(static_cast<int8_t>(shifted)));
}

void quantize_q4_0(const float* x, uint8_t* out, int64_t nblocks) {
  constexpr int kHalf = kQ4Block / 2;
  for (int64_t b = 0; b < nblocks; ++b, x += kQ4Block, out += kQ4Bytes) {
    // The signed value of largest magnitude maps to -8 exactly, which uses the one extra
    // negative level of a 4-bit signed range.
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQ4Block; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(out, d);
    for (int j = 0; j < kHalf; ++j) {
      // Separate statements keep a compiler from fusing multiply and add into an FMA,
      // whose different rounding would change bytes.
      const float x0 = x[j] * id;
      const float x1 = x[j + kHalf] * id;
      out[2 + j] = static_cast<uint8_t>(nibble(x0) | (nibble(x1) << 4));
    }
  }
}

void dequantize_q8_0(const uint8_t* in, float* y, int64_t nblocks) {
  for (int64_t b = 0; b < nblocks; ++b, in += kQ8Bytes, y += kQ8Block) {
    const float d = load_f16(in);
    for (int j = 0; j < kQ8Block; ++j) y[j] = static_cast<int8_t>(in[2 + j]) * d;
  }
}

void dequantize_q4_0(const uint8_t* in, float* y, int64_t nblocks) {
  constexpr int kHalf = kQ4Block / 2;
  for (int64_t b = 0; b < nblocks; ++b, in += kQ4Bytes, y += kQ4Block) {
    const float d = load_f16(in);
    for (int j = 0; j < kHalf; ++j) {
      y[j] = static_cast<float>((in[2 + j] & 0x0F) - 8) * d;
      y[j + kHalf] = static_cast<float>((in[2 + j] >> 4) - 8) * d;
    }
  }
}

}  // namespace

void quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
  const int64_t block = checked_block(type, n, "quantize_row");
  auto* out = static_cast<uint8_t*>(dst);
  switch (type) {
    case TensorType::F32:
      std::memcpy(out, src, static_cast<size_t>(n) * 4);
      break;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) store_f16(out + 2 * i, src[i]);
      break;
    case TensorType::Q8_0:
      quantize_q8_0(src, out, n / block);
      break;
    case TensorType::Q4_0:
      quantize_q4_0(src, out, n / block);
      break;
    default:
      break;  // checked_block has rejected every other type
  }
}

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  const int64_t block = checked_block(type, n, "dequantize_row");
  const auto* in = static_cast<const uint8_t*>(src);
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, in, static_cast<size_t>(n) * 4);
      break;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_f16(in + 2 * i);
      break;
    case TensorType::Q8_0:
      dequantize_q8_0(in, dst, n / block);
      break;
    case TensorType::Q4_0:
      dequantize_q4_0(in, dst, n / block);
      break;
    default:
      break;
  }
}

}  // namespace pipit
