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

// ---- the chain's stages on hand-made logits ----

SamplingOptions penalties(float repeat, float frequency, float presence, int last_n) {
  SamplingOptions o = with(0.0f, 0, 1.0f);
  o.repeat_penalty = repeat;
  o.frequency_penalty = frequency;
  o.presence_penalty = presence;
  o.penalty_last_n = last_n;
  return o;
}

std::vector<float> adjusted(const Sampler& s, std::vector<float> logits) {
  s.adjust(logits);
  return logits;
}

TEST(SamplerChain, LogitBiasAddsAndMinusInfinityBans) {
  SamplingOptions o = with(0.0f, 0, 1.0f);
  o.logit_bias = {{1, -INFINITY}, {2, 1.5f}};
  Sampler s(o, 4);
  const std::vector<float> out = adjusted(s, {0.0f, 3.0f, 1.0f, 2.0f});
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], -INFINITY);
  EXPECT_EQ(out[2], 2.5f);
  EXPECT_EQ(out[3], 2.0f);
  EXPECT_EQ(s.sample(std::vector<float>{0.0f, 3.0f, 1.0f, 2.0f}), 2);
}

TEST(SamplerChain, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  Sampler s(penalties(2.0f, 0.0f, 0.0f, 64), 4);
  s.accept(0);
  s.accept(1);
  s.accept(0);  // the repeat penalty applies once however often a token was seen
  const std::vector<float> out = adjusted(s, {3.0f, -1.0f, 1.0f, 0.5f});
  EXPECT_EQ(out, (std::vector<float>{1.5f, -2.0f, 1.0f, 0.5f}));
}

TEST(SamplerChain, FrequencyPenaltyScalesWithCountAndPresencePenaltyDoesNot) {
  Sampler s(penalties(1.0f, 0.5f, 0.25f, 64), 4);
  for (TokenId id : {0, 0, 0, 2}) s.accept(id);
  const std::vector<float> out = adjusted(s, {1.0f, 1.0f, 1.0f, 1.0f});
  EXPECT_EQ(out, (std::vector<float>{1.0f - 1.5f - 0.25f, 1.0f, 1.0f - 0.5f - 0.25f, 1.0f}));
}

TEST(SamplerChain, PenaltiesSeeOnlyTheLastNTokens) {
  Sampler s(penalties(1.0f, 1.0f, 0.0f, 2), 4);
  for (TokenId id : {0, 1, 2, 2}) s.accept(id);  // 0 and 1 have left the window
  EXPECT_EQ(adjusted(s, {0.0f, 0.0f, 0.0f, 0.0f}), (std::vector<float>{0.0f, 0.0f, -2.0f, 0.0f}));
  Sampler none(penalties(1.0f, 1.0f, 0.0f, 0), 4);
  none.accept(3);
  EXPECT_EQ(adjusted(none, {0.0f, 0.0f, 0.0f, 0.0f}), (std::vector<float>(4, 0.0f)));
  Sampler all(penalties(1.0f, 1.0f, 0.0f, -1), 4);
  for (int i = 0; i < 1000; ++i) all.accept(1);
  EXPECT_EQ(adjusted(all, {0.0f, 0.0f, 0.0f, 0.0f}),
            (std::vector<float>{0.0f, -1000.0f, 0.0f, 0.0f}));
}

TEST(SamplerChain, PenaltiesComeBeforeTopK) {
  // Token 0 leads until penalised; top-k 1 then keeps token 1 at any temperature.
  SamplingOptions o = penalties(1.0f, 0.0f, 2.0f, 8);
  o.temperature = 1.0f;
  o.top_k = 1;
  Sampler s(o, 3);
  s.accept(0);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(std::vector<float>{2.0f, 1.0f, 0.0f}), 1);
}

std::map<TokenId, int> histogram(Sampler& s, const std::vector<float>& logits, int n) {
  std::map<TokenId, int> seen;
  for (int i = 0; i < n; ++i) ++seen[s.sample(logits)];
  return seen;
}

const std::vector<float> kQuarters = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                                      std::log(0.05f)};

TEST(SamplerChain, MinPDropsTokensBelowAFractionOfTheBest) {
  // min_p 0.25 of p_max 0.5 is 0.125: 0.05 goes, 0.15 stays; the rest renormalises to 0.95.
  SamplingOptions o = with(1.0f, 0, 1.0f, 3);
  o.min_p = 0.25f;
  Sampler s(o, 4);
  const int n = 6000;
  auto seen = histogram(s, kQuarters, n);
  EXPECT_EQ(seen.count(3), 0u);
  // Binomial sigma at n = 6000 is below 0.0065; 4 sigma.
  EXPECT_NEAR(seen[0] / double(n), 0.5 / 0.95, 0.026);
  EXPECT_NEAR(seen[2] / double(n), 0.15 / 0.95, 0.026);
}

TEST(SamplerChain, TypicalPKeepsTheTokensClosestToTheEntropy) {
  // Entropy 1.142 nats; surprises 0.693, 1.204, 1.897, 2.996: token 1 is the most typical,
  // then 0 (cumulative 0.8 >= 0.7), so 2 and 3 go and token 1 gets 0.3 / 0.8.
  SamplingOptions o = with(1.0f, 0, 1.0f, 5);
  o.typical_p = 0.7f;
  Sampler s(o, 4);
  const int n = 6000;
  auto seen = histogram(s, kQuarters, n);
  EXPECT_EQ(seen.count(2) + seen.count(3), 0u);
  EXPECT_NEAR(seen[1] / double(n), 0.375, 0.026);
}

TEST(SamplerChain, TruncationIsMeasuredBeforeTemperature) {
  // At temperature 10 the three tokens are nearly equally likely, but top_p looks at the
  // temperature-1 distribution (0.665, 0.245, 0.090): 0.8 keeps two of them.
  Sampler s(with(10.0f, 0, 0.8f, 9), 3);
  const int n = 4000;
  auto seen = histogram(s, {2.0f, 1.0f, 0.0f}, n);
  EXPECT_EQ(seen.count(2), 0u);
  // The two survivors at T = 10: exp(0.1) / (1 + exp(0.1)) = 0.525.
  EXPECT_NEAR(seen[0] / double(n), 0.525, 0.032);
}

TEST(SamplerChain, TopKThenTopPThenMinPCompose) {
  // Eight tokens. top_k 4 keeps 0..3: p = 0.474, 0.288, 0.174, 0.064. top_p 0.9 keeps 0..2
  // (cumulative 0.474, 0.762, 0.936), renormalised 0.507, 0.307, 0.186. min_p 0.4 sets the
  // floor at 0.203 and drops token 2. Two tokens remain.
  SamplingOptions o = with(1.0f, 4, 0.9f, 11);
  o.min_p = 0.4f;
  Sampler s(o, 8);
  const std::vector<float> logits = {3.0f, 2.5f, 2.0f, 1.0f, 0.9f, 0.8f, 0.7f, 0.6f};
  const int n = 4000;
  auto seen = histogram(s, logits, n);
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[1], 0);
  // Between them: 0.507 / 0.814 = 0.623; sigma < 0.008, 4 sigma.
  EXPECT_NEAR(seen[0] / double(n), 0.623, 0.031);
}

TEST(SamplerChain, EverythingBannedIsAnError) {
  SamplingOptions o = with(1.0f, 0, 1.0f);
  o.logit_bias = {{0, -INFINITY}, {1, -INFINITY}};
  Sampler s(o, 2);
  EXPECT_THROW(s.sample(std::vector<float>{1.0f, 2.0f}), Error);
  o.temperature = 0.0f;
  Sampler g(o, 2);
  EXPECT_THROW(g.sample(std::vector<float>{1.0f, 2.0f}), Error);
}

TEST(SamplerChain, SeededDrawsArePinned) {
  // The RNG is ours: these exact draws must come out on every platform and in WASM.
  Sampler s(with(1.0f, 0, 1.0f, 2024), 8);
  const std::vector<float> logits = {0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f};
  std::vector<TokenId> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(s.sample(logits));
  EXPECT_EQ(ids, (std::vector<TokenId>{5, 1, 3, 1, 7, 5, 1, 5, 1, 4, 4, 7}));
}

TEST(SamplerChain, RejectsInvalidNewOptions) {
  const auto message_of = [](const SamplingOptions& o) -> std::string {
    try {
      Sampler s(o, 4);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      return e.what();
    }
    return "";
  };
  SamplingOptions o = with(1.0f, 0, 1.0f);
  o.min_p = 1.5f;
  EXPECT_NE(message_of(o).find("min_p"), std::string::npos);
  o = with(1.0f, 0, 1.0f);
  o.typical_p = 0.0f;
  EXPECT_NE(message_of(o).find("typical_p"), std::string::npos);
  o = with(1.0f, 0, 1.0f);
  o.repeat_penalty = 0.0f;
  EXPECT_NE(message_of(o).find("repeat_penalty"), std::string::npos);
  o = with(1.0f, 0, 1.0f);
  o.frequency_penalty = NAN;
  EXPECT_NE(message_of(o).find("frequency_penalty"), std::string::npos);
  o = with(1.0f, 0, 1.0f);
  o.penalty_last_n = -2;
  EXPECT_NE(message_of(o).find("penalty_last_n"), std::string::npos);
  o = with(1.0f, 0, 1.0f);
  o.logit_bias = {{4, 1.0f}};
  EXPECT_NE(message_of(o).find("token id 4"), std::string::npos);
  o = with(1.0f, 0, 1.0f);
  o.logit_bias = {{0, INFINITY}};
  EXPECT_NE(message_of(o).find("logit_bias"), std::string::npos);
}

}  // namespace
}  // namespace pipit
