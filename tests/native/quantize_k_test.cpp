// The reference quantizers added for benchmark models (Q5_0, Q4_K, Q6_K): whatever they
// encode, the kernels' dequantizer (checked against llama.cpp elsewhere) must read back
// values close to the originals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "quant/kernels.h"
#include "quant/quantize.h"

namespace pipit {
namespace {

// Roughly normal values (sum of four uniforms) whose spread changes every 32 values, the way
// weight rows differ in scale from block to block; some exact zeros and outliers.
std::vector<float> weight_like(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed;
  auto uniform = [&s] {
    s = s * 1664525u + 1013904223u;
    return static_cast<float>(s >> 8) / 16777216.0f - 0.5f;
  };
  for (size_t i = 0; i < n; ++i) {
    const float spread = 0.02f * (1.0f + static_cast<float>((i / 32) % 5));
    v[i] = (uniform() + uniform() + uniform() + uniform()) * spread;
    if (i % 101 == 0) v[i] = 0.0f;
    if (i % 211 == 5) v[i] *= 6.0f;
  }
  return v;
}

std::vector<float> round_trip(TensorType type, const std::vector<float>& x) {
  std::vector<uint8_t> bytes(row_bytes(type_traits(type), x.size()));
  quantize_row(type, x.data(), bytes.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  kernels::dequantize_row(type, bytes.data(), y.data(), static_cast<int64_t>(y.size()));
  return y;
}

double rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s / static_cast<double>(v.size()));
}

double rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += (static_cast<double>(y[i]) - x[i]) * (y[i] - x[i]);
  return std::sqrt(s / static_cast<double>(x.size()));
}

float range_of(const float* x, size_t n) {
  float lo = 0.0f, hi = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  return hi - lo;
}

TEST(QuantizeK, Q5_0WithinHalfAStep) {
  const std::vector<float> x = weight_like(32 * 64, 7);
  const std::vector<float> y = round_trip(TensorType::Q5_0, x);
  for (size_t b = 0; b < 64; ++b) {
    float amax = 0.0f;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    // Half a step of amax/16, but the opposite extreme may be clamped by a whole step; plus
    // the f16 rounding of the step over 16 steps.
    const float bound = amax / 16.0f * (1.0f + 16.0f / 2048.0f) + 1e-12f;
    for (size_t j = 0; j < 32; ++j) {
      const size_t i = b * 32 + j;
      ASSERT_LE(std::fabs(y[i] - x[i]), bound) << "element " << i;
    }
  }
  EXPECT_LT(rms_error(x, y), 0.06 * rms(x));
}

// For Gaussian-like data a 4-bit affine code over 32 values leaves about 8% of the RMS,
// a 6-bit symmetric one over 16 values about 2% (5-bit Q5_0 about 5%); a wrong bit layout
// leaves ~100%.
TEST(QuantizeK, Q4_KRoundTripIsClose) {
  const std::vector<float> x = weight_like(256 * 16, 11);
  const std::vector<float> y = round_trip(TensorType::Q4_K, x);
  EXPECT_LT(rms_error(x, y), 0.10 * rms(x)) << rms_error(x, y) / rms(x);
  for (size_t b = 0; b < 16; ++b) {
    // No value may be off by more than a step of the widest sub-block's range.
    const float bound = range_of(&x[b * 256], 256) / 15.0f;
    for (size_t j = 0; j < 256; ++j) {
      const size_t i = b * 256 + j;
      ASSERT_LE(std::fabs(y[i] - x[i]), bound) << "element " << i;
    }
  }
}

TEST(QuantizeK, Q6_KRoundTripIsClose) {
  const std::vector<float> x = weight_like(256 * 16, 13);
  const std::vector<float> y = round_trip(TensorType::Q6_K, x);
  EXPECT_LT(rms_error(x, y), 0.03 * rms(x)) << rms_error(x, y) / rms(x);
  for (size_t b = 0; b < 16; ++b) {
    const float bound = range_of(&x[b * 256], 256) / 32.0f;
    for (size_t j = 0; j < 256; ++j) {
      const size_t i = b * 256 + j;
      ASSERT_LE(std::fabs(y[i] - x[i]), bound) << "element " << i;
    }
  }
}

// Every sub-block a different constant: each value must come back from its own sub-block,
// which pins where the scales, mins and quants of each sub-block live.
TEST(QuantizeK, SubBlocksKeepTheirOwnScales) {
  for (TensorType t : {TensorType::Q4_K, TensorType::Q6_K}) {
    const int sub = t == TensorType::Q4_K ? 32 : 16;
    std::vector<float> x(512);
    for (size_t i = 0; i < x.size(); ++i) {
      const int s = static_cast<int>(i) / sub;
      x[i] = (s % 2 ? -1.0f : 1.0f) * (0.1f + 0.05f * static_cast<float>(s % 11)) +
             0.001f * static_cast<float>(i % sub);
    }
    const std::vector<float> y = round_trip(t, x);
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_NEAR(y[i], x[i], 0.03f) << type_name(static_cast<uint32_t>(t)) << " element " << i;
    }
  }
}

TEST(QuantizeK, ZerosAndTheReferenceDequantizer) {
  const std::vector<float> zeros(512, 0.0f);
  const std::vector<float> x = weight_like(512, 17);
  for (TensorType t : {TensorType::Q5_0, TensorType::Q4_K, TensorType::Q6_K}) {
    EXPECT_EQ(round_trip(t, zeros), zeros) << type_name(static_cast<uint32_t>(t));
    // pipit::dequantize_row reads these types the same way the kernels do.
    std::vector<uint8_t> bytes(row_bytes(type_traits(t), x.size()));
    quantize_row(t, x.data(), bytes.data(), 512);
    std::vector<float> y(512);
    dequantize_row(t, bytes.data(), y.data(), 512);
    EXPECT_EQ(y, round_trip(t, x)) << type_name(static_cast<uint32_t>(t));
  }
}

TEST(QuantizeK, RowsMustBeWholeSuperBlocks) {
  std::vector<float> x(384, 1.0f);
  std::vector<uint8_t> out(1024);
  for (TensorType t : {TensorType::Q4_K, TensorType::Q6_K}) {
    try {
      quantize_row(t, x.data(), out.data(), 384);
      FAIL() << "384 values are not whole 256-value super-blocks";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace pipit
