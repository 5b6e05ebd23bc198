// pipit-bench: the runtime measured natively (no WASM, no JavaScript), and the facts about a
// model file that scripts/bench.mjs needs for every runtime. Prints one JSON line.
//   pipit-bench info MODEL
//       sizes (file, weights read per decoded token, KV cache per context length) and the
//       token ids whose bytes are not valid UTF-8 alone (both runtimes ban them when greedy)
//   pipit-bench run MODEL --prompt TEXT [--decode N] [--runs N] [--ctx N] [--threads N]
//       load time (bytes in memory -> ready), then a warm-up and N greedy generations of the
//       prompt with N decoded tokens each; the engine's own prefill/decode timings per run
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/utf8.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "session/session.h"

namespace {

using pipit::Error;
using pipit::ErrorKind;

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::unique_ptr<pipit::Model> load(const std::string& path, double* load_ms) {
  size_t size = 0;
  pipit::OwnedBytes bytes = pipit::read_file(path, &size);
  const auto start = std::chrono::steady_clock::now();
  auto model = pipit::Model::load(std::move(bytes), size, {});
  if (load_ms) {
    *load_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  return model;
}

// Bytes of weights one decoded token streams through: every tensor, except that the
// embedding table gives just one row unless it is also the (tied) output projection.
// (A mixture-of-experts model reads only its chosen experts; the bench models have none.)
uint64_t weight_bytes_per_token(const pipit::gguf::File& f) {
  uint64_t total = 0;
  for (const auto& t : f.tensors()) total += t.nbytes;
  const auto* embd = f.find_tensor("token_embd.weight");
  if (!embd || embd->dims.size() < 2) return total;
  const uint64_t row = embd->nbytes / embd->dims[1];
  return f.find_tensor("output.weight") ? total - embd->nbytes + row : total + row;
}

int info(const std::string& path) {
  auto model = load(path, nullptr);
  const pipit::ModelConfig& c = model->config();
  const pipit::Tokenizer& tok = model->tokenizer();
  std::ostringstream banned;
  for (pipit::TokenId id = 0; id < tok.vocab().size(); ++id) {
    const std::string bytes = tok.token_bytes(id);
    if (pipit::utf8::sanitize(bytes) != bytes) banned << (banned.tellp() > 0 ? "," : "") << id;
  }
  // f32 keys and values: 2 * layers * kv heads * head size * 4 bytes per position.
  const uint64_t kv_per_token = 2ull * c.n_layer * c.n_head_kv * c.head_dim * sizeof(float);
  std::cout << "{\"file\":" << json_string(path) << ",\"fileBytes\":" << model->file_size()
            << ",\"architecture\":" << json_string(c.architecture) << ",\"nVocab\":" << c.n_vocab
            << ",\"nLayer\":" << c.n_layer << ",\"nEmbd\":" << c.n_embd
            << ",\"weightBytesPerToken\":" << weight_bytes_per_token(model->file())
            << ",\"kvBytesPerToken\":" << kv_per_token << ",\"invalidUtf8Tokens\":[" << banned.str()
            << "]}\n";
  return 0;
}

int run(const std::string& path, const std::vector<std::string_view>& args) {
  std::string prompt;
  int decode = 64, runs = 3, ctx = 512, threads = 1;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i + 1 >= args.size()) throw Error(ErrorKind::kInvalidArgument, "missing value");
    const std::string_view flag = args[i];
    const std::string value(args[++i]);
    if (flag == "--prompt") {
      prompt = value;
    } else if (flag == "--decode") {
      decode = std::stoi(value);
    } else if (flag == "--runs") {
      runs = std::stoi(value);
    } else if (flag == "--ctx") {
      ctx = std::stoi(value);
    } else if (flag == "--threads") {
      threads = std::stoi(value);
    } else {
      throw Error(ErrorKind::kInvalidArgument, "unknown option " + std::string(flag));
    }
  }
  double load_ms = 0;
  auto model = load(path, &load_ms);
  const auto start = std::chrono::steady_clock::now();
  pipit::Session session(*model, ctx, threads);
  load_ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const std::vector<pipit::TokenId> ids =
      model->tokenizer().encode(prompt, model->tokenizer().vocab().add_bos, false);

  pipit::GenerateOptions options;
  options.max_tokens = decode;
  options.ignore_eos = true;
  options.sampling.temperature = 0.0f;
  std::ostringstream out;
  for (int r = 0; r <= runs; ++r) {  // run 0 warms up
    session.begin(ids, options);
    while (session.next().finish == pipit::FinishReason::kNone) {
    }
    if (r == 0) continue;
    const pipit::Timings& t = session.timings();
    out << (r > 1 ? "," : "") << "{\"prefillTokens\":" << t.prefill_tokens
        << ",\"prefillMs\":" << t.prefill_ms << ",\"decodeTokens\":" << t.decode_tokens
        << ",\"decodeMs\":" << t.decode_ms << "}";
  }
  std::cout << "{\"file\":" << json_string(path) << ",\"threads\":" << threads
            << ",\"loadMs\":" << load_ms << ",\"promptTokens\":" << ids.size() << ",\"runs\":["
            << out.str() << "]}\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    if (args.size() == 2 && args[0] == "info") return info(std::string(args[1]));
    if (args.size() >= 2 && args[0] == "run") {
      return run(std::string(args[1]), {args.begin() + 2, args.end()});
    }
    std::cerr << "usage: pipit-bench info MODEL | pipit-bench run MODEL --prompt TEXT "
                 "[--decode N] [--runs N] [--ctx N] [--threads N]\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pipit-bench: " << e.what() << "\n";
    return 1;
  }
}
