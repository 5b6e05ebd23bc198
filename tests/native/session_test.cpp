#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/model.h"
#include "session/session.h"
#include "test_support.h"

namespace pipit {
namespace {

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = testing::model_path("stories260K/stories260K.gguf");
    PIPIT_REQUIRE_FILE(path);
    size_t size = 0;
    OwnedBytes bytes = read_file(path, &size);
    model_ = Model::load(std::move(bytes), size, {});
  }

  ErrorKind error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      last_message_ = e.what();
      return e.kind();
    }
    return ErrorKind::kInternal;
  }

  std::unique_ptr<Model> model_;
  std::string last_message_;
};

TEST_F(SessionTest, PromptLongerThanTheContextIsAClearError) {
  Session session(*model_, 8);
  std::vector<TokenId> prompt(9, 300);
  EXPECT_EQ(error_of([&] { session.eval(prompt); }), ErrorKind::kContextOverflow);
  EXPECT_NE(last_message_.find("holds 8 tokens"), std::string::npos) << last_message_;
  // The session is still usable after the refusal.
  session.eval(std::vector<TokenId>(8, 300));
  EXPECT_EQ(session.position(), 8);
  EXPECT_EQ(error_of([&] { session.eval(std::vector<TokenId>{1}); }), ErrorKind::kContextOverflow);
}

TEST_F(SessionTest, TokenIdsOutOfRangeAreRefused) {
  Session session(*model_, 16);
  EXPECT_EQ(error_of([&] {
              session.eval(std::vector<TokenId>{1, 512});
            }),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_of([&] { session.eval(std::vector<TokenId>{-1}); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(session.position(), 0);
}

TEST_F(SessionTest, GenerationStopsAtTheContextEnd) {
  Session session(*model_, 10);
  GenerateOptions options;
  options.max_tokens = 100;
  options.sampling.temperature = 0.0f;
  options.ignore_eos = true;
  session.begin({}, options);
  int steps = 0;
  Step step;
  do {
    step = session.next();
    ++steps;
  } while (step.finish == FinishReason::kNone);
  EXPECT_EQ(step.finish, FinishReason::kContextFull);
  EXPECT_EQ(steps, 10);  // BOS + 9 fed back, the 10th sampled from the last logits
}

TEST_F(SessionTest, PromptIsBatchedTheSameAsOneByOne) {
  const std::vector<TokenId> prompt = {1, 403, 407, 261, 378};
  Session batched(*model_, 64), stepped(*model_, 64);
  batched.eval(prompt);
  for (TokenId id : prompt) stepped.eval(std::span<const TokenId>(&id, 1));
  const auto a = batched.logits(), b = stepped.logits();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4f) << i;
}

TEST_F(SessionTest, TopLogitsComeHighestFirstAndIncludeTheGreedyToken) {
  Session session(*model_, 32);
  GenerateOptions options;
  options.max_tokens = 3;
  options.sampling.temperature = 0.0f;
  options.top_logits = 5;
  session.begin(std::vector<TokenId>{1, 403}, options);
  for (int i = 0; i < 3; ++i) {
    Step step = session.next();
    ASSERT_EQ(step.top_logits.size(), 5u);
    EXPECT_EQ(step.top_logits[0].first, step.token);
    for (size_t k = 1; k < 5; ++k)
      EXPECT_GE(step.top_logits[k - 1].second, step.top_logits[k].second);
  }
}

TEST_F(SessionTest, SeededSamplingRepeats) {
  auto run = [&](uint64_t seed) {
    Session session(*model_, 64);
    GenerateOptions options;
    options.max_tokens = 20;
    // stories260K is so sure of its story that only a hot, uncut distribution varies it.
    options.sampling.temperature = 2.0f;
    options.sampling.top_k = 0;
    options.sampling.top_p = 1.0f;
    options.sampling.seed = seed;
    session.begin({}, options);
    std::vector<TokenId> ids;
    for (;;) {
      Step step = session.next();
      ids.push_back(step.token);
      if (step.finish != FinishReason::kNone) break;
    }
    return ids;
  };
  EXPECT_EQ(run(123), run(123));
  EXPECT_NE(run(123), run(124));
}

TEST_F(SessionTest, InvalidGenerateOptionsAreRefused) {
  Session session(*model_, 16);
  GenerateOptions options;
  options.max_tokens = -1;
  EXPECT_EQ(error_of([&] { session.begin({}, options); }), ErrorKind::kInvalidArgument);
  options.max_tokens = 4;
  options.sampling.top_p = 2.0f;
  EXPECT_EQ(error_of([&] { session.begin({}, options); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_of([&] { Session(*model_, -5); }), ErrorKind::kInvalidArgument);
}

// A chat's next turn: the conversation so far plus a new tail. Reusing the cached prefix must
// give the logits (and so the continuation) a fresh prefill of the whole prompt gives.
TEST_F(SessionTest, ReusedPrefixGivesTheLogitsOfAFreshPrefill) {
  GenerateOptions options;
  options.max_tokens = 6;
  options.sampling.temperature = 0.0f;
  options.ignore_eos = true;
  Session reused(*model_, 128);
  const std::vector<TokenId> turn1 = {1, 403, 407, 261, 378, 300};
  reused.begin_reusing(turn1, options);
  EXPECT_EQ(reused.timings().reused_tokens, 0);
  EXPECT_EQ(reused.timings().prefill_tokens, 6);
  std::vector<TokenId> turn2 = turn1;
  for (;;) {
    const Step step = reused.next();
    turn2.push_back(step.token);
    if (step.finish != FinishReason::kNone) break;
  }
  // The context now holds turn1 and every generated token but the last (never fed back).
  ASSERT_EQ(reused.position(), static_cast<int>(turn2.size()) - 1);
  for (TokenId id : {411, 262, 299}) turn2.push_back(id);

  auto expect_fresh_logits = [&](const std::vector<TokenId>& prompt) {
    Session fresh(*model_, 128);
    fresh.begin(prompt, options);
    EXPECT_EQ(fresh.timings().reused_tokens, 0);
    const auto a = reused.logits(), b = fresh.logits();
    ASSERT_EQ(a.size(), b.size());
    float worst = 0.0f;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
    EXPECT_LE(worst, 1e-4f);
    // And the continuations agree token for token.
    for (;;) {
      const Step x = reused.next(), y = fresh.next();
      EXPECT_EQ(x.token, y.token);
      if (x.finish != FinishReason::kNone || y.finish != FinishReason::kNone) break;
    }
  };

  const int context_before = reused.position();
  reused.begin_reusing(turn2, options);
  EXPECT_EQ(reused.timings().reused_tokens, context_before);
  EXPECT_EQ(reused.timings().prefill_tokens, static_cast<int>(turn2.size()) - context_before);
  expect_fresh_logits(turn2);

  // An edit in the middle keeps only what comes before it.
  std::vector<TokenId> edited = turn2;
  edited[3] = 290;
  reused.begin_reusing(edited, options);
  EXPECT_EQ(reused.timings().reused_tokens, 3);
  expect_fresh_logits(edited);

  // The same prompt again still evaluates its last token, so the logits are fresh.
  reused.begin_reusing(edited, options);
  EXPECT_EQ(reused.timings().reused_tokens, static_cast<int>(edited.size()) - 1);
  EXPECT_EQ(reused.timings().prefill_tokens, 1);
  expect_fresh_logits(edited);

  // begin() never reuses.
  reused.begin(edited, options);
  EXPECT_EQ(reused.timings().reused_tokens, 0);
  EXPECT_EQ(reused.timings().prefill_tokens, static_cast<int>(edited.size()));
}

TEST_F(SessionTest, ReusingAPrefixStillRefusesAnOverflow) {
  GenerateOptions options;
  options.max_tokens = 1;
  Session session(*model_, 8);
  session.begin_reusing(std::vector<TokenId>{1, 300, 301}, options);
  std::vector<TokenId> longer = {1, 300, 301, 302, 303, 304, 305, 306, 307};
  EXPECT_EQ(error_of([&] { session.begin_reusing(longer, options); }), ErrorKind::kContextOverflow);
  // Refused before anything was evaluated: the prefix is still there to reuse.
  longer.resize(8);
  session.begin_reusing(longer, options);
  EXPECT_EQ(session.timings().reused_tokens, 3);
  EXPECT_EQ(session.position(), 8);
}

}  // namespace
}  // namespace pipit
