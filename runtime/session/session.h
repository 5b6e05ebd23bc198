// A conversation with one model: its KV cache, its position, and token-by-token generation.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "grammar/gbnf.h"
#include "grammar/matcher.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "session/stop_strings.h"
#include "tokenizer/tokenizer.h"

namespace pipit {

// What the output must look like: free text, any JSON object, or JSON matching a schema.
enum class ResponseFormat { kText, kJsonObject, kJsonSchema };

// What happens when the context is full: an error (kContextOverflow; generation ends with
// FinishReason::kContextFull), or a shift that drops the oldest tokens after the first `keep`
// and carries on, as llama.cpp's context shift does. Keys kept in the cache are turned to
// their new positions; for a model whose positions are not rotary (gpt2) the kept tokens are
// evaluated again instead. Kept keys and values still reflect the dropped tokens they saw,
// so the continuation approximates, and is not equal to, a fresh start from the kept tokens.
enum class ContextPolicy { kError, kShift };
struct ContextShift {
  ContextPolicy policy = ContextPolicy::kError;
  // Tokens at the start that are never dropped (a system prompt, BOS). -1: the prompt, up to
  // half the context.
  int keep = -1;
  // Tokens dropped per shift. 0: half of those after `keep` (at least one).
  int discard = 0;
};

struct GenerateOptions {
  int max_tokens = 256;
  SamplingOptions sampling;
  // Past an end-of-generation token, keep going (the token is fed back like any other).
  // Under a grammar, an end token is allowed only where the grammar may end, and ends.
  bool ignore_eos = false;
  int top_logits = 0;  // report this many highest logits with every step
  // Generation stops before the first of these appears in the text; none of it is shown.
  std::vector<std::string> stop;
  // Report the chosen token's log-probability and the top_logprobs most likely tokens'
  // (log-softmax of the model's raw logits, before any sampling stage, as OpenAI reports).
  bool logprobs = false;
  int top_logprobs = 0;
  // GBNF text constraining the output (empty: none); exclusive with a JSON response format.
  std::string grammar;
  ResponseFormat response_format = ResponseFormat::kText;
  std::string json_schema;  // the schema as JSON text, for kJsonSchema
  ContextShift context_shift;
};

enum class FinishReason {
  kNone,
  kEndOfGeneration,  // the model chose an end-of-generation token
  kStopString,       // a stop string appeared
  kGrammarComplete,  // the grammar's sentence is complete and nothing may follow
  kLength,
  kContextFull,
};
// "", "stop" (end of generation, stop string, grammar complete), "length", "context"
const char* finish_reason_name(FinishReason reason);

struct Step {
  TokenId token = -1;
  std::string text;  // whole UTF-8 characters only; may be empty
  FinishReason finish = FinishReason::kNone;
  // The token is an end-of-generation marker that ended generation: not part of the output.
  bool end_token = false;
  std::vector<std::pair<TokenId, float>> top_logits;    // highest first
  float logprob = 0.0f;                                 // with GenerateOptions::logprobs
  std::vector<std::pair<TokenId, float>> top_logprobs;  // highest first
};

struct Timings {
  double prefill_ms = 0;
  int prefill_tokens = 0;
  double decode_ms = 0;
  int decode_tokens = 0;
  int reused_tokens = 0;   // prompt tokens whose keys and values were kept from the last context
  double grammar_ms = 0;   // masking and advancing the grammar (part of no other timing)
  int dropped_tokens = 0;  // tokens a context shift dropped
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
  // Error(kContextOverflow) if they do not fit (and the current generation's context policy
  // is not kShift); Error(kInvalidArgument) for an id out of range.
  void eval(std::span<const TokenId> ids);
  std::span<const float> logits() const { return logits_; }

  // Starts generating after `prompt` (reset first; an empty prompt means BOS alone).
  void begin(std::span<const TokenId> prompt, const GenerateOptions& options);
  // Like begin(), but keeps the keys and values of the longest common prefix of the current
  // context and `prompt` and evaluates only the rest: a chat's next turn re-renders the whole
  // conversation, and only its new tail needs the network. At least the last prompt token is
  // evaluated so that the logits belong to this prompt. timings().reused_tokens counts the kept.
  void begin_reusing(std::span<const TokenId> prompt, const GenerateOptions& options);
  // One generated token; after a step whose finish is not kNone, generation is over.
  Step next();

  const Timings& timings() const { return timings_; }

  // Attention weights of `layer` over the current context (tokens()), every head:
  // [head][query][key], n = position() queries and keys, zero where a query may not look.
  // Replays the context through a scratch KV cache, so generation never pays for it.
  std::vector<float> attention(int layer) const;
  bool logprobs_enabled() const { return options_.logprobs; }

 private:
  void start(std::span<const TokenId> prompt, const GenerateOptions& options, bool reuse);

  // Runs ids through the network at the current position; they must fit.
  void forward(std::span<const TokenId> ids);
  // Makes room in a full context by the policy in shift_.
  void shift_context();

  // Picks the token from the current logits through the sampler and the grammar.
  TokenId choose();
  std::string release(const std::string& piece);  // through the stop strings, if any
  const Model& model_;
  int context_length_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<TokenId> tokens_;
  std::vector<float> logits_;
  GenerateOptions options_;
  ContextShift shift_;  // of the current generation, with keep resolved
  std::unique_ptr<Sampler> sampler_;
  std::unique_ptr<StreamingDetokenizer> detok_;
  std::unique_ptr<StopStrings> stops_;
  std::unique_ptr<grammar::Matcher> matcher_;
  std::unique_ptr<grammar::TokenTrie> trie_;  // the vocabulary's bytes, built on first use
  std::vector<float> work_;                   // logits as the sampler and grammar shape them
  std::vector<uint8_t> allowed_;
  int generated_ = 0;
  bool finished_ = true;
  Timings timings_;
};

}  // namespace pipit
