// A conversation with one model: its KV cache, its position, and token-by-token generation.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace pipit {

struct GenerateOptions {
  int max_tokens = 256;
  SamplingOptions sampling;
  bool ignore_eos = false;
  int top_logits = 0;  // report this many highest logits with every step
};

enum class FinishReason { kNone, kEndOfGeneration, kLength, kContextFull };
const char* finish_reason_name(FinishReason reason);  // "", "stop", "length", "context"

struct Step {
  TokenId token = -1;
  std::string text;  // whole UTF-8 characters only; may be empty
  FinishReason finish = FinishReason::kNone;
  std::vector<std::pair<TokenId, float>> top_logits;  // highest first
};

struct Timings {
  double prefill_ms = 0;
  int prefill_tokens = 0;
  double decode_ms = 0;
  int decode_tokens = 0;
};

class Session {
 public:
  // context_length 0 picks the model's trained context, capped at 4096. threads counts the
  // calling thread; the session keeps its workers for its lifetime.
  Session(const Model& model, int context_length, int threads = 1);
  ~Session();

  int context_length() const { return context_length_; }
  int position() const { return static_cast<int>(tokens_.size()); }
  const std::vector<TokenId>& tokens() const { return tokens_; }

  void reset();
  // Appends tokens to the context and computes the logits after the last one.
  // Error(kContextOverflow) if they do not fit; Error(kInvalidArgument) for an id out of range.
  void eval(std::span<const TokenId> ids);
  std::span<const float> logits() const { return logits_; }

  // Starts generating after `prompt` (reset first; an empty prompt means BOS alone).
  void begin(std::span<const TokenId> prompt, const GenerateOptions& options);
  // One generated token; after a step whose finish is not kNone, generation is over.
  Step next();

  const Timings& timings() const { return timings_; }

 private:
  const Model& model_;
  int context_length_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<TokenId> tokens_;
  std::vector<float> logits_;
  GenerateOptions options_;
  std::unique_ptr<Sampler> sampler_;
  std::unique_ptr<StreamingDetokenizer> detok_;
  int generated_ = 0;
  bool finished_ = true;
  Timings timings_;
};

}  // namespace pipit
