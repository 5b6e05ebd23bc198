#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/f16.h"
#include "quant/kernels.h"

namespace pipit {
namespace {

// Block layouts as ggml stores them: a little-endian f16 scale, then the quants.
constexpr int kQ8Block = 32;
constexpr int kQ8Bytes = 2 + kQ8Block;
constexpr int kQ4Block = 32;
constexpr int kQ4Bytes = 2 + kQ4Block / 2;
constexpr int kQ5Block = 32;
constexpr int kQ5Bytes = 2 + 4 + kQ5Block / 2;
// K-quant super-blocks of 256 values.
constexpr int kQK = 256;
constexpr int kQ4KBytes = 2 + 2 + 12 + kQK / 2;
constexpr int kQ6KBytes = kQK / 2 + kQK / 4 + kQK / 16 + 2;

void store_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  p[0] = static_cast<uint8_t>(h & 0xFF);
  p[1] = static_cast<uint8_t>(h >> 8);
}

float load_f16(const uint8_t* p) {
  return f16_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8)));
}

// The value a scale takes once stored as f16: later steps quantize against what the reader
// will see, not the exact float.
float f16_rounded(float v) {
  return f16_to_f32(f32_to_f16(v));
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
    case TensorType::Q5_0:
      block = kQ5Block;
      break;
    case TensorType::Q4_K:
    case TensorType::Q6_K:
      block = kQK;
      break;
    default:
      fail(ErrorKind::kUnsupported, std::string(what) + " does not support tensor type " +
                                        type_name(static_cast<uint32_t>(type)) +
                                        " (only F32, F16, Q8_0, Q4_0, Q5_0, Q4_K and Q6_K)");
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

// Q5_0: like Q4_0 with a fifth bit per value kept in a 32-bit mask (bit j for value j), and
// ggml's rounding, so the bytes match llama-quantize's.
void quantize_q5_0(const float* x, uint8_t* out, int64_t nblocks) {
  constexpr int kHalf = kQ5Block / 2;
  for (int64_t b = 0; b < nblocks; ++b, x += kQ5Block, out += kQ5Bytes) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQ5Block; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(out, d);
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[j + kHalf] * id;
      const int q0 = std::min(31, static_cast<int>(static_cast<int8_t>(x0 + 16.5f)));
      const int q1 = std::min(31, static_cast<int>(static_cast<int8_t>(x1 + 16.5f)));
      out[6 + j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>(q0 >> 4) << j;
      qh |= static_cast<uint32_t>(q1 >> 4) << (j + kHalf);
    }
    for (int k = 0; k < 4; ++k) out[2 + k] = static_cast<uint8_t>(qh >> (8 * k));
  }
}

// Q4_K: eight 32-value sub-blocks per super-block, each value = d*sc*q - dmin*m with q in
// 0..15 and 6-bit sc, m; d and dmin are the super-block's f16 scales. Not llama.cpp's
// search (its bytes differ), but a correct encoding of the format: per sub-block the better
// of a min/max fit and a least-squares refit of (scale, min) to the min/max assignment.
struct Affine {
  float scale = 0.0f;  // step between levels
  float min = 0.0f;    // subtracted: value = scale * q - min, so min >= 0
};

float affine_error(const float* x, int n, Affine a, int levels) {
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float q = a.scale > 0.0f
                        ? std::clamp(std::round((x[i] + a.min) / a.scale), 0.0f, levels - 1.0f)
                        : 0.0f;
    const float e = a.scale * q - a.min - x[i];
    err += e * e;
  }
  return err;
}

Affine fit_affine(const float* x, int n, int levels) {
  // The range always includes 0, so the min stays non-negative as the format requires.
  float lo = 0.0f, hi = 0.0f;
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  Affine best{(hi - lo) / (levels - 1), -lo};
  if (best.scale == 0.0f) return best;
  // Least squares x ~ scale*q + offset over the levels the min/max fit assigns.
  double sq = 0, sx = 0, sqq = 0, sqx = 0;
  for (int i = 0; i < n; ++i) {
    const double q = std::clamp(std::round((x[i] - lo) / best.scale), 0.0f, levels - 1.0f);
    sq += q;
    sx += x[i];
    sqq += q * q;
    sqx += q * x[i];
  }
  const double det = n * sqq - sq * sq;
  if (det > 0) {
    const double scale = (n * sqx - sq * sx) / det;
    const double offset = (sx - scale * sq) / n;
    const Affine refit{static_cast<float>(scale), static_cast<float>(-offset)};
    if (refit.scale > 0.0f && refit.min >= 0.0f &&
        affine_error(x, n, refit, levels) < affine_error(x, n, best, levels)) {
      best = refit;
    }
  }
  return best;
}

uint8_t to_6bit(float v, float unit) {
  return unit > 0.0f ? static_cast<uint8_t>(std::clamp(std::round(v / unit), 0.0f, 63.0f)) : 0;
}

void quantize_q4_k(const float* x, uint8_t* out, int64_t nblocks) {
  constexpr int kSub = 32;
  for (int64_t b = 0; b < nblocks; ++b, x += kQK, out += kQ4KBytes) {
    Affine fits[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; ++s) {
      fits[s] = fit_affine(x + s * kSub, kSub, 16);
      max_scale = std::max(max_scale, fits[s].scale);
      max_min = std::max(max_min, fits[s].min);
    }
    const float d = f16_rounded(max_scale / 63.0f);
    const float dmin = f16_rounded(max_min / 63.0f);
    store_f16(out, d);
    store_f16(out + 2, dmin);
    uint8_t ls[8], lm[8];
    for (int s = 0; s < 8; ++s) {
      ls[s] = to_6bit(fits[s].scale, d);
      lm[s] = to_6bit(fits[s].min, dmin);
    }
    // Sub-blocks 0..3 keep their 6-bit scale and min in bytes 0..3 and 4..7; 4..7 split
    // theirs into low nibbles (bytes 8..11) and top two bits (bits 6-7 of bytes 0..7).
    uint8_t* sc = out + 4;
    for (int j = 0; j < 4; ++j) {
      sc[j] = static_cast<uint8_t>(ls[j] | ((ls[j + 4] >> 4) << 6));
      sc[j + 4] = static_cast<uint8_t>(lm[j] | ((lm[j + 4] >> 4) << 6));
      sc[j + 8] = static_cast<uint8_t>((ls[j + 4] & 0x0F) | ((lm[j + 4] & 0x0F) << 4));
    }
    uint8_t q[kQK];
    for (int s = 0; s < 8; ++s) {
      const float scale = d * ls[s], min = dmin * lm[s];
      for (int i = s * kSub; i < (s + 1) * kSub; ++i) {
        q[i] = scale > 0.0f
                   ? static_cast<uint8_t>(std::clamp(std::round((x[i] + min) / scale), 0.0f, 15.0f))
                   : 0;
      }
    }
    // Each 32 bytes hold a 64-value chunk: values 0..31 in the low nibbles, 32..63 high.
    uint8_t* qs = out + 16;
    for (int c = 0; c < kQK / 64; ++c) {
      for (int l = 0; l < 32; ++l) {
        qs[c * 32 + l] = static_cast<uint8_t>(q[c * 64 + l] | (q[c * 64 + 32 + l] << 4));
      }
    }
  }
}

// Q6_K: sixteen 16-value sub-blocks, value = d * sc * (q - 32) with q in 0..63 and a
// signed 8-bit sc. Each sub-block maps its value of largest magnitude to -32 exactly (the
// extra negative level), like Q4_0 does.
void quantize_q6_k(const float* x, uint8_t* out, int64_t nblocks) {
  constexpr int kSub = 16;
  for (int64_t b = 0; b < nblocks; ++b, x += kQK, out += kQ6KBytes) {
    float scales[16];
    float max_abs_scale = 0.0f;
    for (int s = 0; s < 16; ++s) {
      float amax = 0.0f, max = 0.0f;
      for (int i = s * kSub; i < (s + 1) * kSub; ++i) {
        if (std::fabs(x[i]) > amax) {
          amax = std::fabs(x[i]);
          max = x[i];
        }
      }
      scales[s] = max / -32.0f;
      max_abs_scale = std::max(max_abs_scale, std::fabs(scales[s]));
    }
    const float d = f16_rounded(max_abs_scale / 127.0f);
    int8_t ls[16];
    for (int s = 0; s < 16; ++s) {
      ls[s] = d > 0.0f ? static_cast<int8_t>(std::clamp(std::round(scales[s] / d), -127.0f, 127.0f))
                       : 0;
    }
    uint8_t q[kQK];
    for (int s = 0; s < 16; ++s) {
      const float step = d * ls[s];
      for (int i = s * kSub; i < (s + 1) * kSub; ++i) {
        const float v = step != 0.0f ? std::clamp(std::round(x[i] / step), -32.0f, 31.0f) : 0.0f;
        q[i] = static_cast<uint8_t>(static_cast<int>(v) + 32);
      }
    }
    // Per 128-value chunk: ql holds low nibbles (values l and l+64 share a byte, as do l+32
    // and l+96), qh the top two bits of values l, l+32, l+64, l+96 in one byte.
    uint8_t* ql = out;
    uint8_t* qh = out + kQK / 2;
    for (int c = 0; c < kQK / 128; ++c) {
      const uint8_t* v = q + c * 128;
      for (int l = 0; l < 32; ++l) {
        ql[c * 64 + l] = static_cast<uint8_t>((v[l] & 0x0F) | ((v[l + 64] & 0x0F) << 4));
        ql[c * 64 + l + 32] = static_cast<uint8_t>((v[l + 32] & 0x0F) | ((v[l + 96] & 0x0F) << 4));
        qh[c * 32 + l] = static_cast<uint8_t>((v[l] >> 4) | ((v[l + 32] >> 4) << 2) |
                                              ((v[l + 64] >> 4) << 4) | ((v[l + 96] >> 4) << 6));
      }
    }
    std::memcpy(out + kQK / 2 + kQK / 4, ls, 16);
    store_f16(out + kQK / 2 + kQK / 4 + 16, d);
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
    case TensorType::Q5_0:
      quantize_q5_0(src, out, n / block);
      break;
    case TensorType::Q4_K:
      quantize_q4_k(src, out, n / block);
      break;
    case TensorType::Q6_K:
      quantize_q6_k(src, out, n / block);
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
    case TensorType::Q5_0:
    case TensorType::Q4_K:
    case TensorType::Q6_K:
      // One decoder for these layouts: the kernels' (itself checked against llama.cpp).
      kernels::dequantize_row(type, in, dst, n);
      break;
    default:
      break;
  }
}

}  // namespace pipit
