// Row dequantization for every type the kernels accept. Each block layout follows the GGUF
// files llama.cpp writes; the arithmetic order matches its reference dequantizers, so the
// values are bit-identical to what llama.cpp's "dequantized" reference models hold.
#include <cstdlib>
#include <cstring>

#include "core/f16.h"
#include "quant/k_scales.h"
#include "quant/kernels.h"

namespace pipit::kernels {
namespace {

constexpr int kQK = 32;    // values per block of the legacy types
constexpr int kQKK = 256;  // values per K-quant super-block

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// ---- legacy 32-value blocks: low nibbles are values 0..15, high nibbles 16..31 ----

void q8_0(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i, b += 34, y += kQK) {
    const float d = half(b);
    const auto* q = reinterpret_cast<const int8_t*>(b + 2);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(q[j]) * d;
  }
}

void q4_0(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i, b += 18, y += kQK) {
    const float d = half(b);
    const uint8_t* q = b + 2;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>((q[j] & 0x0F) - 8) * d;
      y[j + kQK / 2] = static_cast<float>((q[j] >> 4) - 8) * d;
    }
  }
}

void q4_1(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i, b += 20, y += kQK) {
    const float d = half(b), m = half(b + 2);
    const uint8_t* q = b + 4;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>(q[j] & 0x0F) * d + m;
      y[j + kQK / 2] = static_cast<float>(q[j] >> 4) * d + m;
    }
  }
}

// Q5: a fifth bit per value from a 32-bit mask (bit j belongs to value j).
void q5_0(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i, b += 22, y += kQK) {
    const float d = half(b);
    uint32_t qh;
    std::memcpy(&qh, b + 2, 4);
    const uint8_t* q = b + 6;
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (q[j] & 0x0F) | (((qh >> j) & 1) << 4);
      const int hi = (q[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      y[j] = static_cast<float>(lo - 16) * d;
      y[j + kQK / 2] = static_cast<float>(hi - 16) * d;
    }
  }
}

void q5_1(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i, b += 24, y += kQK) {
    const float d = half(b), m = half(b + 2);
    uint32_t qh;
    std::memcpy(&qh, b + 4, 4);
    const uint8_t* q = b + 8;
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (q[j] & 0x0F) | (((qh >> j) & 1) << 4);
      const int hi = (q[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      y[j] = static_cast<float>(lo) * d + m;
      y[j + kQK / 2] = static_cast<float>(hi) * d + m;
    }
  }
}

// ---- K-quants: 256-value super-blocks of 16 or 8 sub-blocks with their own scales ----

void q2_k(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i, b += 84) {
    const uint8_t* scales = b;
    const uint8_t* q = b + 16;
    const float d = half(b + 80), dmin = half(b + 82);
    int is = 0;
    for (int chunk = 0; chunk < kQKK; chunk += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half_chunk = 0; half_chunk < 32; half_chunk += 16) {
          const uint8_t sc = scales[is++];
          const float dl = d * static_cast<float>(sc & 0x0F);
          const float ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) {
            *y++ = dl * static_cast<float>((q[l + half_chunk] >> shift) & 3) - ml;
          }
        }
      }
    }
  }
}

void q3_k(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i, b += 110) {
    const uint8_t* hmask = b;
    const uint8_t* q = b + 32;
    const float d = half(b + 108);
    int scales[16];
    unpack_q3_k_scales(b + 96, scales);
    int is = 0;
    uint8_t m = 1;
    for (int chunk = 0; chunk < kQKK; chunk += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int half_chunk = 0; half_chunk < 32; half_chunk += 16) {
          const float dl = d * static_cast<float>(scales[is++]);
          for (int l = half_chunk; l < half_chunk + 16; ++l) {
            const int v = ((q[l] >> shift) & 3) - ((hmask[l] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

void q4_k(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i, b += 144) {
    const float d = half(b), dmin = half(b + 2);
    int scale[8], min[8];
    unpack_k4_scales(b + 4, scale, min);
    const uint8_t* q = b + 16;
    for (int j = 0, is = 0; j < kQKK; j += 64, q += 32, is += 2) {
      const float d1 = d * static_cast<float>(scale[is]), m1 = dmin * static_cast<float>(min[is]);
      const float d2 = d * static_cast<float>(scale[is + 1]);
      const float m2 = dmin * static_cast<float>(min[is + 1]);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void q5_k(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i, b += 176) {
    const float d = half(b), dmin = half(b + 2);
    int scale[8], min[8];
    unpack_k4_scales(b + 4, scale, min);
    const uint8_t* qh = b + 16;
    const uint8_t* ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < kQKK; j += 64, ql += 32, is += 2, u1 <<= 2, u2 <<= 2) {
      const float d1 = d * static_cast<float>(scale[is]), m1 = dmin * static_cast<float>(min[is]);
      const float d2 = d * static_cast<float>(scale[is + 1]);
      const float m2 = dmin * static_cast<float>(min[is + 1]);
      for (int l = 0; l < 32; ++l) {
        *y++ = d1 * static_cast<float>((ql[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
      }
    }
  }
}

void q6_k(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQKK; ++i, b += 210) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = half(b + 208);
    for (int chunk = 0; chunk < kQKK; chunk += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void f16(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = half(b + 2 * i);
}

void bf16(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, b + 2 * i, 2);
    y[i] = bits_float(static_cast<uint32_t>(h) << 16);
  }
}

}  // namespace

bool is_supported(TensorType type) {
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
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
      f16(src, dst, n);
      return;
    case TensorType::BF16:
      bf16(src, dst, n);
      return;
    case TensorType::Q8_0:
      q8_0(src, dst, n);
      return;
    case TensorType::Q4_0:
      q4_0(src, dst, n);
      return;
    case TensorType::Q4_1:
      q4_1(src, dst, n);
      return;
    case TensorType::Q5_0:
      q5_0(src, dst, n);
      return;
    case TensorType::Q5_1:
      q5_1(src, dst, n);
      return;
    case TensorType::Q2_K:
      q2_k(src, dst, n);
      return;
    case TensorType::Q3_K:
      q3_k(src, dst, n);
      return;
    case TensorType::Q4_K:
      q4_k(src, dst, n);
      return;
    case TensorType::Q5_K:
      q5_k(src, dst, n);
      return;
    case TensorType::Q6_K:
      q6_k(src, dst, n);
      return;
    default:
      break;
  }
  // Model loading refuses every other type, so reaching this is a bug.
  std::abort();
}

}  // namespace pipit::kernels
