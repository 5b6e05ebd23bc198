#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "core/error.h"
#include "sampling/sampler.h"

namespace pipit {
namespace {

constexpr int32_t kVocab = 16;

SamplingOptions with(float temperature, int top_k, float top_p, uint64_t seed = 1) {
  SamplingOptions o;
  o.temperature = temperature;
  o.top_k = top_k;
  o.top_p = top_p;
  o.seed = seed;
  return o;
}

TEST(Sampler, GreedyPicksTheHighestLogitAndTheLowestIdOnTies) {
  Sampler s(with(0.0f, 0, 1.0f), kVocab);
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, -2.0f, 2.9f}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{5.0f, 1.0f, 5.0f}), 0);
}

TEST(Sampler, TopKOneIsGreedyAtAnyTemperature) {
  Sampler s(with(5.0f, 1, 1.0f), kVocab);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(std::vector<float>{0.0f, 0.5f, 0.4f}), 1);
}

TEST(Sampler, TopKKeepsOnlyTheKHighest) {
  Sampler s(with(100.0f, 2, 1.0f), kVocab);  // nearly uniform over what is kept
  std::map<TokenId, int> seen;
  for (int i = 0; i < 400; ++i) ++seen[s.sample(std::vector<float>{3.0f, 1.0f, 2.0f, 0.0f})];
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_GT(seen[0], 150);
  EXPECT_GT(seen[2], 150);
}

TEST(Sampler, TopPCutsTheTail) {
  // Probabilities at temperature 1: ~0.665, 0.245, 0.090. top_p 0.8 keeps the first two.
  Sampler s(with(1.0f, 0, 0.8f), kVocab);
  std::map<TokenId, int> seen;
  for (int i = 0; i < 2000; ++i) ++seen[s.sample(std::vector<float>{2.0f, 1.0f, 0.0f})];
  EXPECT_EQ(seen.count(2), 0u);
  // Renormalised over the two kept: 0.731 / 0.269; 2000 draws put the count within ~4 sigma.
  EXPECT_NEAR(seen[0] / 2000.0, 0.731, 0.04);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  Sampler s(with(1.0f, 0, 1.0f, 42), kVocab);
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  std::map<TokenId, int> seen;
  const int n = 5000;
  for (int i = 0; i < n; ++i) ++seen[s.sample(logits)];
  // Binomial standard deviation at n = 5000 is below 0.0071; allow 4 sigma.
  EXPECT_NEAR(seen[0] / double(n), 0.5, 0.03);
  EXPECT_NEAR(seen[1] / double(n), 0.3, 0.03);
  EXPECT_NEAR(seen[2] / double(n), 0.2, 0.03);
}

TEST(Sampler, SameSeedSameDrawsOtherSeedOtherDraws) {
  const std::vector<float> logits = {0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f};
  auto draw = [&](uint64_t seed) {
    Sampler s(with(1.0f, 0, 1.0f, seed), kVocab);
    std::vector<TokenId> ids;
    for (int i = 0; i < 64; ++i) ids.push_back(s.sample(logits));
    return ids;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}

TEST(Sampler, RejectsInvalidOptions) {
  auto kind_of = [](const SamplingOptions& o) {
    try {
      Sampler s(o, kVocab);
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::kInternal;
  };
  EXPECT_EQ(kind_of(with(-1.0f, 0, 1.0f)), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of(with(NAN, 0, 1.0f)), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of(with(1.0f, -3, 1.0f)), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of(with(1.0f, 0, 0.0f)), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of(with(1.0f, 0, 1.5f)), ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace pipit
