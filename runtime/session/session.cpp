#include "session/session.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "core/error.h"
#include "model/kv_cache.h"

namespace pipit {
namespace {

// Long prompts run through the network in slices, bounding the scratch memory of a forward.
constexpr int kPrefillChunk = 256;
constexpr int kDefaultContextCap = 4096;
constexpr int kMaxThreads = 64;

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
      .count();
}

}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "";
    case FinishReason::kEndOfGeneration:
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
  kv_ = model.new_kv_cache(context_length_);
  pool_ = std::make_unique<ThreadPool>(threads);
  logits_.resize(static_cast<size_t>(model.config().n_vocab));
}

Session::~Session() = default;

void Session::reset() {
  tokens_.clear();
  finished_ = true;
  timings_ = {};
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
  if (ids.size() > static_cast<size_t>(context_length_ - position())) {
    fail(ErrorKind::kContextOverflow, std::to_string(ids.size()) +
                                          " tokens do not fit in the context: it holds " +
                                          std::to_string(context_length_) + " tokens and " +
                                          std::to_string(position()) + " are already used");
  }
  ThreadPool::Scope scope(pool_.get());
  for (size_t start = 0; start < ids.size(); start += kPrefillChunk) {
    const size_t n = std::min<size_t>(kPrefillChunk, ids.size() - start);
    const auto chunk = ids.subspan(start, n);
    model_.forward(chunk, position(), *kv_, logits_.data());
    tokens_.insert(tokens_.end(), chunk.begin(), chunk.end());
  }
}

void Session::begin(std::span<const TokenId> prompt, const GenerateOptions& options) {
  if (options.max_tokens < 0) {
    fail(ErrorKind::kInvalidArgument,
         "max_tokens must be >= 0, not " + std::to_string(options.max_tokens));
  }
  if (options.top_logits < 0) {
    fail(ErrorKind::kInvalidArgument,
         "top_logits must be >= 0, not " + std::to_string(options.top_logits));
  }
  auto sampler = std::make_unique<Sampler>(options.sampling);
  std::vector<TokenId> ids(prompt.begin(), prompt.end());
  if (ids.empty()) {
    const TokenId bos = model_.tokenizer().vocab().bos;
    if (bos < 0) {
      fail(ErrorKind::kInvalidArgument,
           "the prompt is empty and this model has no BOS token to start from");
    }
    ids.push_back(bos);
  }
  reset();
  const auto start = std::chrono::steady_clock::now();
  eval(ids);
  timings_.prefill_ms = elapsed_ms(start);
  timings_.prefill_tokens = static_cast<int>(ids.size());
  options_ = options;
  sampler_ = std::move(sampler);
  // Generated text continues the prompt, so its first piece keeps its leading space.
  detok_ = std::make_unique<StreamingDetokenizer>(model_.tokenizer(), TextPosition::kContinuation);
  generated_ = 0;
  finished_ = options.max_tokens == 0;
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
  step.token = sampler_->sample(logits_);
  if (!options_.ignore_eos && model_.tokenizer().vocab().is_end_of_generation(step.token)) {
    step.finish = FinishReason::kEndOfGeneration;
    step.text = detok_->flush();
    finished_ = true;
    return step;
  }
  step.text = detok_->push(step.token);
  ++generated_;
  if (generated_ >= options_.max_tokens) {
    step.finish = FinishReason::kLength;
  } else if (position() >= context_length_) {
    step.finish = FinishReason::kContextFull;
  }
  if (step.finish != FinishReason::kNone) {
    step.text += detok_->flush();
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
