// The K-quant kernels (one row, several tokens, the four-row layout) against the scalar
// reference dot products, on random blocks and on the extremes that bound the kernels' int16
// lanes: every quant and scale at its largest or smallest, activations at +-127.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/f16.h"
#include "product_families.h"
#include "quant/activations.h"
#include "quant/dot.h"
#include "quant/kernels.h"

namespace pipit::kernels {
namespace {

struct KType {
  TensorType type;
  int block_bytes;
  int d_offset;       // the f16 super-block scale
  int dmin_offset;    // the f16 scale of the mins, or -1
  int scales_offset;  // the packed sub-block scales
  int scales_bytes;
};

const KType kTypes[] = {
    {TensorType::Q2_K, 84, 80, 82, 0, 16},     {TensorType::Q3_K, 110, 108, -1, 96, 12},
    {TensorType::Q4_K, 144, 0, 2, 4, 12},      {TensorType::Q5_K, 176, 0, 2, 4, 12},
    {TensorType::Q6_K, 210, 208, -1, 192, 16},
};

std::string name_of(TensorType type) {
  return type_name(static_cast<uint32_t>(type));
}

void put_half(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// A row of `n` values: every byte `fill` (or random when fill < 0), the sub-block scales
// `scale_fill` (random when < 0), and super-block scales d and dmin.
std::vector<uint8_t> k_row(const KType& t, int64_t n, int fill, int scale_fill, float d, float dmin,
                           std::mt19937& rng) {
  std::vector<uint8_t> row(n / 256 * t.block_bytes);
  for (auto& b : row) b = static_cast<uint8_t>(fill < 0 ? rng() : fill);
  for (size_t block = 0; block < row.size(); block += t.block_bytes) {
    if (scale_fill >= 0) std::memset(&row[block + t.scales_offset], scale_fill, t.scales_bytes);
    put_half(&row[block + t.d_offset], d);
    if (t.dmin_offset >= 0) put_half(&row[block + t.dmin_offset], dmin);
  }
  return row;
}

std::vector<BlockQ8_K> q8k(const std::vector<float>& x) {
  std::vector<BlockQ8_K> out(x.size() / 256);
  quantize_q8_K(x.data(), out.data(), static_cast<int64_t>(x.size()));
  return out;
}

// What float rounding may change in a dot product: the sum over values of |x| times the
// magnitudes of both parts of the weight (d * scale * q and dmin * min), which the kernels
// convert to float separately. Each part is the row dequantized with the other scale zeroed.
double magnitude(const KType& t, const std::vector<uint8_t>& row, const std::vector<BlockQ8_K>& x,
                 int64_t n) {
  std::vector<uint8_t> scaled = row, mins = row;
  for (size_t block = 0; block < row.size(); block += t.block_bytes) {
    if (t.dmin_offset >= 0) put_half(&scaled[block + t.dmin_offset], 0.0f);
    put_half(&mins[block + t.d_offset], 0.0f);
  }
  std::vector<float> a(n), b(n);
  dequantize_row(t.type, scaled.data(), a.data(), n);
  if (t.dmin_offset >= 0) dequantize_row(t.type, mins.data(), b.data(), n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double xi = std::fabs(static_cast<double>(x[i / 256].d) * x[i / 256].qs[i % 256]);
    sum += xi * (std::fabs(a[i]) + (t.dmin_offset >= 0 ? std::fabs(b[i]) : 0.0));
  }
  return sum;
}

// The kernels and the reference sum the same integers and differ only in the order of float
// operations: seen up to 4e-8 of the magnitude; one quant off by one moves a 4864-value row's
// result by about 3e-5 of it.
constexpr double kRounding = 1e-6;

// Activation rows: normal values, +-1 alternating (quants +-127), or all one value (quants all
// -127: Q8_K maps the largest magnitude to -127).
std::vector<float> activations(int kind, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = kind == 0 ? normal(rng) : kind == 1 ? (i % 2 ? -1.0f : 1.0f) : 0.5f;
  }
  return x;
}

// The SIMD kernel for one token and the multi-token kernel for `tokens` rows of activations
// both give the reference's result for every token.
void expect_kernels_match(const KType& t, const std::vector<uint8_t>& row,
                          const std::vector<std::vector<BlockQ8_K>>& xs, int64_t n,
                          const std::string& what) {
  const DotFn reference = reference_dot(t.type);
  const DotFn one = simd_dot(t.type);
  const MultiDotFn many = simd_multi_dot(t.type);
  ASSERT_NE(many, nullptr);
  const size_t stride = static_cast<size_t>(n / 256) * sizeof(BlockQ8_K);
  std::vector<uint8_t> packed(stride * xs.size());
  for (size_t k = 0; k < xs.size(); ++k) std::memcpy(&packed[k * stride], xs[k].data(), stride);
  float out[4];
  many(row.data(), packed.data(), stride, static_cast<int>(xs.size()), n, out);
  for (size_t k = 0; k < xs.size(); ++k) {
    const float want = reference(row.data(), xs[k].data(), n);
    const double bound = kRounding * magnitude(t, row, xs[k], n) + 1e-30;
    EXPECT_NEAR(one(row.data(), xs[k].data(), n), want, bound) << what << " token " << k;
    EXPECT_NEAR(out[k], want, bound) << what << " token " << k << " of " << xs.size();
  }
}

TEST(KQuantKernels, RandomBlocksMatchTheReference) {
  std::mt19937 rng(2024);
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  for (const KType& t : kTypes) {
    SCOPED_TRACE(name_of(t.type));
    for (int64_t n : {256, 512, 4864}) {
      for (int trial = 0; trial < 10; ++trial) {
        const std::vector<uint8_t> row = k_row(t, n, -1, -1, scale(rng), scale(rng), rng);
        for (int tokens = 1; tokens <= 4; ++tokens) {
          std::vector<std::vector<BlockQ8_K>> xs;
          for (int k = 0; k < tokens; ++k) xs.push_back(q8k(activations(0, n, rng)));
          expect_kernels_match(t, row, xs, n,
                               "n=" + std::to_string(n) + " trial " + std::to_string(trial));
        }
      }
    }
  }
}

TEST(KQuantKernels, ExtremeQuantsScalesAndActivationsMatchTheReference) {
  std::mt19937 rng(7);
  const int fills[] = {0x00, 0xFF, 0xAA, 0x55, 0x80, 0x7F, -1};
  const int scale_fills[] = {0x00, 0xFF, 0x80, 0x7F, 0x3F, -1};
  for (const KType& t : kTypes) {
    SCOPED_TRACE(name_of(t.type));
    for (int fill : fills) {
      for (int scale_fill : scale_fills) {
        const std::vector<uint8_t> row = k_row(t, 512, fill, scale_fill, 0.03125f, -0.015625f, rng);
        std::vector<std::vector<BlockQ8_K>> xs;
        for (int kind : {1, 2, 0}) xs.push_back(q8k(activations(kind, 512, rng)));
        ASSERT_EQ(xs[1][0].qs[0], -127);
        expect_kernels_match(
            t, row, xs, 512,
            "fill " + std::to_string(fill) + " scales " + std::to_string(scale_fill));
      }
    }
  }
}

// A wrong nibble or a scale read from the wrong place changes the result by far more than the
// bound: check that the comparison above would notice one.
TEST(KQuantKernels, TheBoundDetectsOneChangedQuant) {
  std::mt19937 rng(11);
  for (const KType& t : kTypes) {
    SCOPED_TRACE(name_of(t.type));
    const int64_t n = 4864;
    std::vector<uint8_t> row = k_row(t, n, -1, 0x3F, 0.03f, 0.01f, rng);
    const std::vector<BlockQ8_K> x = q8k(activations(1, n, rng));
    const float before = reference_dot(t.type)(row.data(), x.data(), n);
    // A quant of the first sub-block: the quants start after the scales (Q2_K), the high-bit
    // mask (Q3_K), the scales (Q4_K), the fifth bits (Q5_K) or right away (Q6_K).
    const int first_quants[] = {16, 32, 16, 48, 0};
    const int quant_byte = first_quants[&t - kTypes] + 5;
    row[quant_byte] ^= 0x01;
    const float after = reference_dot(t.type)(row.data(), x.data(), n);
    EXPECT_GT(std::fabs(after - before), 10 * kRounding * magnitude(t, row, x, n));
  }
}

// Layout::kRowsOf4 (Q4_K, Q5_K and Q6_K): every row and token of a matmul as the reference computes
// it, for 1 to 4 tokens per kernel call, and each row read back exactly as the file holds it.
TEST(KQuantKernels, FourRowLayoutMatchesTheReferenceAndGivesRowsBack) {
  std::mt19937 rng(5);
  const int64_t rows = 12, cols = 768;
  for (const KType& t : kTypes) {
    if (t.type != TensorType::Q4_K && t.type != TensorType::Q5_K && t.type != TensorType::Q6_K) {
      continue;
    }
    SCOPED_TRACE(name_of(t.type));
    for (int fill : {-1, 0xFF, 0x00, 0xAA}) {
      std::vector<uint8_t> file_bytes;
      for (int64_t r = 0; r < rows; ++r) {
        const int scale_fill = fill < 0 ? -1 : (r % 2 ? 0x7F : 0x80 | static_cast<int>(r));
        const std::vector<uint8_t> row =
            k_row(t, cols, fill, scale_fill, 0.01f * (r - 5), 0.02f, rng);
        file_bytes.insert(file_bytes.end(), row.begin(), row.end());
      }
      const size_t row_size = file_bytes.size() / rows;
      std::vector<uint8_t> interleaved = file_bytes;
      Matrix fast{t.type, interleaved.data(), cols, rows, row_size};
      interleave_rows_of_4(fast, interleaved.data());
      ASSERT_EQ(fast.layout, Layout::kRowsOf4);
      ASSERT_NE(interleaved, file_bytes);

      for (int tokens : {1, 3, 4, 6}) {
        std::vector<float> x;
        for (int k = 0; k < tokens; ++k) {
          const std::vector<float> xk = activations(k % 3, cols, rng);
          x.insert(x.end(), xk.begin(), xk.end());
        }
        std::vector<float> y(tokens * rows), first_family;
        testing::for_each_product_family([&] {
          matmul(fast, x.data(), tokens, y.data());
          // The families add the same integers, so they give the same floats.
          if (first_family.empty()) first_family = y;
          EXPECT_EQ(y, first_family) << "fill " << fill << ", " << tokens << " tokens";
        });
        for (int k = 0; k < tokens; ++k) {
          const std::vector<BlockQ8_K> xq =
              q8k(std::vector<float>(x.begin() + k * cols, x.begin() + (k + 1) * cols));
          for (int64_t r = 0; r < rows; ++r) {
            const std::vector<uint8_t> row(file_bytes.begin() + r * row_size,
                                           file_bytes.begin() + (r + 1) * row_size);
            const float want = reference_dot(t.type)(row.data(), xq.data(), cols);
            EXPECT_NEAR(y[k * rows + r], want, kRounding * magnitude(t, row, xq, cols) + 1e-30)
                << "fill " << fill << ", " << tokens << " tokens: token " << k << " row " << r;
          }
        }
      }
      std::vector<float> want(cols), got(cols);
      for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(t.type, file_bytes.data() + r * row_size, want.data(), cols);
        dequantize_matrix_row(fast, r, got.data());
        EXPECT_EQ(got, want) << "fill " << fill << " row " << r;
      }
    }
  }
}

TEST(KQuantKernels, RowCountsThatAreNotMultiplesOfFourKeepTheFileLayout) {
  std::mt19937 rng(6);
  const KType& t = kTypes[4];  // Q6_K
  std::vector<uint8_t> bytes;
  for (int r = 0; r < 6; ++r) {
    const std::vector<uint8_t> row = k_row(t, 256, -1, -1, 0.01f, 0.0f, rng);
    bytes.insert(bytes.end(), row.begin(), row.end());
  }
  const std::vector<uint8_t> before = bytes;
  Matrix m{t.type, bytes.data(), 256, 6, static_cast<size_t>(t.block_bytes)};
  interleave_rows_of_4(m, bytes.data());
  EXPECT_EQ(m.layout, Layout::kRows);
  EXPECT_EQ(bytes, before);
}

}  // namespace
}  // namespace pipit::kernels
