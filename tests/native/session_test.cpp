#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/model.h"
#include "session/session.h"
#include "session/stop_strings.h"
#include "test_support.h"

namespace pipit {
namespace {

class SessionTest : public testing::StoriesModelTest {
 protected:
  ErrorKind error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      last_message_ = e.what();
      return e.kind();
    }
    return ErrorKind::kInternal;
  }

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

TEST(StopStrings, HoldsBackPossibleStartsAndFindsStopsSplitAcrossPieces) {
  StopStrings s({"END", "xy"});
  EXPECT_EQ(s.push("abc E"), "abc ");  // "E" might start END
  EXPECT_EQ(s.push("N"), "");          // "EN" still might
  EXPECT_EQ(s.push("d"), "ENd");       // it was not
  EXPECT_EQ(s.push("x"), "");
  EXPECT_EQ(s.push("x"), "x");  // the first x cannot start a match any more; the second can
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.push("yz tail"), "");  // "xy" found: nothing from it on is shown
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.push("more"), "");
  StopStrings t({"END"});
  EXPECT_EQ(t.push("a EN"), "a ");
  EXPECT_EQ(t.flush(), "EN");  // generation ended for another reason: the held text comes out
  EXPECT_THROW(StopStrings({""}), Error);
}

TEST(StopStrings, TheEarliestStopWins) {
  StopStrings s({"cd", "abcdef"});
  EXPECT_EQ(s.push("xxabcdefg"), "xx");  // abcdef starts first, though cd ends first
  EXPECT_TRUE(s.stopped());
}

std::vector<Step> generate_all(Session& session, std::span<const TokenId> prompt,
                               const GenerateOptions& options) {
  session.begin(prompt, options);
  std::vector<Step> steps;
  do {
    steps.push_back(session.next());
  } while (steps.back().finish == FinishReason::kNone);
  return steps;
}

TEST_F(SessionTest, StopStringsAcrossTokensEndGenerationAndAreNotShown) {
  Session session(*model_, 128);
  GenerateOptions options;
  options.max_tokens = 40;
  options.sampling.temperature = 0.0f;
  std::string full;
  std::vector<std::string> pieces;
  for (const Step& s : generate_all(session, {}, options)) {
    full += s.text;
    pieces.push_back(s.text);
  }
  // A stop string that starts inside one token's text and ends inside a later one.
  size_t boundary = 0;
  size_t k = 0;
  while (k + 2 < pieces.size() && (pieces[k].size() < 2 || pieces[k + 1].size() < 2)) {
    boundary += pieces[k++].size();
  }
  ASSERT_LT(k + 2, pieces.size());
  boundary += pieces[k].size();
  const std::string stop = full.substr(boundary - 1, 3);  // last char of k, two of k + 1
  ASSERT_EQ(full.find(stop), boundary - 1) << "pick a stop string that occurs once: " << stop;
  options.stop = {"never appears", stop};
  std::string shown;
  const std::vector<Step> steps = generate_all(session, {}, options);
  for (const Step& s : steps) shown += s.text;
  EXPECT_EQ(shown, full.substr(0, boundary - 1));
  EXPECT_EQ(steps.back().finish, FinishReason::kStopString);
  EXPECT_STREQ(finish_reason_name(steps.back().finish), "stop");
  EXPECT_FALSE(steps.back().end_token);
  EXPECT_EQ(steps.size(), k + 2);  // the token that completed it is the last step
}

TEST_F(SessionTest, LogprobsAreTheLogSoftmaxOfTheRawLogits) {
  Session session(*model_, 64);
  GenerateOptions options;
  options.max_tokens = 4;
  options.sampling.temperature = 1.5f;
  options.sampling.top_k = 3;  // sampling transforms must not change the reported values
  options.sampling.seed = 5;
  options.logprobs = true;
  options.top_logprobs = 512;
  options.top_logits = 512;
  for (const Step& step : generate_all(session, std::vector<TokenId>{1, 403}, options)) {
    ASSERT_EQ(step.top_logprobs.size(), 512u);
    double total = 0.0;
    for (const auto& [id, lp] : step.top_logprobs) total += std::exp(static_cast<double>(lp));
    EXPECT_NEAR(total, 1.0, 1e-4);
    // Same order as the logits, and differences between logprobs are differences of logits.
    for (size_t i = 0; i < 512; ++i) {
      ASSERT_EQ(step.top_logprobs[i].first, step.top_logits[i].first);
      EXPECT_NEAR(step.top_logprobs[i].second - step.top_logprobs[0].second,
                  step.top_logits[i].second - step.top_logits[0].second, 1e-4f);
      if (step.top_logprobs[i].first == step.token) {
        EXPECT_EQ(step.logprob, step.top_logprobs[i].second);
      }
    }
  }
}

TEST_F(SessionTest, GrammarEndsGenerationWhenComplete) {
  Session session(*model_, 64);
  GenerateOptions options;
  options.max_tokens = 50;
  options.sampling.temperature = 0.0f;
  options.grammar = "root ::= \"Once\" [a-z ]{1,6} \".\"\n";
  std::string text;
  const std::vector<Step> steps = generate_all(session, {}, options);
  for (const Step& s : steps) text += s.text;
  EXPECT_EQ(steps.back().finish, FinishReason::kGrammarComplete);
  ASSERT_GE(text.size(), 6u);
  EXPECT_EQ(text.substr(0, 4), "Once");
  EXPECT_EQ(text.back(), '.');
  EXPECT_GT(session.timings().grammar_ms, 0.0);
}

}  // namespace
}  // namespace pipit
