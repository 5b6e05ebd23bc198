#include "quant/quantize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/f16.h"
#include "gguf/gguf.h"
#include "gguf_writer.h"
#include "test_support.h"

namespace pipit {
namespace {

// Deterministic values spanning several magnitudes, with some exact zeros and ties.
std::vector<float> test_values(size_t n, float scale) {
  std::vector<float> v(n);
  uint32_t s = 12345;
  for (size_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    const float u = static_cast<float>(s >> 8) / 16777216.0f - 0.5f;  // [-0.5, 0.5)
    v[i] = u * scale * (i % 7 == 0 ? 10.0f : 1.0f);
    if (i % 97 == 0) v[i] = 0.0f;
  }
  return v;
}

std::vector<uint8_t> encode(TensorType type, const std::vector<float>& x) {
  const TypeTraits t = type_traits(type);
  std::vector<uint8_t> out(row_bytes(t, x.size()));
  quantize_row(type, x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

std::vector<float> decode(TensorType type, const uint8_t* data, size_t n) {
  std::vector<float> y(n);
  dequantize_row(type, data, y.data(), static_cast<int64_t>(n));
  return y;
}

float block_amax(const float* x, int n) {
  float a = 0.0f;
  for (int i = 0; i < n; ++i) a = std::max(a, std::fabs(x[i]));
  return a;
}

// Largest error Q8_0 allows: half a step, plus what storing the step as f16 shifts the
// largest quant by (127 steps, each off by up to 2^-11 relative).
float q8_0_bound(float amax) {
  return amax / 127.0f * (0.5f + 127.0f / 2048.0f) + 1e-12f;
}

// Q4_0: half a step of amax/8, except that the extreme of the opposite sign is clamped
// from +8 to +7 steps (one full step), plus the f16 rounding of the step.
float q4_0_bound(float amax) {
  return amax / 8.0f * (1.0f + 8.0f / 2048.0f) + 1e-12f;
}

TEST(Quantize, F32IsACopy) {
  const std::vector<float> x = test_values(64, 3.0f);
  const std::vector<uint8_t> bytes = encode(TensorType::F32, x);
  EXPECT_EQ(decode(TensorType::F32, bytes.data(), x.size()), x);
}

TEST(Quantize, F16RoundTripWithinHalfAnUlp) {
  const std::vector<float> x = test_values(4096, 100.0f);
  const std::vector<uint8_t> bytes = encode(TensorType::F16, x);
  ASSERT_EQ(bytes.size(), x.size() * 2);
  const std::vector<float> y = decode(TensorType::F16, bytes.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    // Normal halves have 11 significant bits; below 2^-14 the spacing is fixed at 2^-24.
    const float bound = std::max(std::fabs(x[i]) * 0x1p-11f, 0x1p-25f);
    ASSERT_LE(std::fabs(y[i] - x[i]), bound) << "element " << i << " = " << x[i];
  }
}

TEST(Quantize, Q8_0RoundTripWithinTheStep) {
  const std::vector<float> x = test_values(32 * 64, 8.0f);
  const std::vector<uint8_t> bytes = encode(TensorType::Q8_0, x);
  ASSERT_EQ(bytes.size(), 64u * 34);
  const std::vector<float> y = decode(TensorType::Q8_0, bytes.data(), x.size());
  for (size_t b = 0; b < 64; ++b) {
    const float bound = q8_0_bound(block_amax(&x[b * 32], 32));
    for (size_t j = 0; j < 32; ++j) {
      const size_t i = b * 32 + j;
      ASSERT_LE(std::fabs(y[i] - x[i]), bound) << "element " << i;
    }
  }
}

TEST(Quantize, Q4_0RoundTripWithinTheStep) {
  const std::vector<float> x = test_values(32 * 64, 8.0f);
  const std::vector<uint8_t> bytes = encode(TensorType::Q4_0, x);
  ASSERT_EQ(bytes.size(), 64u * 18);
  const std::vector<float> y = decode(TensorType::Q4_0, bytes.data(), x.size());
  for (size_t b = 0; b < 64; ++b) {
    const float bound = q4_0_bound(block_amax(&x[b * 32], 32));
    for (size_t j = 0; j < 32; ++j) {
      const size_t i = b * 32 + j;
      ASSERT_LE(std::fabs(y[i] - x[i]), bound) << "element " << i;
    }
  }
}

TEST(Quantize, Q8_0KnownBlock) {
  // amax 127 makes the step exactly 1 (f16 0x3C00), so each quant is round(x), halves
  // away from zero.
  std::vector<float> x(32, 0.0f);
  x[0] = -127.0f;
  x[1] = 0.5f;
  x[2] = -0.5f;
  x[3] = 1.49f;
  x[4] = 2.5f;
  x[5] = 126.6f;
  x[31] = 3.0f;
  const std::vector<uint8_t> got = encode(TensorType::Q8_0, x);
  std::vector<uint8_t> want(34, 0);
  want[0] = 0x00;
  want[1] = 0x3C;
  want[2] = static_cast<uint8_t>(-127);
  want[3] = 1;
  want[4] = static_cast<uint8_t>(-1);
  want[5] = 1;
  want[6] = 3;
  want[7] = 127;
  want[33] = 3;
  EXPECT_EQ(got, want);
}

TEST(Quantize, Q4_0KnownBlocks) {
  // The largest magnitude is -8, so the step is (-8)/(-8) = 1 and q = min(15, trunc(x + 8.5)).
  std::vector<float> x(32, 0.0f);
  x[0] = -8.0f;   // 0
  x[1] = 7.0f;    // 15
  x[2] = 8.0f;    // 16, clamped to 15 (it ties -8 in magnitude but comes later)
  x[3] = 0.5f;    // 9
  x[4] = -0.5f;   // 8
  x[5] = 0.49f;   // 8
  x[6] = -3.0f;   // 5
  x[16] = 1.0f;   // 9, high nibble of byte 0
  x[31] = -7.6f;  // 0 (trunc(0.9)), high nibble of byte 15
  std::vector<uint8_t> want(18, 0x88);  // zeros encode as 8 in both nibbles
  want[0] = 0x00;
  want[1] = 0x3C;
  want[2] = 0x90;
  want[3] = 0x8F;
  want[4] = 0x8F;
  want[5] = 0x89;
  want[6] = 0x88;
  want[7] = 0x88;
  want[8] = 0x85;
  want[17] = 0x08;
  EXPECT_EQ(encode(TensorType::Q4_0, x), want);

  // A positive extreme gives a negative step: 8 -> 0, -8 -> 16 clamped to 15.
  std::vector<float> y(32, 0.0f);
  y[0] = 8.0f;
  y[1] = -8.0f;
  std::vector<uint8_t> want_y(18, 0x88);
  want_y[0] = 0x00;
  want_y[1] = 0xBC;
  want_y[2] = 0x80;
  want_y[3] = 0x8F;
  EXPECT_EQ(encode(TensorType::Q4_0, y), want_y);
}

TEST(Quantize, ZeroBlocksDecodeToZero) {
  const std::vector<float> x(64, 0.0f);
  for (TensorType t : {TensorType::F16, TensorType::Q8_0, TensorType::Q4_0}) {
    const std::vector<uint8_t> bytes = encode(t, x);
    EXPECT_EQ(decode(t, bytes.data(), x.size()), x) << type_name(static_cast<uint32_t>(t));
  }
}

TEST(Quantize, RejectsPartialBlocksAndOtherTypes) {
  std::vector<float> x(48, 1.0f);
  std::vector<uint8_t> out(1024);
  try {
    quantize_row(TensorType::Q8_0, x.data(), out.data(), 48);
    FAIL() << "48 values are not whole Q8_0 blocks";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("48"), std::string::npos) << e.what();
  }
  EXPECT_THROW(dequantize_row(TensorType::Q4_0, out.data(), x.data(), 20), Error);
  try {
    quantize_row(TensorType::Q2_K, x.data(), out.data(), 256);
    FAIL() << "Q2_K has no reference quantizer here";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("Q2_K"), std::string::npos) << e.what();
  }
  try {
    dequantize_row(TensorType::Q3_K, out.data(), x.data(), 256);
    FAIL() << "Q3_K is not handled by the reference dequantizer";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
  }
}

// llama-quantize's Q8_0 and Q4_0 stories260K files against the F32 original: dequantized
// values stay within each block's bound (so the block layout is read as llama.cpp wrote it),
// and quantizing the original here gives llama.cpp's bytes exactly.
void check_against_llama_cpp(const std::string& quantized_name) {
  const std::string f32_path = testing::model_path("stories260K/stories260K.gguf");
  const std::string q_path = testing::model_path("synthetic/" + quantized_name);
  if (!std::filesystem::exists(f32_path) || !std::filesystem::exists(q_path)) {
    GTEST_SKIP() << "model files not found: " << f32_path << ", " << q_path;
  }
  const std::vector<uint8_t> f32_bytes = gguf::read_file(f32_path);
  const std::vector<uint8_t> q_bytes = gguf::read_file(q_path);
  const gguf::File original = gguf::File::parse(f32_bytes);
  const gguf::File quantized = gguf::File::parse(q_bytes);
  int checked = 0;
  for (const gguf::TensorInfo& t : quantized.tensors()) {
    const gguf::TensorInfo* o = original.find_tensor(t.name);
    ASSERT_NE(o, nullptr) << t.name;
    ASSERT_EQ(o->type_id, static_cast<uint32_t>(TensorType::F32)) << t.name;
    ASSERT_EQ(o->dims, t.dims) << t.name;
    const auto type = static_cast<TensorType>(t.type_id);
    if (type != TensorType::F16 && type != TensorType::Q8_0 && type != TensorType::Q4_0) continue;
    const size_t n = t.elements();
    std::vector<float> x(n);
    std::memcpy(x.data(), o->data, n * 4);
    const std::vector<float> y = decode(type, t.data, n);
    const size_t block = type == TensorType::F16 ? 1 : 32;
    for (size_t b = 0; b < n / block; ++b) {
      const float amax = block_amax(&x[b * block], static_cast<int>(block));
      const float bound = type == TensorType::F16    ? amax * 0x1p-11f + 0x1p-25f
                          : type == TensorType::Q8_0 ? q8_0_bound(amax)
                                                     : q4_0_bound(amax);
      for (size_t j = 0; j < block; ++j) {
        const size_t i = b * block + j;
        ASSERT_LE(std::fabs(y[i] - x[i]), bound) << t.name << " element " << i;
      }
    }
    const std::vector<uint8_t> ours = encode(type, x);
    ASSERT_EQ(0, std::memcmp(ours.data(), t.data, ours.size()))
        << t.name << ": quantize_row differs from llama-quantize's " << type_name(t.type_id);
    ++checked;
  }
  EXPECT_EQ(checked, 37) << "every non-F32 tensor (32 quantized, 5 F16) is compared";
}

TEST(Quantize, MatchesLlamaCppQ8_0File) {
  check_against_llama_cpp("stories260K-Q8_0.gguf");
}
TEST(Quantize, MatchesLlamaCppQ4_0File) {
  check_against_llama_cpp("stories260K-Q4_0.gguf");
}

}  // namespace
}  // namespace pipit
