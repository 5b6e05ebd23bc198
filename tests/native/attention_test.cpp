// causal_attention's output against softmax(q·k * scale)·v computed directly in double
// precision, for shapes that take each of its paths: query heads sharing a kv head (taken as
// one work item, or one head an item when a 2-thread pool would otherwise idle), runs of four
// keys and the keys left over, head sizes with and without a partial vector, several tokens at
// once after earlier ones, and a sliding window.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/blocks.h"
#include "model/kv_cache.h"

namespace pipit {
namespace {

struct Shape {
  int n_head, n_head_kv, head_dim;
  int pos0, n;  // n new tokens after pos0 cached ones
  int window;
};

std::string describe(const Shape& s, int threads) {
  return std::to_string(s.n_head) + "/" + std::to_string(s.n_head_kv) + " heads of " +
         std::to_string(s.head_dim) + ", " + std::to_string(s.n) + " tokens after " +
         std::to_string(s.pos0) + ", window " + std::to_string(s.window) + ", " +
         std::to_string(threads) + " threads";
}

void check_against_direct(const Shape& s) {
  const int hd = s.head_dim, kv_dim = s.n_head_kv * hd, q_dim = s.n_head * hd;
  const int total = s.pos0 + s.n, layer = 1;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> k(static_cast<size_t>(total) * kv_dim), v(k.size());
  std::vector<float> q(static_cast<size_t>(s.n) * q_dim);
  for (float& x : k) x = normal(rng);
  for (float& x : v) x = normal(rng);
  for (float& x : q) x = normal(rng);

  KvCache kv(2, total, s.n_head_kv, hd);
  // The cached positions first, then the new ones, as a decode step stores them.
  blocks::store_kv(kv, layer, 0, s.pos0, k.data(), v.data());
  blocks::store_kv(kv, layer, s.pos0, s.n, k.data() + s.pos0 * kv_dim, v.data() + s.pos0 * kv_dim);
  blocks::Attention a;
  a.n_head = s.n_head;
  a.n_head_kv = s.n_head_kv;
  a.head_dim = hd;
  a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  a.window = s.window;

  const int group = s.n_head / s.n_head_kv;
  std::vector<double> expected(q.size());
  for (int t = 0; t < s.n; ++t) {
    const int pos = s.pos0 + t;
    const int first = s.window > 0 ? std::max(0, pos - s.window + 1) : 0;
    for (int h = 0; h < s.n_head; ++h) {
      const int kv_off = (h / group) * hd;
      std::vector<double> w(static_cast<size_t>(pos + 1), 0.0);
      double max_score = -1e300, sum = 0.0;
      for (int p = first; p <= pos; ++p) {
        double dot = 0.0;
        for (int i = 0; i < hd; ++i) {
          dot += static_cast<double>(q[t * q_dim + h * hd + i]) * k[p * kv_dim + kv_off + i];
        }
        w[p] = dot * a.scale;
        max_score = std::max(max_score, w[p]);
      }
      for (int p = first; p <= pos; ++p) sum += w[p] = std::exp(w[p] - max_score);
      for (int i = 0; i < hd; ++i) {
        double out = 0.0;
        for (int p = first; p <= pos; ++p) out += w[p] / sum * v[p * kv_dim + kv_off + i];
        expected[t * q_dim + h * hd + i] = out;
      }
    }
  }

  for (int threads : {1, 2}) {
    if (threads > 1 && !ThreadPool::threads_available()) continue;  // the single-thread WASM build
    SCOPED_TRACE(describe(s, threads));
    ThreadPool pool(threads);
    ThreadPool::Scope scope(&pool);
    std::vector<float> out(q.size(), -1.0f);
    blocks::causal_attention(a, kv, layer, s.n, s.pos0, q.data(), out.data());
    for (size_t i = 0; i < out.size(); ++i) {
      // Outputs are averages of N(0, 1) values: f32 sums of a few hundred terms stay within
      // 1e-5 of the exact ones.
      ASSERT_NEAR(out[i], expected[i], 1e-5) << "output " << i;
    }
  }
}

TEST(Attention, DecodeOutputMatchesADirectComputation) {
  check_against_direct({9, 3, 64, 160, 1, 0});   // SmolLM2-135M's heads
  check_against_direct({14, 2, 64, 130, 1, 0});  // Qwen2.5-0.5B's
  check_against_direct({4, 4, 32, 6, 1, 0});     // no sharing; fewer than eight keys
  check_against_direct({6, 2, 20, 33, 1, 0});    // a head size that ends in a partial vector
  check_against_direct({8, 8, 64, 0, 1, 0});     // the first token: one key
}

TEST(Attention, PrefillOutputMatchesADirectComputation) {
  check_against_direct({9, 3, 64, 0, 23, 0});
  check_against_direct({14, 2, 64, 17, 9, 0});
  check_against_direct({4, 1, 12, 5, 6, 0});
}

TEST(Attention, SlidingWindowOutputMatchesADirectComputation) {
  check_against_direct({8, 4, 64, 40, 3, 16});
  check_against_direct({6, 3, 32, 0, 20, 7});
}

}  // namespace
}  // namespace pipit
