#include "session/session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"
#include "core/memory.h"
#include "grammar/json_schema.h"
#include "model/kv_cache.h"

namespace pipit {
namespace {

// Long prompts run through the network in slices, bounding the scratch memory of a forward.
constexpr int kPrefillChunk = 256;
constexpr int kDefaultContextCap = 4096;
constexpr int kMaxThreads = 64;
// Bounds the weights one attention() call returns (256 MB of floats).
constexpr size_t kMaxAttentionWeights = size_t{64} << 20;

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
      .count();
}

// What a session allocates besides its KV cache, for the memory check: the activations of one
// prefill chunk (residual, normed copy, q, k, v, attention output, FFN gate/up and their
// quantized copies) and the logits with their working copies. Attention scores add a row per
// worker that grows with the context: they are counted per position.
uint64_t session_fixed_bytes(const ModelConfig& c, int context_length) {
  const uint64_t n = static_cast<uint64_t>(std::min(kPrefillChunk, context_length));
  const uint64_t q_dim = static_cast<uint64_t>(c.n_head) * c.head_dim;
  const uint64_t kv_dim = static_cast<uint64_t>(c.n_head_kv) * c.head_dim;
  const uint64_t floats =
      n * (2 * uint64_t(c.n_embd) + 2 * q_dim + 2 * kv_dim + 3 * uint64_t(c.n_ff)) +
      3 * uint64_t(c.n_vocab);
  const uint64_t quantized = n * std::max(c.n_embd, c.n_ff) * 2;
  return floats * sizeof(float) + quantized;
}

// Keys and values of every layer, plus each worker's attention score for the position.
uint64_t session_bytes_per_position(const ModelConfig& c, int threads) {
  return 2 * sizeof(float) * uint64_t(c.n_layer) * c.n_head_kv * c.head_dim +
         sizeof(float) * uint64_t(threads);
}

// Error(kOutOfMemory) before allocating, when the KV cache and scratch of this context cannot
// fit in what is left of the memory budget; the message says how long a context would fit.
void check_session_memory(const ModelConfig& c, int context_length, int threads) {
  const uint64_t per_position = session_bytes_per_position(c, threads);
  const uint64_t fixed = session_fixed_bytes(c, context_length);
  const uint64_t needed = fixed + per_position * context_length;
  const uint64_t available = memory_available();
  if (needed <= available) return;
  // The fixed part is largest for a full prefill chunk, and a sixteenth of what is free is
  // left for what else gets allocated meanwhile (in WASM the heap in use moves): the advised
  // context fits when the caller tries it.
  const uint64_t fixed_most = session_fixed_bytes(c, kPrefillChunk);
  const uint64_t usable = available - available / 16;
  const uint64_t fits = usable > fixed_most ? (usable - fixed_most) / per_position : 0;
  const std::string advice =
      fits >= 1 ? "use a smaller contextLength (" + std::to_string(fits) + " tokens fit now)"
                : "even a short context does not fit: free other models (dispose()) or use a "
                  "smaller model";
  check_memory(needed,
               "a context of " + std::to_string(context_length) + " tokens (KV cache and " +
                   "attention " + megabytes(per_position * context_length) + ", scratch " +
                   megabytes(fixed) + ")",
               advice);
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "";
    case FinishReason::kEndOfGeneration:
    case FinishReason::kStopString:
    case FinishReason::kGrammarComplete:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kContextFull:
      return "context";
  }
  return "";
}

Session::Session(const Model& model, int context_length, int threads) : model_(model) {
  if (threads < 1 || threads > kMaxThreads) {
    fail(ErrorKind::kInvalidArgument, "threads must be between 1 and " +
                                          std::to_string(kMaxThreads) + ", not " +
                                          std::to_string(threads));
  }
  if (context_length < 0) {
    fail(ErrorKind::kInvalidArgument,
         "context length must be positive, not " + std::to_string(context_length));
  }
  context_length_ = context_length > 0 ? context_length
                                       : std::min(model.config().n_ctx_train, kDefaultContextCap);
  check_session_memory(model.config(), context_length_, threads);
  kv_ = model.new_kv_cache(context_length_);
  pool_ = std::make_unique<ThreadPool>(threads);
  logits_.resize(static_cast<size_t>(model.config().n_vocab));
}

Session::~Session() = default;

void Session::reset() {
  tokens_.clear();
  finished_ = true;
  timings_ = {};
  shift_ = {};
}

void Session::eval(std::span<const TokenId> ids) {
  const int n_vocab = model_.config().n_vocab;
  for (TokenId id : ids) {
    if (id < 0 || id >= n_vocab) {
      fail(ErrorKind::kInvalidArgument, "token id " + std::to_string(id) +
                                            " is out of range (the vocabulary has " +
                                            std::to_string(n_vocab) + " tokens)");
    }
  }
  if (shift_.policy == ContextPolicy::kError &&
      ids.size() > static_cast<size_t>(context_length_ - position())) {
    fail(ErrorKind::kContextOverflow,
         std::to_string(ids.size()) + " tokens do not fit in the context: it holds " +
             std::to_string(context_length_) + " tokens and " + std::to_string(position()) +
             " are already used; shorten the prompt, load the model with a larger "
             "contextLength, or use contextShift: 'shift'");
  }
  ThreadPool::Scope scope(pool_.get());
  for (size_t done = 0; done < ids.size();) {
    if (position() == context_length_) shift_context();
    const size_t n = std::min(ids.size() - done, static_cast<size_t>(context_length_ - position()));
    forward(ids.subspan(done, n));
    done += n;
  }
}

void Session::forward(std::span<const TokenId> ids) {
  for (size_t start = 0; start < ids.size(); start += kPrefillChunk) {
    const size_t n = std::min<size_t>(kPrefillChunk, ids.size() - start);
    const auto chunk = ids.subspan(start, n);
    model_.forward(chunk, position(), *kv_, logits_.data());
    tokens_.insert(tokens_.end(), chunk.begin(), chunk.end());
  }
}

void Session::shift_context() {
  // start() keeps `keep` below the context length, so at least one token can go.
  const int used = position(), keep = shift_.keep, after_keep = used - keep;
  const int discard =
      shift_.discard > 0 ? std::min(shift_.discard, after_keep) : std::max(1, after_keep / 2);
  const auto first = tokens_.begin() + keep;
  tokens_.erase(first, first + discard);
  timings_.dropped_tokens += discard;
  if (const ops::Rope* rotation = model_.key_rotation(context_length_)) {
    kv_->drop(keep, discard, used, *rotation);
    return;
  }
  // Positions are not a rotation of the cached keys: compute the kept tokens again.
  const std::vector<TokenId> kept = std::move(tokens_);
  tokens_.clear();
  forward(kept);
}

std::vector<float> Session::attention(int layer) const {
  const ModelConfig& config = model_.config();
  if (layer < 0 || layer >= config.n_layer) {
    fail(ErrorKind::kInvalidArgument, "layer must be from 0 to " +
                                          std::to_string(config.n_layer - 1) + ", not " +
                                          std::to_string(layer));
  }
  const int n = position();
  if (n == 0) {
    fail(ErrorKind::kInvalidArgument, "the context is empty: generate something first");
  }
  const size_t count = static_cast<size_t>(config.n_head) * n * n;
  if (count > kMaxAttentionWeights) {
    fail(ErrorKind::kOutOfMemory, "the attention weights of " + std::to_string(n) + " tokens and " +
                                      std::to_string(config.n_head) + " heads take " +
                                      std::to_string(count * sizeof(float) >> 20) +
                                      " MB, more than the " +
                                      std::to_string(kMaxAttentionWeights * sizeof(float) >> 20) +
                                      " MB allowed; use a shorter context");
  }
  std::vector<float> weights(count, 0.0f);
  AttentionCapture capture{layer, config.n_head, n, weights.data()};
  const auto kv = model_.new_kv_cache(n);
  kv->capture = &capture;
  std::vector<float> logits(static_cast<size_t>(config.n_vocab));
  ThreadPool::Scope scope(pool_.get());
  const std::span<const TokenId> ids(tokens_);
  for (int start = 0; start < n; start += kPrefillChunk) {
    const auto chunk = ids.subspan(start, std::min(kPrefillChunk, n - start));
    model_.forward(chunk, start, *kv, logits.data());
  }
  return weights;
}

void Session::begin(std::span<const TokenId> prompt, const GenerateOptions& options) {
  start(prompt, options, false);
}

void Session::begin_reusing(std::span<const TokenId> prompt, const GenerateOptions& options) {
  start(prompt, options, true);
}

void Session::start(std::span<const TokenId> prompt, const GenerateOptions& options, bool reuse) {
  if (options.max_tokens < 0) {
    fail(ErrorKind::kInvalidArgument,
         "max_tokens must be >= 0, not " + std::to_string(options.max_tokens));
  }
  if (options.top_logits < 0) {
    fail(ErrorKind::kInvalidArgument,
         "top_logits must be >= 0, not " + std::to_string(options.top_logits));
  }
  const ContextShift& shift = options.context_shift;
  if (shift.keep < -1 || shift.keep >= context_length_ || shift.discard < 0) {
    fail(ErrorKind::kInvalidArgument,
         "context shift: keep must be from -1 to " + std::to_string(context_length_ - 1) +
             " (less than the context length) and discard >= 0, not keep " +
             std::to_string(shift.keep) + ", discard " + std::to_string(shift.discard));
  }
  const int n_vocab = model_.config().n_vocab;
  if (options.top_logprobs < 0 || options.top_logprobs > n_vocab) {
    fail(ErrorKind::kInvalidArgument, "top_logprobs must be from 0 to " + std::to_string(n_vocab) +
                                          ", not " + std::to_string(options.top_logprobs));
  }
  auto sampler = std::make_unique<Sampler>(options.sampling, n_vocab);
  auto stops = options.stop.empty() ? nullptr : std::make_unique<StopStrings>(options.stop);
  // Every option is checked (grammars compiled) before the session's state changes.
  std::string gbnf;
  switch (options.response_format) {
    case ResponseFormat::kText:
      gbnf = options.grammar;
      break;
    case ResponseFormat::kJsonObject:
      gbnf = grammar::json_object_gbnf();
      break;
    case ResponseFormat::kJsonSchema:
      gbnf = grammar::json_schema_to_gbnf(options.json_schema);
      break;
  }
  if (options.response_format != ResponseFormat::kText && !options.grammar.empty()) {
    fail(ErrorKind::kInvalidArgument, "a grammar and a JSON response format cannot be combined");
  }
  std::unique_ptr<grammar::Matcher> matcher;
  if (!gbnf.empty()) {
    matcher = std::make_unique<grammar::Matcher>(
        std::make_shared<const grammar::Grammar>(grammar::parse_gbnf(gbnf)));
    if (!trie_) {
      std::vector<std::string> bytes(static_cast<size_t>(n_vocab));
      for (TokenId id = 0; id < n_vocab; ++id) {
        if (!model_.tokenizer().vocab().is_end_of_generation(id)) {
          bytes[static_cast<size_t>(id)] = model_.tokenizer().token_bytes(id);
        }
      }
      trie_ = std::make_unique<grammar::TokenTrie>(bytes);
    }
  }
  std::vector<TokenId> ids(prompt.begin(), prompt.end());
  if (ids.empty()) {
    const TokenId bos = model_.tokenizer().vocab().bos;
    if (bos < 0) {
      fail(ErrorKind::kInvalidArgument,
           "the prompt is empty and this model has no BOS token to start from");
    }
    ids.push_back(bos);
  }
  size_t keep = 0;
  if (reuse) {
    const size_t limit = std::min(tokens_.size(), ids.size() - 1);
    while (keep < limit && tokens_[keep] == ids[keep]) ++keep;
  }
  // Positions past `keep` hold stale keys and values; the evaluation below overwrites them,
  // and attention never reads beyond the current position.
  tokens_.resize(keep);
  finished_ = true;
  timings_ = {};
  shift_ = options.context_shift;
  if (shift_.keep < 0) shift_.keep = std::min(static_cast<int>(ids.size()), context_length_ / 2);
  const auto started = std::chrono::steady_clock::now();
  eval(std::span<const TokenId>(ids).subspan(keep));
  timings_.prefill_ms = elapsed_ms(started);
  timings_.prefill_tokens = static_cast<int>(ids.size() - keep);
  timings_.reused_tokens = static_cast<int>(keep);
  options_ = options;
  for (TokenId id : ids) sampler->accept(id);  // the prompt counts towards repetition
  sampler_ = std::move(sampler);
  stops_ = std::move(stops);
  matcher_ = std::move(matcher);
  // Generated text continues the prompt, so its first piece keeps its leading space.
  detok_ = std::make_unique<StreamingDetokenizer>(model_.tokenizer(), TextPosition::kContinuation);
  generated_ = 0;
  finished_ = options.max_tokens == 0;
}

std::string Session::release(const std::string& piece) {
  return stops_ ? stops_->push(piece) : piece;
}

TokenId Session::choose() {
  work_.assign(logits_.begin(), logits_.end());
  sampler_->adjust(work_);
  if (!matcher_) return sampler_->draw(work_);

  const auto start = std::chrono::steady_clock::now();
  const Vocab& vocab = model_.tokenizer().vocab();
  const bool can_end = matcher_->can_end();
  // Greedy needs only to know whether the argmax is allowed; when it is, the full mask would
  // change nothing. Sampling draws from the masked distribution, so it always masks.
  bool masked = true;
  if (sampler_->greedy()) {
    const TokenId best = argmax(work_);
    if (best >= 0 && vocab.is_end_of_generation(best)) {
      masked = !can_end;
    } else if (best >= 0) {
      const std::string bytes = model_.tokenizer().token_bytes(best);
      masked = bytes.empty() || !matcher_->accepts(bytes);
    }
  }
  if (masked) {
    matcher_->mask(*trie_, allowed_);
    const float banned = -std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < work_.size(); ++i) {
      if (allowed_[i] == 0 && !(can_end && vocab.is_end_of_generation(static_cast<TokenId>(i)))) {
        work_[i] = banned;
      }
    }
  }
  timings_.grammar_ms += elapsed_ms(start);
  if (argmax(work_) < 0) {
    fail(ErrorKind::kInvalidArgument,
         "no token of this vocabulary can continue the grammar here (or logit bias banned them)");
  }
  return sampler_->draw(work_);
}

Step Session::next() {
  Step step;
  if (finished_) {
    step.finish = FinishReason::kLength;
    return step;
  }
  if (options_.top_logits > 0) {
    std::vector<std::pair<TokenId, float>> all(logits_.size());
    for (size_t i = 0; i < logits_.size(); ++i) all[i] = {static_cast<TokenId>(i), logits_[i]};
    const size_t k = std::min(all.size(), static_cast<size_t>(options_.top_logits));
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                      [](const auto& a, const auto& b) {
                        return a.second > b.second || (a.second == b.second && a.first < b.first);
                      });
    step.top_logits.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k));
  }
  step.token = choose();
  if (options_.logprobs) {
    // log p = logit - max - log(sum exp(logit - max)), in double for the sum.
    float max = -std::numeric_limits<float>::infinity();
    for (float l : logits_) max = std::max(max, l);
    double sum = 0.0;
    for (float l : logits_) sum += std::exp(static_cast<double>(l) - max);
    const float shift = max + static_cast<float>(std::log(sum));
    step.logprob = logits_[static_cast<size_t>(step.token)] - shift;
    if (options_.top_logprobs > 0) {
      std::vector<TokenId> order(logits_.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<TokenId>(i);
      const auto k = static_cast<std::ptrdiff_t>(options_.top_logprobs);
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](TokenId a, TokenId b) {
        const float la = logits_[static_cast<size_t>(a)], lb = logits_[static_cast<size_t>(b)];
        return la > lb || (la == lb && a < b);
      });
      for (std::ptrdiff_t i = 0; i < k; ++i) {
        step.top_logprobs.push_back({order[i], logits_[static_cast<size_t>(order[i])] - shift});
      }
    }
  }
  sampler_->accept(step.token);
  const bool end = model_.tokenizer().vocab().is_end_of_generation(step.token);
  if (end && (!options_.ignore_eos || matcher_)) {
    step.finish = FinishReason::kEndOfGeneration;
    step.end_token = true;
  } else {
    if (matcher_) {
      const auto start = std::chrono::steady_clock::now();
      if (!matcher_->advance(model_.tokenizer().token_bytes(step.token))) {
        fail(ErrorKind::kInternal,
             "the grammar refused token " + std::to_string(step.token) + " after allowing it");
      }
      timings_.grammar_ms += elapsed_ms(start);
    }
    step.text = release(detok_->push(step.token));
    ++generated_;
    if (stops_ && stops_->stopped()) {
      step.finish = FinishReason::kStopString;
    } else if (matcher_ && matcher_->done()) {
      step.finish = FinishReason::kGrammarComplete;
    } else if (generated_ >= options_.max_tokens) {
      step.finish = FinishReason::kLength;
    } else if (position() >= context_length_ && shift_.policy == ContextPolicy::kError) {
      step.finish = FinishReason::kContextFull;
    }
  }
  if (step.finish != FinishReason::kNone) {
    if (step.finish != FinishReason::kStopString) {
      // Text still pending (an unfinished character, a possible stop string's start) comes
      // out now, unless it completes a stop string after all.
      step.text += release(detok_->flush());
      if (stops_ && stops_->stopped()) {
        step.finish = FinishReason::kStopString;
      } else if (stops_) {
        step.text += stops_->flush();
      }
    }
    finished_ = true;
    return step;
  }
  const auto start = std::chrono::steady_clock::now();
  const TokenId token = step.token;
  eval({&token, 1});
  timings_.decode_ms += elapsed_ms(start);
  ++timings_.decode_tokens;
  return step;
}

}  // namespace pipit
