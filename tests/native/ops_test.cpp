// The vector exponential and the two ops built on it, against the C library's scalar results.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/simd128.h"
#include "ops/ops.h"

namespace pipit {
namespace {

std::vector<float> exp_lanes(const std::vector<float>& x) {
  const simd::ExpConstants k;
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); i += 4) {
    simd::store_f32(&out[i], simd::exp_f32(simd::load_f32(&x[i]), k));
  }
  return out;
}

// Every 1/1024 from -87 to 88: the relative error stays below 2.5e-7 (a few float ulps; the
// polynomial is Cephes', the arithmetic has no fused multiply-add).
TEST(Exp, AgreesWithTheLibraryAcrossTheNormalRange) {
  std::vector<float> x;
  for (int i = -87 * 1024; i < 88 * 1024; ++i) x.push_back(static_cast<float>(i) / 1024.0f);
  while (x.size() % 4 != 0) x.push_back(0.0f);
  const std::vector<float> got = exp_lanes(x);
  double worst = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(static_cast<double>(x[i]));
    worst = std::max(worst, std::abs(got[i] - want) / want);
  }
  EXPECT_LT(worst, 2.5e-7);
}

TEST(Exp, EndsOfTheRangeAndNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> got = exp_lanes({-inf, -100.0f, 0.0f, std::nanf("")});
  EXPECT_EQ(got[0], 0.0f);
  EXPECT_EQ(got[1], 0.0f);
  EXPECT_EQ(got[2], 1.0f);
  EXPECT_TRUE(std::isnan(got[3]));
  const std::vector<float> high = exp_lanes({88.0f, 100.0f, inf, -87.0f});
  EXPECT_FLOAT_EQ(high[0], std::exp(88.0f));
  EXPECT_EQ(high[1], high[0]);  // held at e^88
  EXPECT_EQ(high[2], high[0]);
  EXPECT_FLOAT_EQ(high[3], std::exp(-87.0f));
}

// Lengths that are not multiples of four take the scalar tail for their last values.
TEST(Ops, SoftmaxAndSwigluMatchTheirScalarDefinitions) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int n : {1, 3, 4, 7, 64, 70}) {
    std::vector<float> x(n), gate(n), up(n);
    for (int i = 0; i < n; ++i) {
      x[i] = normal(rng);
      gate[i] = normal(rng);
      up[i] = normal(rng);
    }
    std::vector<double> want_softmax(n);
    const float max = *std::max_element(x.begin(), x.end());
    double sum = 0.0;
    for (int i = 0; i < n; ++i) sum += want_softmax[i] = std::exp(double{x[i]} - max);
    std::vector<float> got = x;
    ops::softmax(got.data(), n);
    std::vector<float> got_swiglu = gate;
    ops::swiglu(got_swiglu.data(), up.data(), n);
    for (int i = 0; i < n; ++i) {
      EXPECT_NEAR(got[i], want_softmax[i] / sum, 1e-6 * want_softmax[i] / sum + 1e-12)
          << "n " << n << " i " << i;
      const double g = gate[i];
      const double want_swiglu = g / (1.0 + std::exp(-g)) * up[i];
      EXPECT_NEAR(got_swiglu[i], want_swiglu, 1e-6 * std::abs(want_swiglu) + 1e-30)
          << "n " << n << " i " << i;
    }
  }
}

}  // namespace
}  // namespace pipit
