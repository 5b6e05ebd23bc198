#include "quant/activations.h"

#include <cmath>
#include <cstring>

#include "core/f16.h"

namespace pipit::kernels {
namespace {

// Round half to even through the float adder, exactly as llama.cpp's nearest_int does.
int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007FFFFF) - 0x00400000;
}

// Rounds a value already scaled into [-127, 127]. NaN (activations of a model whose weights
// hold NaN or infinity) becomes 0 instead of an undefined conversion (found by fuzz_gguf_model).
int8_t round_to_q8(float v) {
  const float r = std::nearbyint(v);
  return r >= -128.0f && r <= 127.0f ? static_cast<int8_t>(r) : int8_t{0};
}

float through_f16(float v) {
  return f16_to_f32(f32_to_f16(v));
}

// The shared part of Q8_0 and Q8_1: returns the f16-rounded scale; fills q.
float quantize_block32(const float* x, int8_t* q) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  for (int j = 0; j < 32; ++j) q[j] = round_to_q8(x[j] * id);
  return through_f16(d);
}

}  // namespace

ActivationFormat activation_format(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::F32:
    case TensorType::BF16:
      return ActivationFormat::kF32;
    case TensorType::F16:
      return ActivationFormat::kF16;
    case TensorType::Q4_0:
    case TensorType::Q5_0:
    case TensorType::Q8_0:
      return ActivationFormat::kQ8_0;
    case TensorType::Q4_1:
    case TensorType::Q5_1:
      return ActivationFormat::kQ8_1;
    default:
      return ActivationFormat::kQ8_K;
  }
}

void quantize_q8_0(const float* x, BlockQ8_0* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    out[b].d = quantize_block32(x + b * 32, out[b].qs);
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += out[b].qs[j];
    out[b].sum = sum;
  }
}

void quantize_q8_1(const float* x, BlockQ8_1* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      out[b].qs[j] = round_to_q8(xb[j] * id);
      sum += out[b].qs[j];
    }
    out[b].d = through_f16(d);
    out[b].s = through_f16(d * static_cast<float>(sum));
  }
}

void quantize_q8_K(const float* x, BlockQ8_K* out, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* xb = x + b * 256;
    BlockQ8_K& y = out[b];
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 256; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    if (amax == 0.0f) {
      std::memset(&y, 0, sizeof y);
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < 256; ++j) {
      y.qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * xb[j])));
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += y.qs[g * 16 + j];
      y.bsums[g] = static_cast<int16_t>(sum);
    }
    y.d = 1.0f / iscale;
  }
}

}  // namespace pipit::kernels
