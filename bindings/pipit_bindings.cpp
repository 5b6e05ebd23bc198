// Embind glue between the C++ runtime and the TypeScript package (web/src). Thin on purpose:
// every function converts arguments, calls the runtime, and converts the result. Errors leave
// as JavaScript Errors whose `pipitKind` names the pipit::ErrorKind; web/src/errors.ts maps
// that to the exported Error subclasses.
#include <emscripten.h>
#include <emscripten/bind.h>
#include <emscripten/heap.h>
#include <emscripten/val.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/memory.h"
#include "core/utf8.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "session/session.h"
#include "tokenizer/tokenizer.h"

using emscripten::val;

// Raises a JS Error without eval. Called only after the C++ catch block has ended, so no C++
// exception is in flight while JavaScript unwinds the wasm frames.
EM_JS(void, pipit_throw_js_error, (const char* kind, const char* msg), {
  const e = new Error(UTF8ToString(msg));
  e.pipitKind = UTF8ToString(kind);
  throw e;
});

namespace {

// The pending error lives in statics so that the strings outlive the catch block.
std::string g_error_kind;
std::string g_error_message;

[[noreturn]] void raise_pending() {
  pipit_throw_js_error(g_error_kind.c_str(), g_error_message.c_str());
  __builtin_unreachable();
}

// Runs `f`; a C++ exception becomes a JS Error carrying its kind.
template <typename F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const pipit::Error& e) {
    g_error_kind = pipit::error_kind_name(e.kind());
    g_error_message = e.what();
  } catch (const std::bad_alloc&) {
    g_error_kind = pipit::error_kind_name(pipit::ErrorKind::kOutOfMemory);
    g_error_message = "out of memory: the WASM heap could not grow past " +
                      pipit::megabytes(pipit::memory_in_use()) + " (its limit is " +
                      pipit::megabytes(pipit::memory_budget()) +
                      "); dispose() other models, or use a smaller contextLength or model";
  } catch (const std::exception& e) {
    g_error_kind = pipit::error_kind_name(pipit::ErrorKind::kInternal);
    g_error_message = std::string("internal error: ") + e.what();
  }
  raise_pending();
}

// An Int32Array copy of the ids: one copy out of WASM memory rather than a JS call per id,
// which dominated tokenizing long texts.
val ids_to_array(const std::vector<pipit::TokenId>& ids) {
  return val::global("Int32Array").new_(emscripten::typed_memory_view(ids.size(), ids.data()));
}

std::vector<pipit::TokenId> array_to_ids(const val& ids) {
  return emscripten::vecFromJSArray<pipit::TokenId>(ids);
}

std::string token_text(const pipit::Vocab& vocab, pipit::TokenId id) {
  return id >= 0 && id < vocab.size() ? vocab.text[static_cast<size_t>(id)] : std::string();
}

class SessionHandle {
 public:
  SessionHandle(std::shared_ptr<const pipit::Model> model, int context_length, int threads)
      : model_(std::move(model)), session_(*model_, context_length, threads) {}

  int contextLength() const { return session_.context_length(); }
  int position() const { return session_.position(); }

  // options: { maxTokens, temperature, topK, topP, minP, typicalP, repeatPenalty,
  // frequencyPenalty, presencePenalty, penaltyLastN, logitBias: [[id, bias], ...], seed,
  // ignoreEos, topLogits, stop: [string], logprobs, topLogprobs, grammar,
  // responseFormat: 'text' | 'json_object' | 'json_schema', jsonSchema: string, reusePrefix,
  // contextShift: 'error' | 'shift', nKeep, nDiscard },
  // all present (the TypeScript layer fills in defaults and validates ranges; the runtime
  // checks again).
  void begin(const val& prompt_ids, const val& options) {
    guarded([&] {
      pipit::GenerateOptions o;
      o.max_tokens = options["maxTokens"].as<int>();
      pipit::SamplingOptions& s = o.sampling;
      s.temperature = options["temperature"].as<float>();
      s.top_k = options["topK"].as<int>();
      s.top_p = options["topP"].as<float>();
      s.min_p = options["minP"].as<float>();
      s.typical_p = options["typicalP"].as<float>();
      s.repeat_penalty = options["repeatPenalty"].as<float>();
      s.frequency_penalty = options["frequencyPenalty"].as<float>();
      s.presence_penalty = options["presencePenalty"].as<float>();
      s.penalty_last_n = options["penaltyLastN"].as<int>();
      const val bias = options["logitBias"];
      const unsigned n_bias = bias["length"].as<unsigned>();
      for (unsigned i = 0; i < n_bias; ++i) {
        s.logit_bias.emplace_back(bias[i][0].as<pipit::TokenId>(), bias[i][1].as<float>());
      }
      s.seed = static_cast<uint64_t>(options["seed"].as<double>());
      o.ignore_eos = options["ignoreEos"].as<bool>();
      o.top_logits = options["topLogits"].as<int>();
      o.stop = emscripten::vecFromJSArray<std::string>(options["stop"]);
      o.logprobs = options["logprobs"].as<bool>();
      o.top_logprobs = options["topLogprobs"].as<int>();
      o.grammar = options["grammar"].as<std::string>();
      const std::string format = options["responseFormat"].as<std::string>();
      if (format == "json_object") {
        o.response_format = pipit::ResponseFormat::kJsonObject;
      } else if (format == "json_schema") {
        o.response_format = pipit::ResponseFormat::kJsonSchema;
        o.json_schema = options["jsonSchema"].as<std::string>();
      }
      if (options["contextShift"].as<std::string>() == "shift") {
        o.context_shift.policy = pipit::ContextPolicy::kShift;
      }
      o.context_shift.keep = options["nKeep"].as<int>();
      o.context_shift.discard = options["nDiscard"].as<int>();
      const std::vector<pipit::TokenId> ids = array_to_ids(prompt_ids);
      if (options["reusePrefix"].as<bool>()) {
        session_.begin_reusing(ids, o);
      } else {
        session_.begin(ids, o);
      }
    });
  }

  // OpenAI's shape for one token: { token, logprob, bytes }.
  val token_logprob(pipit::TokenId id, float logprob) const {
    const std::string bytes = model_->tokenizer().token_bytes(id);
    val b = val::array();
    for (size_t i = 0; i < bytes.size(); ++i) b.set(i, static_cast<uint8_t>(bytes[i]));
    val out = val::object();
    out.set("token", pipit::utf8::sanitize(bytes));
    out.set("logprob", logprob);
    out.set("bytes", b);
    return out;
  }

  val next() {
    return guarded([&] {
      const pipit::Step step = session_.next();
      val out = val::object();
      out.set("token", step.token);
      out.set("text", step.text);
      out.set("finish", std::string(pipit::finish_reason_name(step.finish)));
      out.set("endToken", step.end_token);
      if (!step.top_logits.empty()) {
        val top = val::array();
        for (size_t i = 0; i < step.top_logits.size(); ++i) {
          val pair = val::array();
          pair.set(0, step.top_logits[i].first);
          pair.set(1, step.top_logits[i].second);
          top.set(i, pair);
        }
        out.set("topLogits", top);
      }
      if (step.token >= 0 && session_.logprobs_enabled()) {
        val lp = token_logprob(step.token, step.logprob);
        val top = val::array();
        for (size_t i = 0; i < step.top_logprobs.size(); ++i) {
          top.set(i, token_logprob(step.top_logprobs[i].first, step.top_logprobs[i].second));
        }
        lp.set("top_logprobs", top);
        out.set("logprobs", lp);
      }
      return out;
    });
  }

  void reset() {
    guarded([&] { session_.reset(); });
  }

  val contextTokens() const { return ids_to_array(session_.tokens()); }

  // A Float32Array copy of Session::attention(layer): [head][query][key].
  val attention(int layer) const {
    return guarded([&] {
      const std::vector<float> weights = session_.attention(layer);
      return val::global("Float32Array")
          .new_(emscripten::typed_memory_view(weights.size(), weights.data()));
    });
  }

  val timings() const {
    const pipit::Timings& t = session_.timings();
    val out = val::object();
    out.set("prefillMs", t.prefill_ms);
    out.set("prefillTokens", t.prefill_tokens);
    out.set("decodeMs", t.decode_ms);
    out.set("decodeTokens", t.decode_tokens);
    out.set("reusedTokens", t.reused_tokens);
    out.set("grammarMs", t.grammar_ms);
    out.set("droppedTokens", t.dropped_tokens);
    return out;
  }

 private:
  std::shared_ptr<const pipit::Model> model_;  // keeps the model alive while a session exists
  pipit::Session session_;
};

class ModelHandle {
 public:
  explicit ModelHandle(std::shared_ptr<const pipit::Model> model) : model_(std::move(model)) {}

  val info() const {
    const pipit::ModelConfig& c = model_->config();
    const pipit::Vocab& vocab = model_->tokenizer().vocab();
    val types = val::object();
    for (const auto& [name, count] : model_->tensor_type_counts()) types.set(name, count);
    val out = val::object();
    out.set("architecture", c.architecture);
    out.set("name", c.name);
    out.set("nVocab", c.n_vocab);
    out.set("contextLength", c.n_ctx_train);
    out.set("nEmbd", c.n_embd);
    out.set("nLayer", c.n_layer);
    out.set("nHead", c.n_head);
    out.set("nHeadKv", c.n_head_kv);
    out.set("nFf", c.n_ff);
    out.set("tensorTypes", types);
    out.set("fileBytes", static_cast<double>(model_->file_size()));
    out.set("bosId", vocab.bos);
    out.set("eosId", vocab.eos);
    out.set("addBos", vocab.add_bos);
    out.set("bosToken", token_text(vocab, vocab.bos));
    out.set("eosToken", token_text(vocab, vocab.eos));
    // Chat front ends render this Jinja template; null when the file has none.
    const pipit::gguf::Value* chat_template = model_->file().find("tokenizer.chat_template");
    if (chat_template != nullptr && chat_template->type() == pipit::gguf::ValueType::kString) {
      out.set("chatTemplate", std::string(chat_template->as_string()));
    } else {
      out.set("chatTemplate", val::null());
    }
    return out;
  }

  val tokenize(const std::string& text, bool add_bos, bool parse_special) const {
    return guarded(
        [&] { return ids_to_array(model_->tokenizer().encode(text, add_bos, parse_special)); });
  }

  std::string detokenize(const val& ids) const {
    return guarded([&] {
      const std::vector<pipit::TokenId> v = array_to_ids(ids);
      return model_->tokenizer().decode(v);
    });
  }

  SessionHandle* createSession(int context_length, int threads) const {
    return guarded([&] { return new SessionHandle(model_, context_length, threads); });
  }

 private:
  std::shared_ptr<const pipit::Model> model_;
};

// Takes ownership of `size` bytes at `ptr`, which JavaScript allocated with _malloc and filled:
// the file is copied into WASM memory once and never again. Freed here even when loading fails.
ModelHandle* loadModel(uintptr_t ptr, double size, bool allow_duplicate_keys) {
  pipit::OwnedBytes bytes(reinterpret_cast<uint8_t*>(ptr));
  return guarded([&] {
    pipit::LoadOptions options;
    options.allow_duplicate_keys = allow_duplicate_keys;
    std::shared_ptr<const pipit::Model> model =
        pipit::Model::load(std::move(bytes), static_cast<size_t>(size), options);
    return new ModelHandle(std::move(model));
  });
}

// loadModel for the files of a split set, in order: parallel arrays of pointers and sizes,
// all owned (and freed on failure) like loadModel's one.
ModelHandle* loadModelParts(const val& ptrs, const val& sizes, bool allow_duplicate_keys) {
  const auto n = ptrs["length"].as<size_t>();
  std::vector<pipit::ModelBuffer> buffers(n);
  for (size_t i = 0; i < n; ++i) {
    buffers[i].bytes.reset(reinterpret_cast<uint8_t*>(ptrs[i].as<uintptr_t>()));
  }
  return guarded([&] {
    if (sizes["length"].as<size_t>() != n) {
      pipit::fail(pipit::ErrorKind::kInternal, "loadModelParts: one size per pointer");
    }
    for (size_t i = 0; i < n; ++i) buffers[i].size = static_cast<size_t>(sizes[i].as<double>());
    pipit::LoadOptions options;
    options.allow_duplicate_keys = allow_duplicate_keys;
    std::shared_ptr<const pipit::Model> model = pipit::Model::load(std::move(buffers), options);
    return new ModelHandle(std::move(model));
  });
}

// A tokenizer without a model, for vocab-only GGUFs (tensor_count 0) and for tokenizing
// without loading weights.
class TokenizerHandle {
 public:
  TokenizerHandle(std::unique_ptr<pipit::Tokenizer> tokenizer, std::string model, std::string pre,
                  std::string name)
      : tokenizer_(std::move(tokenizer)),
        model_(std::move(model)),
        pre_(std::move(pre)),
        name_(std::move(name)) {}

  val info() const {
    const pipit::Vocab& vocab = tokenizer_->vocab();
    val out = val::object();
    out.set("model", model_);
    out.set("pre", pre_);
    out.set("name", name_);
    out.set("nVocab", vocab.size());
    out.set("bosId", vocab.bos);
    out.set("eosId", vocab.eos);
    out.set("addBos", vocab.add_bos);
    out.set("endOfGeneration", ids_to_array(vocab.end_of_generation));
    return out;
  }

  val tokenize(const std::string& text, bool add_bos, bool parse_special) const {
    return guarded([&] { return ids_to_array(tokenizer_->encode(text, add_bos, parse_special)); });
  }

  std::string detokenize(const val& ids) const {
    return guarded([&] {
      const std::vector<pipit::TokenId> v = array_to_ids(ids);
      return tokenizer_->decode(v);
    });
  }

 private:
  std::unique_ptr<pipit::Tokenizer> tokenizer_;
  std::string model_, pre_, name_;
};

// Like loadModel, but reads only tokenizer.ggml.*; the bytes are freed before returning
// (the tokenizer keeps its own copy of what it needs).
TokenizerHandle* loadTokenizer(uintptr_t ptr, double size, bool allow_duplicate_keys) {
  pipit::OwnedBytes bytes(reinterpret_cast<uint8_t*>(ptr));
  return guarded([&] {
    pipit::gguf::ParseOptions options;
    options.allow_duplicate_keys = allow_duplicate_keys;
    const pipit::gguf::File file = pipit::gguf::File::parse(
        std::span<const uint8_t>(bytes.get(), static_cast<size_t>(size)), options);
    return new TokenizerHandle(pipit::Tokenizer::from_gguf(file),
                               std::string(file.get_string("tokenizer.ggml.model", "")),
                               std::string(file.get_string("tokenizer.ggml.pre", "")),
                               std::string(file.get_string("general.name", "")));
  });
}

}  // namespace

EMSCRIPTEN_BINDINGS(pipit) {
  // Sessions check their KV cache and scratch against what the heap can still grow to.
  pipit::set_memory_budget(emscripten_get_heap_max());

  emscripten::class_<SessionHandle>("Session")
      .function("contextLength", &SessionHandle::contextLength)
      .function("position", &SessionHandle::position)
      .function("begin", &SessionHandle::begin)
      .function("next", &SessionHandle::next)
      .function("reset", &SessionHandle::reset)
      .function("contextTokens", &SessionHandle::contextTokens)
      .function("attention", &SessionHandle::attention)
      .function("timings", &SessionHandle::timings);

  emscripten::class_<ModelHandle>("Model")
      .function("info", &ModelHandle::info)
      .function("tokenize", &ModelHandle::tokenize)
      .function("detokenize", &ModelHandle::detokenize)
      .function("createSession", &ModelHandle::createSession, emscripten::allow_raw_pointers());

  emscripten::class_<TokenizerHandle>("Tokenizer")
      .function("info", &TokenizerHandle::info)
      .function("tokenize", &TokenizerHandle::tokenize)
      .function("detokenize", &TokenizerHandle::detokenize);

  emscripten::function("loadModel", &loadModel, emscripten::allow_raw_pointers());
  emscripten::function("loadModelParts", &loadModelParts, emscripten::allow_raw_pointers());
  emscripten::function("loadTokenizer", &loadTokenizer, emscripten::allow_raw_pointers());
}
