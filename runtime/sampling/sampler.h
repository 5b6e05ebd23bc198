// Picks the next token from logits. Deterministic for a seed on every platform: the RNG is
// our own (splitmix64), not std:: distributions whose output differs between standard
// libraries, so native, Node and browser runs of one build draw the same tokens.
//
// The chain, in order, and why that order:
//   1. logit bias      the caller's explicit wishes act on the model's own scores; a bias of
//                      -infinity bans a token from every later stage.
//   2. penalties       repetition (llama.cpp/CTRL style: positive logits divided, negative
//                      ones multiplied), then frequency (minus count * f) and presence (minus p
//                      once seen), all over the last `penalty_last_n` accepted tokens. They
//                      come before any cut so that a penalised token can fall out of top-k.
//   3. mask            what the caller (the session's grammar) forbids is -infinity; applied
//                      before the cuts so that top-k/top-p choose among allowed tokens only.
//   4. greedy          temperature 0 takes the argmax here (ties: the lowest id).
//   5. top-k, typical-p, top-p, min-p
//                      the truncations, llama.cpp's default order, each measured on the
//                      softmax at temperature 1 of what the previous one kept. Measuring them
//                      before temperature makes "how many tokens survive" independent of how
//                      hot the draw is, so temperature only reshapes the survivors.
//   6. temperature     the survivors' logits divided by T, softmax, one draw.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace pipit {

struct SamplingOptions {
  float temperature = 0.8f;        // 0 = greedy (argmax, ties to the lowest id)
  int top_k = 40;                  // 0 = all tokens
  float top_p = 0.95f;             // 1 = no nucleus cut
  float min_p = 0.0f;              // keep tokens with p >= min_p * p_max; 0 = off
  float typical_p = 1.0f;          // locally typical sampling mass; 1 = off
  float repeat_penalty = 1.0f;     // 1 = off
  float frequency_penalty = 0.0f;  // 0 = off
  float presence_penalty = 0.0f;   // 0 = off
  int penalty_last_n = 64;         // window of accepted tokens; 0 = none, -1 = all
  std::vector<std::pair<TokenId, float>> logit_bias;  // added to the logit; -inf bans
  uint64_t seed = 0;
};

class Sampler {
 public:
  // Error(kInvalidArgument) naming the option for values out of range, and for logit bias
  // ids outside the vocabulary of n_vocab tokens.
  Sampler(const SamplingOptions& options, int32_t n_vocab);

  // Records a token (of the prompt or generated) in the penalty window.
  void accept(TokenId id);

  // Stages 1 and 2: bias and penalties, in place. No randomness.
  void adjust(std::span<float> logits) const;
  // Stages 4 to 6 on logits already adjusted (and masked by the caller). Error(kInvalidArgument)
  // when every logit is -infinity: nothing is left to choose.
  TokenId draw(std::span<const float> logits);
  // adjust + draw on a copy, for callers without a mask.
  TokenId sample(std::span<const float> logits);

  bool greedy() const { return options_.temperature == 0.0f; }

 private:
  double next_uniform();  // [0, 1)
  SamplingOptions options_;
  uint64_t state_;
  std::vector<TokenId> window_;  // ring buffer of the last penalty_last_n accepted tokens
  size_t window_next_ = 0;
  std::vector<int> counts_;  // occurrences of each id in window_ (empty without penalties)
};

// Index of the largest value, ties to the lowest index; -1 when all are -infinity.
TokenId argmax(std::span<const float> logits);

}  // namespace pipit
