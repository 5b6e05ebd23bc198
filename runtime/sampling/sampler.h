// Picks the next token from logits. Deterministic for a seed on every platform: the RNG is
// our own, not std:: distributions whose output differs between standard libraries.
#pragma once

#include <cstdint>
#include <span>

#include "tokenizer/tokenizer.h"

namespace pipit {

struct SamplingOptions {
  float temperature = 0.8f;  // 0 = greedy (argmax, ties to the lowest id)
  int top_k = 40;            // 0 = all tokens
  float top_p = 0.95f;       // 1 = no nucleus cut
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  TokenId sample(std::span<const float> logits);

 private:
  double next_uniform();  // [0, 1)
  SamplingOptions options_;
  uint64_t state_;
};

}  // namespace pipit
