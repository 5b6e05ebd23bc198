#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
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

TokenId argmax(std::span<const float> logits) {
  TokenId best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = static_cast<TokenId>(i);
  }
  return best;
}

}  // namespace

Sampler::Sampler(const SamplingOptions& options) : options_(options), state_(options.seed) {
  if (!(options.temperature >= 0.0f) || !std::isfinite(options.temperature)) {
    fail(ErrorKind::kInvalidArgument,
         "temperature must be a finite number >= 0, not " + std::to_string(options.temperature));
  }
  if (options.top_k < 0) {
    fail(ErrorKind::kInvalidArgument,
         "top_k must be >= 0 (0 = no limit), not " + std::to_string(options.top_k));
  }
  if (!(options.top_p > 0.0f && options.top_p <= 1.0f)) {
    fail(ErrorKind::kInvalidArgument,
         "top_p must be in (0, 1], not " + std::to_string(options.top_p));
  }
}

double Sampler::next_uniform() {
  return static_cast<double>(splitmix64(state_) >> 11) * 0x1p-53;
}

// The chain: greedy when temperature is 0; otherwise keep the top_k highest logits, turn them
// into probabilities at the temperature, keep the smallest set whose mass reaches top_p, and
// draw from what is left.
TokenId Sampler::sample(std::span<const float> logits) {
  if (options_.temperature == 0.0f) return argmax(logits);

  struct Candidate {
    TokenId id;
    float logit;
  };
  std::vector<Candidate> c(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c[i] = {static_cast<TokenId>(i), logits[i]};
  const auto higher = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  size_t keep = c.size();
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < keep) {
    keep = static_cast<size_t>(options_.top_k);
  }
  std::partial_sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(keep), c.end(), higher);
  c.resize(keep);

  std::vector<double> p(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    p[i] = std::exp(static_cast<double>(c[i].logit - c[0].logit) / options_.temperature);
    total += p[i];
  }
  if (options_.top_p < 1.0f) {
    double mass = 0.0;
    size_t cut = 0;
    while (cut < keep) {
      mass += p[cut++] / total;
      if (mass >= options_.top_p) break;
    }
    keep = cut;
    total = 0.0;
    for (size_t i = 0; i < keep; ++i) total += p[i];
  }

  double u = next_uniform() * total;
  for (size_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0.0) return c[i].id;
  }
  return c[keep - 1].id;
}

}  // namespace pipit
