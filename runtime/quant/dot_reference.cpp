// Scalar dot products: integer sums per block scaled in float, as llama.cpp computes them.
#include <cstdlib>
#include <cstring>

#include "core/f16.h"
#include "quant/dot.h"
#include "quant/k_scales.h"

namespace pipit::kernels {
namespace {

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

float dot_f32(const uint8_t* w, const void* x, int64_t n) {
  const float* a = reinterpret_cast<const float*>(w);
  const float* b = static_cast<const float*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float dot_f16(const uint8_t* w, const void* x, int64_t n) {
  const float* b = static_cast<const float*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += half(w + 2 * i) * b[i];
  return sum;
}

float dot_bf16(const uint8_t* w, const void* x, int64_t n) {
  const float* b = static_cast<const float*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, w + 2 * i, 2);
    sum += bits_float(static_cast<uint32_t>(h) << 16) * b[i];
  }
  return sum;
}

// ---- legacy 32-value blocks ----

// The 32 weights of a 4- or 5-bit block as integers, before any offset: low nibbles are
// values 0..15, high nibbles 16..31, and Q5's fifth bits come from a 32-bit mask.
void nibbles(const uint8_t* qs, const uint8_t* qh, int* v) {
  uint32_t high = 0;
  if (qh) std::memcpy(&high, qh, 4);
  for (int j = 0; j < 16; ++j) {
    v[j] = (qs[j] & 0x0F) | (qh ? static_cast<int>((high >> j) & 1) << 4 : 0);
    v[j + 16] = (qs[j] >> 4) | (qh ? static_cast<int>((high >> (j + 16)) & 1) << 4 : 0);
  }
}

float dot_q8_0(const uint8_t* w, const void* x, int64_t n) {
  const auto* y = static_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b, w += 34) {
    const auto* q = reinterpret_cast<const int8_t*>(w + 2);
    int sumi = 0;
    for (int j = 0; j < 32; ++j) sumi += q[j] * y[b].qs[j];
    sum += static_cast<float>(sumi) * (half(w) * y[b].d);
  }
  return sum;
}

template <int kBlockBytes, bool kHasMin, bool kFiveBits>
float dot_legacy(const uint8_t* w, const void* x, int64_t n) {
  float sum = 0.0f;
  int v[32];
  for (int64_t b = 0; b < n / 32; ++b, w += kBlockBytes) {
    const int header = kHasMin ? 4 : 2;
    nibbles(w + header + (kFiveBits ? 4 : 0), kFiveBits ? w + header : nullptr, v);
    const int offset = kHasMin ? 0 : (kFiveBits ? 16 : 8);
    if constexpr (kHasMin) {
      const BlockQ8_1& y = static_cast<const BlockQ8_1*>(x)[b];
      int sumi = 0;
      for (int j = 0; j < 32; ++j) sumi += v[j] * y.qs[j];
      sum += (half(w) * y.d) * static_cast<float>(sumi) + half(w + 2) * y.s;
    } else {
      const BlockQ8_0& y = static_cast<const BlockQ8_0*>(x)[b];
      int sumi = 0;
      for (int j = 0; j < 32; ++j) sumi += (v[j] - offset) * y.qs[j];
      sum += static_cast<float>(sumi) * (half(w) * y.d);
    }
  }
  return sum;
}

// ---- K-quants: every type unpacks to 16 groups of 16 integers with an integer scale and
// min per group, and float super-scales d and dmin: w = d * scale * q - dmin * min ----

struct UnpackedK {
  int8_t q[256];
  int scale[16];
  int min[16];
  float d, dmin;
};

void unpack_q2_k(const uint8_t* b, UnpackedK& u) {
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  u.d = half(b + 80);
  u.dmin = half(b + 82);
  int out = 0, is = 0;
  for (int chunk = 0; chunk < 2; ++chunk, q += 32) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half_chunk = 0; half_chunk < 32; half_chunk += 16, ++is) {
        u.scale[is] = scales[is] & 0x0F;
        u.min[is] = scales[is] >> 4;
        for (int l = 0; l < 16; ++l) u.q[out++] = (q[half_chunk + l] >> shift) & 3;
      }
    }
  }
}

void unpack_q3_k(const uint8_t* b, UnpackedK& u) {
  const uint8_t* hmask = b;
  const uint8_t* q = b + 32;
  u.d = half(b + 108);
  u.dmin = 0.0f;
  int scales[16];
  unpack_q3_k_scales(b + 96, scales);
  int out = 0, is = 0;
  uint8_t m = 1;
  for (int chunk = 0; chunk < 2; ++chunk, q += 32) {
    for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
      for (int half_chunk = 0; half_chunk < 32; half_chunk += 16, ++is) {
        u.scale[is] = scales[is];
        u.min[is] = 0;
        for (int l = half_chunk; l < half_chunk + 16; ++l) {
          u.q[out++] = static_cast<int8_t>(((q[l] >> shift) & 3) - ((hmask[l] & m) ? 0 : 4));
        }
      }
    }
  }
}

template <bool kFiveBits>
void unpack_q45_k(const uint8_t* b, UnpackedK& u) {
  u.d = half(b);
  u.dmin = half(b + 2);
  int scale[8], min[8];
  unpack_k4_scales(b + 4, scale, min);
  const uint8_t* qh = b + 16;
  const uint8_t* ql = kFiveBits ? b + 48 : b + 16;
  int out = 0;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < 4; ++j, ql += 32, u1 <<= 2, u2 <<= 2) {
    u.scale[4 * j] = u.scale[4 * j + 1] = scale[2 * j];
    u.min[4 * j] = u.min[4 * j + 1] = min[2 * j];
    for (int l = 0; l < 32; ++l) {
      u.q[out++] = static_cast<int8_t>((ql[l] & 0x0F) + (kFiveBits && (qh[l] & u1) ? 16 : 0));
    }
    u.scale[4 * j + 2] = u.scale[4 * j + 3] = scale[2 * j + 1];
    u.min[4 * j + 2] = u.min[4 * j + 3] = min[2 * j + 1];
    for (int l = 0; l < 32; ++l) {
      u.q[out++] = static_cast<int8_t>((ql[l] >> 4) + (kFiveBits && (qh[l] & u2) ? 16 : 0));
    }
  }
}

void unpack_q6_k(const uint8_t* b, UnpackedK& u) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  u.d = half(b + 208);
  u.dmin = 0.0f;
  for (int chunk = 0; chunk < 2; ++chunk, ql += 64, qh += 32, sc += 8) {
    int8_t* q = u.q + chunk * 128;
    for (int l = 0; l < 32; ++l) {
      q[l] = static_cast<int8_t>(((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32);
      q[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32);
      q[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      q[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
    for (int g = 0; g < 8; ++g) {
      u.scale[chunk * 8 + g] = sc[g];
      u.min[chunk * 8 + g] = 0;
    }
  }
}

template <void (*kUnpack)(const uint8_t*, UnpackedK&), int kBlockBytes>
float dot_k(const uint8_t* w, const void* x, int64_t n) {
  const auto* y = static_cast<const BlockQ8_K*>(x);
  float sum = 0.0f;
  UnpackedK u;
  for (int64_t b = 0; b < n / 256; ++b, w += kBlockBytes) {
    kUnpack(w, u);
    int isum = 0, imin = 0;
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += u.q[g * 16 + l] * y[b].qs[g * 16 + l];
      isum += u.scale[g] * s;
      imin += u.min[g] * y[b].bsums[g];
    }
    sum += (y[b].d * u.d) * static_cast<float>(isum) - (y[b].d * u.dmin) * static_cast<float>(imin);
  }
  return sum;
}

}  // namespace

DotFn reference_dot(TensorType type) {
  switch (type) {
    case TensorType::F32:
      return dot_f32;
    case TensorType::F16:
      return dot_f16;
    case TensorType::BF16:
      return dot_bf16;
    case TensorType::Q8_0:
      return dot_q8_0;
    case TensorType::Q4_0:
      return dot_legacy<18, false, false>;
    case TensorType::Q4_1:
      return dot_legacy<20, true, false>;
    case TensorType::Q5_0:
      return dot_legacy<22, false, true>;
    case TensorType::Q5_1:
      return dot_legacy<24, true, true>;
    case TensorType::Q2_K:
      return dot_k<unpack_q2_k, 84>;
    case TensorType::Q3_K:
      return dot_k<unpack_q3_k, 110>;
    case TensorType::Q4_K:
      return dot_k<unpack_q45_k<false>, 144>;
    case TensorType::Q5_K:
      return dot_k<unpack_q45_k<true>, 176>;
    case TensorType::Q6_K:
      return dot_k<unpack_q6_k, 210>;
    default:
      break;
  }
  // Model loading refuses every other type, so reaching this is a bug.
  std::abort();
}

}  // namespace pipit::kernels
