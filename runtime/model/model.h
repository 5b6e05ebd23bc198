// A loaded model: the file bytes (owned), the parsed GGUF, the hyper-parameters, the
// tokenizer, and an architecture that turns token ids into logits.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "ops/ops.h"
#include "tokenizer/tokenizer.h"

namespace pipit {

// File bytes allocated with std::malloc (in WASM, by JavaScript through _malloc).
struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using OwnedBytes = std::unique_ptr<uint8_t[], FreeDeleter>;

OwnedBytes read_file(const std::string& path, size_t* size);  // native tools and tests

// One GGUF file in memory: a whole model, or one part of a split set (gguf/split.h).
struct ModelBuffer {
  OwnedBytes bytes;
  size_t size = 0;
};

struct ModelConfig {
  std::string architecture;  // general.architecture
  std::string name;          // general.name
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_ff = 0;
  int n_ctx_train = 0;
  int rope_dim = 0;
  float rope_freq_base = 10000.0f;
  float norm_eps = 1e-5f;
  int sliding_window = 0;  // <arch>.attention.sliding_window; 0: attention sees every position
};

class KvCache;

struct LoadOptions {
  bool allow_duplicate_keys = false;
};

// What every architecture starts from: the bytes, their parse, the shared hyper-parameters
// and the tokenizer.
struct ModelParts {
  std::vector<ModelBuffer> buffers;  // one per file of a split set
  size_t size = 0;                   // bytes over all of them
  gguf::File file;
  ModelConfig config;
  std::unique_ptr<Tokenizer> tokenizer;
};

class Model {
 public:
  static std::unique_ptr<Model> load(OwnedBytes bytes, size_t size, const LoadOptions& options);
  // The files of a split set, in order (or a single file); each is checked as a GGUF of its
  // own before the set is checked as a whole.
  static std::unique_ptr<Model> load(std::vector<ModelBuffer> buffers, const LoadOptions& options);
  virtual ~Model() = default;

  const ModelConfig& config() const { return config_; }
  const gguf::File& file() const { return file_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  size_t file_size() const { return size_; }
  std::map<std::string, int> tensor_type_counts() const;

  // Runs `tokens` at positions pos0.. through the network, appending their keys and values to
  // `kv`, and writes the logits of the last token to `logits` (n_vocab floats).
  virtual void forward(std::span<const int32_t> tokens, int pos0, KvCache& kv,
                       float* logits) const = 0;

  virtual std::unique_ptr<KvCache> new_kv_cache(int context_length) const = 0;

  // The rotation this model's cached keys carry, in a context of context_length positions, so
  // a context shift can move them; null when positions enter some other way (gpt2's learned
  // position embeddings), and moving a key would not move its position.
  virtual const ops::Rope* key_rotation(int /*context_length*/) const { return nullptr; }

 protected:
  explicit Model(ModelParts parts);
  std::vector<ModelBuffer> buffers_;
  size_t size_ = 0;
  gguf::File file_;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace pipit
