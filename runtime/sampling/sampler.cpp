#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"

namespace pipit {
namespace {

// splitmix64: tiny, fast, and the same numbers everywhere for a seed.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void invalid(const std::string& message) {
  fail(ErrorKind::kInvalidArgument, message);
}

std::string str(float v) {
  return std::to_string(v);
}

struct Candidate {
  TokenId id;
  float logit;
  double p;  // softmax at temperature 1 over the current candidates
};

bool higher(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// Softmax at temperature 1 of the candidates, which are sorted highest first or not at all.
void normalize(std::vector<Candidate>& c) {
  float max = -std::numeric_limits<float>::infinity();
  for (const Candidate& x : c) max = std::max(max, x.logit);
  double total = 0.0;
  for (Candidate& x : c) total += x.p = std::exp(static_cast<double>(x.logit) - max);
  for (Candidate& x : c) x.p /= total;
}

// Keeps the shortest prefix whose probability mass reaches `mass` (at least one candidate).
void keep_mass(std::vector<Candidate>& c, double mass) {
  double sum = 0.0;
  size_t keep = 0;
  while (keep < c.size()) {
    sum += c[keep++].p;
    if (sum >= mass) break;
  }
  c.resize(keep);
}

}  // namespace

TokenId argmax(std::span<const float> logits) {
  TokenId best = -1;
  float best_logit = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > best_logit) {
      best_logit = logits[i];
      best = static_cast<TokenId>(i);
    }
  }
  return best;
}

Sampler::Sampler(const SamplingOptions& options, int32_t n_vocab)
    : options_(options), state_(options.seed) {
  const SamplingOptions& o = options;
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature)) {
    invalid("temperature must be a finite number >= 0, not " + str(o.temperature));
  }
  if (o.top_k < 0) invalid("top_k must be >= 0 (0 = no limit), not " + std::to_string(o.top_k));
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) invalid("top_p must be in (0, 1], not " + str(o.top_p));
  if (!(o.min_p >= 0.0f && o.min_p <= 1.0f))
    invalid("min_p must be in [0, 1], not " + str(o.min_p));
  if (!(o.typical_p > 0.0f && o.typical_p <= 1.0f)) {
    invalid("typical_p must be in (0, 1], not " + str(o.typical_p));
  }
  if (!(o.repeat_penalty > 0.0f) || !std::isfinite(o.repeat_penalty)) {
    invalid("repeat_penalty must be a finite number > 0 (1 = off), not " + str(o.repeat_penalty));
  }
  if (!std::isfinite(o.frequency_penalty)) {
    invalid("frequency_penalty must be finite, not " + str(o.frequency_penalty));
  }
  if (!std::isfinite(o.presence_penalty)) {
    invalid("presence_penalty must be finite, not " + str(o.presence_penalty));
  }
  if (o.penalty_last_n < -1) {
    invalid("penalty_last_n must be >= -1 (-1 = every token, 0 = none), not " +
            std::to_string(o.penalty_last_n));
  }
  for (const auto& [id, bias] : o.logit_bias) {
    if (id < 0 || id >= n_vocab) {
      invalid("logit_bias names token id " + std::to_string(id) + ", outside the vocabulary of " +
              std::to_string(n_vocab) + " tokens");
    }
    if (std::isnan(bias) || bias == std::numeric_limits<float>::infinity()) {
      invalid("logit_bias for token " + std::to_string(id) +
              " must be a finite number or -infinity (a ban), not " + str(bias));
    }
  }
  const bool penalties =
      o.repeat_penalty != 1.0f || o.frequency_penalty != 0.0f || o.presence_penalty != 0.0f;
  if (penalties && o.penalty_last_n != 0) counts_.assign(static_cast<size_t>(n_vocab), 0);
}

void Sampler::accept(TokenId id) {
  if (counts_.empty() || id < 0 || static_cast<size_t>(id) >= counts_.size()) return;
  ++counts_[static_cast<size_t>(id)];
  if (options_.penalty_last_n < 0) return;  // every token counts forever
  const size_t n = static_cast<size_t>(options_.penalty_last_n);
  if (window_.size() < n) {
    window_.push_back(id);
    return;
  }
  --counts_[static_cast<size_t>(window_[window_next_])];
  window_[window_next_] = id;
  window_next_ = (window_next_ + 1) % n;
}

void Sampler::adjust(std::span<float> logits) const {
  for (const auto& [id, bias] : options_.logit_bias) logits[static_cast<size_t>(id)] += bias;
  if (counts_.empty()) return;
  const size_t n = std::min(counts_.size(), logits.size());
  for (size_t i = 0; i < n; ++i) {
    const int count = counts_[i];
    if (count == 0) continue;
    float& l = logits[i];
    l = l > 0.0f ? l / options_.repeat_penalty : l * options_.repeat_penalty;
    l -= static_cast<float>(count) * options_.frequency_penalty + options_.presence_penalty;
  }
}

double Sampler::next_uniform() {
  return static_cast<double>(splitmix64(state_) >> 11) * 0x1p-53;
}

TokenId Sampler::draw(std::span<const float> logits) {
  if (greedy()) {
    const TokenId best = argmax(logits);
    if (best < 0) invalid("every token is banned (by logit bias or the grammar)");
    return best;
  }
  std::vector<Candidate> c;
  c.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > -std::numeric_limits<float>::infinity()) {
      c.push_back({static_cast<TokenId>(i), logits[i], 0.0});
    }
  }
  if (c.empty()) invalid("every token is banned (by logit bias or the grammar)");

  // top-k, and the sort by logit that typical-p and top-p need.
  const bool cut_by_mass = options_.typical_p < 1.0f || options_.top_p < 1.0f;
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < c.size()) {
    const auto k = static_cast<std::ptrdiff_t>(options_.top_k);
    std::partial_sort(c.begin(), c.begin() + k, c.end(), higher);
    c.resize(static_cast<size_t>(k));
  } else if (cut_by_mass) {
    std::sort(c.begin(), c.end(), higher);
  }
  normalize(c);

  if (options_.typical_p < 1.0f) {
    // Keep the tokens whose surprise (-log p) is closest to the entropy, up to typical_p mass.
    double entropy = 0.0;
    for (const Candidate& x : c) {
      if (x.p > 0.0) entropy -= x.p * std::log(x.p);
    }
    std::vector<std::pair<double, size_t>> order(c.size());
    for (size_t i = 0; i < c.size(); ++i) {
      const double surprise = c[i].p > 0.0 ? -std::log(c[i].p) : 1e300;
      order[i] = {std::abs(surprise - entropy), i};
    }
    std::stable_sort(order.begin(), order.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<Candidate> typical;
    double sum = 0.0;
    for (const auto& [distance, i] : order) {
      typical.push_back(c[i]);
      sum += c[i].p;
      if (sum >= options_.typical_p) break;
    }
    std::sort(typical.begin(), typical.end(), higher);
    c = std::move(typical);
    normalize(c);
  }

  if (options_.top_p < 1.0f) {
    keep_mass(c, options_.top_p);
    normalize(c);
  }

  if (options_.min_p > 0.0f) {
    double p_max = 0.0;
    for (const Candidate& x : c) p_max = std::max(p_max, x.p);
    const double floor = options_.min_p * p_max;
    std::erase_if(c, [&](const Candidate& x) { return x.p < floor; });
  }

  // Temperature: weights relative to the best survivor, so exp never overflows.
  float max = -std::numeric_limits<float>::infinity();
  for (const Candidate& x : c) max = std::max(max, x.logit);
  std::vector<double> w(c.size());
  double total = 0.0;
  for (size_t i = 0; i < c.size(); ++i) {
    total += w[i] = std::exp(static_cast<double>(c[i].logit - max) / options_.temperature);
  }
  double u = next_uniform() * total;
  for (size_t i = 0; i < c.size(); ++i) {
    u -= w[i];
    if (u < 0.0) return c[i].id;
  }
  return c.back().id;
}

TokenId Sampler::sample(std::span<const float> logits) {
  std::vector<float> work(logits.begin(), logits.end());
  adjust(work);
  return draw(work);
}

}  // namespace pipit
