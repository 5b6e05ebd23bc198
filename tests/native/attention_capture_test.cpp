// The attention weights the "look inside" views show: captured from causal_attention and
// replayed by Session::attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "model/blocks.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "session/session.h"
#include "test_support.h"

namespace pipit {
namespace {

// Random queries, keys and values for n positions; attention computed both by the block (with
// capture) and directly as softmax(q·k / sqrt(d)) in double precision.
void check_capture_against_direct_softmax(int window) {
  const int n = 7, n_head = 4, n_head_kv = 2, hd = 8, layer = 1, n_layer = 2;
  const int kv_dim = n_head_kv * hd, q_dim = n_head * hd;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(n) * q_dim), k(static_cast<size_t>(n) * kv_dim),
      v(k.size());
  for (float& x : q) x = normal(rng);
  for (float& x : k) x = normal(rng);
  for (float& x : v) x = normal(rng);

  KvCache kv(n_layer, n, n_head_kv, hd);
  blocks::store_kv(kv, layer, 0, n, k.data(), v.data());
  blocks::Attention a;
  a.n_head = n_head;
  a.n_head_kv = n_head_kv;
  a.head_dim = hd;
  a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  a.window = window;

  std::vector<float> plain(q.size()), captured_out(q.size());
  blocks::causal_attention(a, kv, layer, n, 0, q.data(), plain.data());

  std::vector<float> weights(static_cast<size_t>(n_head) * n * n, 0.0f);
  AttentionCapture capture{layer, n_head, n, weights.data()};
  kv.capture = &capture;
  // Another layer's call must leave the capture alone.
  std::vector<float> other(q.size());
  blocks::causal_attention(a, kv, 0, n, 0, q.data(), other.data());
  EXPECT_TRUE(std::all_of(weights.begin(), weights.end(), [](float w) { return w == 0.0f; }));
  blocks::causal_attention(a, kv, layer, n, 0, q.data(), captured_out.data());
  EXPECT_EQ(plain, captured_out) << "capturing must not change the attention output";

  const int group = n_head / n_head_kv;
  for (int h = 0; h < n_head; ++h) {
    for (int t = 0; t < n; ++t) {
      const int first = window > 0 ? std::max(0, t - window + 1) : 0;
      std::vector<double> expected(static_cast<size_t>(n), 0.0);
      double max_score = -1e300, sum = 0.0;
      for (int p = first; p <= t; ++p) {
        double dot = 0.0;
        for (int i = 0; i < hd; ++i) {
          dot +=
              static_cast<double>(q[t * q_dim + h * hd + i]) * k[p * kv_dim + (h / group) * hd + i];
        }
        expected[p] = dot / std::sqrt(static_cast<double>(hd));
        max_score = std::max(max_score, expected[p]);
      }
      for (int p = first; p <= t; ++p) sum += expected[p] = std::exp(expected[p] - max_score);
      double row_sum = 0.0;
      for (int p = 0; p < n; ++p) {
        const float w = weights[(static_cast<size_t>(h) * n + t) * n + p];
        row_sum += w;
        if (p < first || p > t) {
          EXPECT_EQ(w, 0.0f) << "head " << h << " query " << t << " key " << p;
        } else {
          EXPECT_NEAR(w, expected[p] / sum, 1e-5) << "head " << h << " query " << t << " key " << p;
        }
      }
      EXPECT_NEAR(row_sum, 1.0, 1e-5);
    }
  }
}

TEST(AttentionCapture, MatchesADirectSoftmaxOfQueriesTimesKeys) {
  check_capture_against_direct_softmax(0);
}

TEST(AttentionCapture, SlidingWindowKeysBeyondTheWindowAreZero) {
  check_capture_against_direct_softmax(3);
}

using SessionAttentionTest = testing::StoriesModelTest;

TEST_F(SessionAttentionTest, RowsAreCausalDistributionsAndPrefixesAgree) {
  const ModelConfig& c = model_->config();
  const std::vector<TokenId> ids =
      model_->tokenizer().encode("Once upon a time, there was a cat", true, false);
  const int n = static_cast<int>(ids.size());
  Session whole(*model_, 64), prefix(*model_, 64);
  whole.eval(ids);
  prefix.eval(std::span<const TokenId>(ids).first(5));
  std::vector<float> logits_before(whole.logits().begin(), whole.logits().end());
  for (int layer : {0, c.n_layer - 1}) {
    const std::vector<float> w = whole.attention(layer);
    const std::vector<float> p = prefix.attention(layer);
    ASSERT_EQ(w.size(), static_cast<size_t>(c.n_head) * n * n);
    ASSERT_EQ(p.size(), static_cast<size_t>(c.n_head) * 5 * 5);
    bool some_row_is_not_one_hot = false;
    for (int h = 0; h < c.n_head; ++h) {
      for (int t = 0; t < n; ++t) {
        double sum = 0.0;
        float top = 0.0f;
        for (int key = 0; key < n; ++key) {
          const float x = w[(static_cast<size_t>(h) * n + t) * n + key];
          if (key > t) {
            EXPECT_EQ(x, 0.0f);
          }
          EXPECT_GE(x, 0.0f);
          sum += x;
          top = std::max(top, x);
          // Attention is causal: the first 5 queries see the same keys in the shorter context.
          if (t < 5 && key < 5) {
            EXPECT_NEAR(x, p[(static_cast<size_t>(h) * 5 + t) * 5 + key], 1e-5);
          }
        }
        EXPECT_NEAR(sum, 1.0, 1e-5) << "layer " << layer << " head " << h << " query " << t;
        if (t > 0 && top < 0.99f) some_row_is_not_one_hot = true;
      }
    }
    EXPECT_TRUE(some_row_is_not_one_hot);
  }
  // The replay leaves the session as it was.
  EXPECT_EQ(whole.position(), n);
  EXPECT_TRUE(std::equal(logits_before.begin(), logits_before.end(), whole.logits().begin()));
}

TEST_F(SessionAttentionTest, BadLayerOrEmptyContextIsAClearError) {
  Session session(*model_, 16);
  try {
    (void)session.attention(0);
    ADD_FAILURE() << "an empty context has no attention";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  }
  session.eval(std::vector<TokenId>{1, 300});
  try {
    (void)session.attention(model_->config().n_layer);
    ADD_FAILURE() << "layer out of range";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("layer must be from 0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pipit
