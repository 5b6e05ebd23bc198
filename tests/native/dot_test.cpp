// Every weight type's dot products, three ways that must agree: the SIMD kernel, the scalar
// integer reference, and plain floats from the independent dequantizers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/f16.h"
#include "core/simd128.h"
#include "core/thread_pool.h"
#include "product_families.h"
#include "quant/activations.h"
#include "quant/dot.h"
#include "quant/kernels.h"
#include "quant/quant_simd.h"

namespace pipit::kernels {
namespace {

// Every finite half, four at a time, through the four-operation conversion the four-row
// kernels use for their scales: times 2^112 it must be f16_to_f32's float, bit for bit
// (subnormal halves, both zeros and the largest half included).
TEST(Halves, UnscaledConversionIsExactForEveryFiniteHalf) {
  int checked = 0;
  for (uint32_t first = 0; first < 65536; first += 4) {
    uint16_t halves[4];
    for (int i = 0; i < 4; ++i) halves[i] = static_cast<uint16_t>(first + i);
    alignas(16) float lanes[4];
    simd::store_f32(lanes, simd::mul_f32(simd::halves_to_f32_unscaled(
                                             halves, simd::splat_i32(simd::kHalvesSignCopies)),
                                         simd::splat_f32(simd::kHalvesUnscale)));
    for (int i = 0; i < 4; ++i) {
      if ((halves[i] & 0x7C00) == 0x7C00) continue;  // infinities and NaNs
      const float want = f16_to_f32(halves[i]);
      uint32_t got_bits, want_bits;
      std::memcpy(&got_bits, &lanes[i], 4);
      std::memcpy(&want_bits, &want, 4);
      ASSERT_EQ(got_bits, want_bits) << "half 0x" << std::hex << halves[i];
      ++checked;
    }
  }
  EXPECT_EQ(checked, 63488);
}

struct TypeCase {
  TensorType type;
  std::vector<int> half_offsets;  // where each block keeps an f16 scale
};

const TypeCase kCases[] = {
    {TensorType::Q8_0, {0}},   {TensorType::Q4_0, {0}},    {TensorType::Q4_1, {0, 2}},
    {TensorType::Q5_0, {0}},   {TensorType::Q5_1, {0, 2}}, {TensorType::Q2_K, {80, 82}},
    {TensorType::Q3_K, {108}}, {TensorType::Q4_K, {0, 2}}, {TensorType::Q5_K, {0, 2}},
    {TensorType::Q6_K, {208}}, {TensorType::F16, {}},      {TensorType::F32, {}},
    {TensorType::BF16, {}},
};

// A row of random blocks: random bytes are valid quant data once the f16 scales hold sane
// values (random bits could be NaN or huge).
std::vector<uint8_t> random_row(const TypeCase& c, int64_t n, std::mt19937& rng) {
  const TypeTraits t = type_traits(c.type);
  std::vector<uint8_t> row(row_bytes(t, n));
  std::uniform_real_distribution<float> scale(0.001f, 0.05f), value(-2.0f, 2.0f);
  for (auto& b : row) b = static_cast<uint8_t>(rng());
#if defined(__wasm_relaxed_simd__)
  // Under relaxed SIMD, Q8_0 weights must not be -128 (llama.cpp never writes one): see
  // legacy_quants.h.
  if (c.type == TensorType::Q8_0)
    std::replace(row.begin(), row.end(), uint8_t{0x80}, uint8_t{0x81});
#endif
  if (c.type == TensorType::F16 || c.type == TensorType::F32 || c.type == TensorType::BF16) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = value(rng);
      if (c.type == TensorType::F32) std::memcpy(&row[4 * i], &v, 4);
      if (c.type == TensorType::F16) {
        const uint16_t h = f32_to_f16(v);
        std::memcpy(&row[2 * i], &h, 2);
      }
      if (c.type == TensorType::BF16) {
        const uint16_t h = static_cast<uint16_t>(float_bits(v) >> 16);
        std::memcpy(&row[2 * i], &h, 2);
      }
    }
    return row;
  }
  for (size_t block = 0; block < row.size(); block += t.block_bytes) {
    for (int offset : c.half_offsets) {
      const uint16_t h = f32_to_f16(scale(rng));
      std::memcpy(&row[block + offset], &h, 2);
    }
  }
  return row;
}

// The activations in the weight type's format, and the float values they stand for.
std::vector<uint8_t> quantized_activations(TensorType type, const std::vector<float>& x,
                                           std::vector<float>& represented) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> out;
  represented.assign(x.begin(), x.end());
  switch (activation_format(type)) {
    case ActivationFormat::kF32:
      out.resize(n * 4);
      std::memcpy(out.data(), x.data(), n * 4);
      break;
    case ActivationFormat::kF16:
      for (float& v : represented) v = f16_to_f32(f32_to_f16(v));
      out.resize(n * 4);
      std::memcpy(out.data(), represented.data(), n * 4);
      break;
    case ActivationFormat::kQ8_0: {
      out.resize(n / 32 * sizeof(BlockQ8_0));
      auto* b = reinterpret_cast<BlockQ8_0*>(out.data());
      quantize_q8_0(x.data(), b, n);
      for (int64_t i = 0; i < n; ++i) represented[i] = b[i / 32].d * b[i / 32].qs[i % 32];
      break;
    }
    case ActivationFormat::kQ8_1: {
      out.resize(n / 32 * sizeof(BlockQ8_1));
      auto* b = reinterpret_cast<BlockQ8_1*>(out.data());
      quantize_q8_1(x.data(), b, n);
      for (int64_t i = 0; i < n; ++i) represented[i] = b[i / 32].d * b[i / 32].qs[i % 32];
      break;
    }
    case ActivationFormat::kQ8_K: {
      out.resize(n / 256 * sizeof(BlockQ8_K));
      auto* b = reinterpret_cast<BlockQ8_K*>(out.data());
      quantize_q8_K(x.data(), b, n);
      for (int64_t i = 0; i < n; ++i) represented[i] = b[i / 256].d * b[i / 256].qs[i % 256];
      break;
    }
  }
  return out;
}

TEST(Dot, SimdReferenceAndDequantizedFloatsAgree) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const TypeCase& c : kCases) {
    SCOPED_TRACE(type_name(static_cast<uint32_t>(c.type)));
    for (int64_t n : {256, 1024, 4864}) {
      if (n % type_traits(c.type).block_elems != 0) continue;
      for (int trial = 0; trial < 20; ++trial) {
        const std::vector<uint8_t> w = random_row(c, n, rng);
        std::vector<float> x(n), represented;
        for (float& v : x) v = normal(rng);
        const std::vector<uint8_t> act = quantized_activations(c.type, x, represented);
        std::vector<float> wf(n);
        dequantize_row(c.type, w.data(), wf.data(), n);
        double exact = 0.0, magnitude = 0.0;
        for (int64_t i = 0; i < n; ++i) {
          exact += static_cast<double>(wf[i]) * represented[i];
          magnitude += std::fabs(static_cast<double>(wf[i]) * represented[i]);
        }
        const float reference = reference_dot(c.type)(w.data(), act.data(), n);
        const float simd = simd_dot(c.type)(w.data(), act.data(), n);
        // Both compute the same integers; only float rounding of the per-block scaling differs.
        const double bound = 1e-5 * magnitude + 1e-6;
        EXPECT_NEAR(reference, exact, bound) << "n=" << n << " trial " << trial;
        EXPECT_NEAR(simd, reference, bound) << "n=" << n << " trial " << trial;
      }
    }
  }
}

// A flipped nibble or a scale read from the wrong offset shows up as a difference of whole
// weight units, far above the bound: make sure the test would see one.
TEST(Dot, ComparisonDetectsACorruptedBlock) {
  std::mt19937 rng(99);
  const TypeCase& c = kCases[1];  // Q4_0
  std::vector<uint8_t> w = random_row(c, 256, rng);
  std::vector<float> x(256, 1.0f), represented;
  const std::vector<uint8_t> act = quantized_activations(c.type, x, represented);
  const float before = simd_dot(c.type)(w.data(), act.data(), 256);
  w[5] ^= 0x0F;
  const float after = simd_dot(c.type)(w.data(), act.data(), 256);
  EXPECT_GT(std::fabs(after - before), 1e-3f);
}

bool is_legacy(TensorType type) {
  return type == TensorType::Q8_0 || type == TensorType::Q4_0 || type == TensorType::Q4_1 ||
         type == TensorType::Q5_0 || type == TensorType::Q5_1;
}

// Every quant at one end of its range, against activations of full magnitude: the largest
// integer sums the legacy kernels form in int16 lanes (single rows and four-row groups), where
// saturation or overflow would show.
TEST(Dot, LegacyQuantsAtTheEndsOfTheirRangeAgreeWithTheReference) {
  const int64_t n = 256;
  std::vector<std::vector<float>> inputs(3, std::vector<float>(n, 1.0f));
  for (int64_t i = 0; i < n; ++i) {
    inputs[1][i] = -1.0f;
    inputs[2][i] = i % 2 ? -1.0f : 1.0f;
  }
  for (const TypeCase& c : kCases) {
    if (!is_legacy(c.type)) continue;
    SCOPED_TRACE(type_name(static_cast<uint32_t>(c.type)));
    // Q8_0: 127 and -127; the others: every quant 0 and every quant at its maximum.
    const std::vector<uint8_t> fills = c.type == TensorType::Q8_0
                                           ? std::vector<uint8_t>{0x7F, 0x81}
                                           : std::vector<uint8_t>{0x00, 0xFF};
    for (uint8_t fill : fills) {
      std::vector<uint8_t> w(row_bytes(type_traits(c.type), n), fill);
      for (size_t block = 0; block < w.size(); block += type_traits(c.type).block_bytes) {
        for (int offset : c.half_offsets) {
          const uint16_t h = f32_to_f16(0.01f);
          std::memcpy(&w[block + offset], &h, 2);
        }
      }
      for (const std::vector<float>& x : inputs) {
        std::vector<float> represented;
        const std::vector<uint8_t> act = quantized_activations(c.type, x, represented);
        const float reference = reference_dot(c.type)(w.data(), act.data(), n);
        const float simd = simd_dot(c.type)(w.data(), act.data(), n);
        EXPECT_NEAR(simd, reference, 1e-5f * std::fabs(reference) + 1e-6f)
            << "fill " << int{fill} << ", x[0] " << x[0] << ", x[1] " << x[1];
        // The same row four times in the four-row layout, whose RowProducts kernels add in int16.
        std::vector<uint8_t> group;
        for (int r = 0; r < 4; ++r) group.insert(group.end(), w.begin(), w.end());
        Matrix m{c.type, group.data(), n, 4, w.size(), Layout::kRows};
        interleave_rows_of_4(m, group.data());
        ASSERT_EQ(m.layout, Layout::kRowsOf4);
        testing::for_each_product_family([&] {
          float y[4];
          matmul(m, x.data(), 1, y);
          for (float v : y) {
            EXPECT_NEAR(v, reference, 1e-5f * std::fabs(reference) + 1e-6f)
                << "four rows, fill " << int{fill} << ", x[0] " << x[0] << ", x[1] " << x[1];
          }
        });
      }
    }
  }
}

TEST(Activations, Q8_0CarriesTheSumOfItsQuants) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(512);
  for (float& v : x) v = normal(rng);
  x[100] = 1e6f;  // one block where every other quant rounds to zero
  std::vector<BlockQ8_0> blocks(x.size() / 32);
  quantize_q8_0(x.data(), blocks.data(), static_cast<int64_t>(x.size()));
  for (const BlockQ8_0& b : blocks) {
    int sum = 0;
    for (int8_t q : b.qs) sum += q;
    EXPECT_EQ(b.sum, sum);
  }
}

TEST(Activations, Q8KScalesByTheLargestMagnitudeAndRoundsHalfToEven) {
  std::vector<float> x(256, 0.0f);
  x[0] = -127.0f;  // the first value of largest magnitude sets the scale: -127 / -127 = 1
  x[1] = 2.5f;     // a tie: rounds to even, 2
  x[2] = 3.5f;     // a tie: rounds to even, 4
  x[3] = 127.0f;
  BlockQ8_K b;
  quantize_q8_K(x.data(), &b, 256);
  EXPECT_FLOAT_EQ(b.d, 1.0f);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], 4);
  EXPECT_EQ(b.qs[3], 127);
  EXPECT_EQ(b.bsums[0], 6);

  x[0] = 127.0f;  // now a positive maximum: the scale turns negative
  quantize_q8_K(x.data(), &b, 256);
  EXPECT_FLOAT_EQ(b.d, -1.0f);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[1], -2);
}

TEST(Activations, Q8_0KeepsTheScaleInHalfPrecision) {
  std::vector<float> x(32, 0.0f);
  x[0] = 1.0f;
  x[1] = -0.5f;
  BlockQ8_0 b;
  quantize_q8_0(x.data(), &b, 32);
  EXPECT_FLOAT_EQ(b.d, f16_to_f32(f32_to_f16(1.0f / 127.0f)));
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], -64);  // -63.5 rounds to the even -64
  EXPECT_EQ(b.sum, 127 - 64);
}

// The activation formats as activations.h defines them, one value at a time.
int8_t reference_quant(float v) {
  const float r = std::nearbyint(v);  // ties to even; NaN and infinities are not quants
  return r >= -128.0f && r <= 127.0f ? static_cast<int8_t>(r) : int8_t{0};
}

float reference_amax(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax;
}

BlockQ8_0 reference_q8_0(const float* x) {
  BlockQ8_0 b;
  const float amax = reference_amax(x, 32);
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  b.sum = 0;
  for (int j = 0; j < 32; ++j) b.sum += b.qs[j] = reference_quant(x[j] * id);
  b.d = f16_to_f32(f32_to_f16(amax / 127.0f));
  return b;
}

BlockQ8_1 reference_q8_1(const float* x) {
  const BlockQ8_0 b0 = reference_q8_0(x);
  BlockQ8_1 b;
  std::memcpy(b.qs, b0.qs, 32);
  b.d = b0.d;
  b.s = f16_to_f32(f32_to_f16(reference_amax(x, 32) / 127.0f * static_cast<float>(b0.sum)));
  return b;
}

BlockQ8_K reference_q8_K(const float* x) {
  BlockQ8_K b;
  std::memset(&b, 0, sizeof b);
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 256; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax == 0.0f) return b;
  const float iscale = -127.0f / max;
  b.d = 1.0f / iscale;
  for (int j = 0; j < 256; ++j) {
    b.qs[j] = reference_quant(x[j] * iscale);
    b.bsums[j / 16] = static_cast<int16_t>(b.bsums[j / 16] + b.qs[j]);
  }
  return b;
}

uint32_t bits_of(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

// Blocks of 256 values that reach every branch of the SIMD quantizers: ordinary values, exact
// ties, NaN and infinity, all zeros, a largest magnitude so small that 127/amax overflows, and
// equal magnitudes of both signs (the first one sets Q8_K's sign).
std::vector<float> awkward_activations() {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(256 * 7);
  for (float& v : x) v = normal(rng);
  float* ties = &x[256];
  for (int j = 0; j < 256; ++j) ties[j] = static_cast<float>(j % 32) - 15.5f;
  for (int j = 0; j < 256; j += 32) ties[j] = 127.0f;  // scale 1: every other value is a tie
  float* special = &x[512];
  special[3] = std::numeric_limits<float>::quiet_NaN();
  special[40] = std::numeric_limits<float>::infinity();
  special[77] = -std::numeric_limits<float>::quiet_NaN();
  std::fill(&x[768], &x[1024], 0.0f);
  for (int j = 0; j < 256; ++j) x[1024 + j] = 1e-39f * static_cast<float>(j % 7 - 3);
  float* signs = &x[1280];
  signs[10] = -9.0f;
  signs[200] = 9.0f;
  float* huge = &x[1536];
  huge[5] = 3e38f;
  huge[6] = -3e38f;
  return x;
}

TEST(Activations, SimdQuantizationEqualsTheDefinitionBitForBit) {
  const std::vector<float> x = awkward_activations();
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<BlockQ8_0> q8_0(n / 32);
  std::vector<BlockQ8_1> q8_1(n / 32);
  std::vector<BlockQ8_K> q8_K(n / 256);
  quantize_q8_0(x.data(), q8_0.data(), n);
  quantize_q8_1(x.data(), q8_1.data(), n);
  quantize_q8_K(x.data(), q8_K.data(), n);
  for (int64_t b = 0; b < n / 32; ++b) {
    const BlockQ8_0 want = reference_q8_0(&x[b * 32]);
    EXPECT_EQ(bits_of(q8_0[b].d), bits_of(want.d)) << "Q8_0 block " << b;
    EXPECT_EQ(q8_0[b].sum, want.sum) << "Q8_0 block " << b;
    EXPECT_EQ(std::memcmp(q8_0[b].qs, want.qs, 32), 0) << "Q8_0 block " << b;
    const BlockQ8_1 want1 = reference_q8_1(&x[b * 32]);
    EXPECT_EQ(bits_of(q8_1[b].d), bits_of(want1.d)) << "Q8_1 block " << b;
    EXPECT_EQ(bits_of(q8_1[b].s), bits_of(want1.s)) << "Q8_1 block " << b;
    EXPECT_EQ(std::memcmp(q8_1[b].qs, want1.qs, 32), 0) << "Q8_1 block " << b;
  }
  for (int64_t b = 0; b < n / 256; ++b) {
    const BlockQ8_K want = reference_q8_K(&x[b * 256]);
    EXPECT_EQ(bits_of(q8_K[b].d), bits_of(want.d)) << "Q8_K block " << b;
    EXPECT_EQ(std::memcmp(q8_K[b].qs, want.qs, 256), 0) << "Q8_K block " << b;
    EXPECT_EQ(std::memcmp(q8_K[b].bsums, want.bsums, sizeof want.bsums), 0) << "Q8_K block " << b;
  }
  EXPECT_EQ(q8_K[5].qs[10], -127);  // -9 came first: the scale is -127 / -9
  EXPECT_EQ(q8_K[5].qs[200], 127);
  EXPECT_EQ(q8_0[32].sum, 0);    // the tiny block: 127/amax is infinite
  EXPECT_EQ(q8_0[16].qs[3], 0);  // NaN
}

}  // namespace
}  // namespace pipit::kernels

namespace pipit::kernels {
namespace {

// The four-row layout computes the same products as the file's layout, and gives rows back.
TEST(RowsOf4, MatmulAndRowLookupAgreeWithTheFileLayout) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const TypeCase& c : kCases) {
    if (!is_legacy(c.type)) continue;
    SCOPED_TRACE(type_name(static_cast<uint32_t>(c.type)));
    const int64_t rows = 12, cols = 256;
    std::vector<uint8_t> file_bytes;
    for (int64_t r = 0; r < rows; ++r) {
      const std::vector<uint8_t> row = random_row(c, cols, rng);
      file_bytes.insert(file_bytes.end(), row.begin(), row.end());
    }
    std::vector<uint8_t> interleaved = file_bytes;
    Matrix plain{c.type, file_bytes.data(), cols, rows,
                 file_bytes.size() / static_cast<size_t>(rows)};
    Matrix fast = plain;
    fast.data = interleaved.data();
    interleave_rows_of_4(fast, interleaved.data());
    ASSERT_EQ(fast.layout, Layout::kRowsOf4);
    ASSERT_NE(interleaved, file_bytes);

    for (int tokens : {1, 3, 4, 6}) {
      std::vector<float> x(tokens * cols), want(tokens * rows), got(tokens * rows);
      for (float& v : x) v = normal(rng);
      matmul(plain, x.data(), tokens, want.data());
      std::vector<float> first_family;
      testing::for_each_product_family([&] {
        matmul(fast, x.data(), tokens, got.data());
        for (size_t i = 0; i < want.size(); ++i) {
          EXPECT_NEAR(got[i], want[i], 1e-4f * (1.0f + std::fabs(want[i]))) << tokens << " " << i;
        }
        // The families add the same integers, so they give the same floats.
        if (first_family.empty()) first_family = got;
        EXPECT_EQ(got, first_family) << tokens << " tokens";
      });
      // Both against the scalar reference, token by token.
      for (int t = 0; t < tokens; ++t) {
        std::vector<float> represented;
        const std::vector<uint8_t> act = quantized_activations(
            c.type, std::vector<float>(x.begin() + t * cols, x.begin() + (t + 1) * cols),
            represented);
        for (int64_t r = 0; r < rows; ++r) {
          const float reference = reference_dot(c.type)(plain.row(r), act.data(), cols);
          EXPECT_NEAR(want[t * rows + r], reference, 1e-4f * (1.0f + std::fabs(reference)))
              << tokens << " tokens, token " << t << ", row " << r;
        }
      }
    }
    std::vector<float> a(cols), b(cols);
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_matrix_row(plain, r, a.data());
      dequantize_matrix_row(fast, r, b.data());
      EXPECT_EQ(a, b) << "row " << r;
    }
  }
}

// Several matrices on one input (different types, so two activation formats, one of them in the
// four-row layout) give exactly what one matmul each gives, on one thread and on two.
TEST(MatmulSharedInput, EqualsOneMatmulPerMatrix) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t cols = 512;
  const TypeCase* picks[] = {&kCases[0], &kCases[7], &kCases[9],
                             &kCases[3]};  // Q8_0 Q4_K Q6_K Q5_0
  const int64_t row_counts[] = {12, 7, 5, 20};
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<Matrix> matrices;
  for (int m = 0; m < 4; ++m) {
    std::vector<uint8_t> all;
    for (int64_t r = 0; r < row_counts[m]; ++r) {
      const std::vector<uint8_t> row = random_row(*picks[m], cols, rng);
      all.insert(all.end(), row.begin(), row.end());
    }
    bytes.push_back(std::move(all));
  }
  for (int m = 0; m < 4; ++m) {
    Matrix w{picks[m]->type, bytes[m].data(), cols, row_counts[m],
             bytes[m].size() / static_cast<size_t>(row_counts[m])};
    interleave_rows_of_4(w, bytes[m].data());
    matrices.push_back(w);
  }
  ASSERT_EQ(matrices[0].layout, Layout::kRowsOf4);
  for (int threads : {1, 2}) {
    if (threads > 1 && !ThreadPool::threads_available()) continue;  // the single-thread WASM build
    ThreadPool pool(threads);
    ThreadPool::Scope scope(&pool);
    for (int tokens : {1, 5}) {
      SCOPED_TRACE(std::to_string(threads) + " threads, " + std::to_string(tokens) + " tokens");
      std::vector<float> x(tokens * cols);
      for (float& v : x) v = normal(rng);
      std::vector<std::vector<float>> want(4), got(4);
      std::vector<MatmulTarget> targets;
      for (int m = 0; m < 4; ++m) {
        want[m].resize(tokens * row_counts[m]);
        got[m].assign(tokens * row_counts[m], NAN);
        matmul(matrices[m], x.data(), tokens, want[m].data());
        targets.push_back({&matrices[m], got[m].data()});
      }
      matmul_shared_input(targets, x.data(), tokens);
      for (int m = 0; m < 4; ++m) EXPECT_EQ(got[m], want[m]) << "matrix " << m;
    }
  }
}

TEST(RowsOf4, RowCountsThatAreNotMultiplesOfFourStayAsTheyAre) {
  std::mt19937 rng(8);
  std::vector<uint8_t> bytes = random_row(kCases[0], 6 * 32, rng);
  Matrix m{TensorType::Q8_0, bytes.data(), 32, 6, 34};
  const std::vector<uint8_t> before = bytes;
  interleave_rows_of_4(m, bytes.data());
  EXPECT_EQ(m.layout, Layout::kRows);
  EXPECT_EQ(bytes, before);
}

}  // namespace
}  // namespace pipit::kernels
