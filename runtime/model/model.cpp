#include "model/model.h"

#include <cstdio>
#include <string>

#include "core/error.h"
#include "model/architectures.h"

namespace pipit {
namespace {

struct Architecture {
  const char* name;
  std::unique_ptr<Model> (*make)(ModelParts parts);
};

constexpr Architecture kArchitectures[] = {
    {"llama", make_llama},   {"qwen2", make_qwen2}, {"phi3", make_phi3},
    {"gemma2", make_gemma2}, {"gpt2", make_gpt2},
};

std::string supported_architectures() {
  std::string s;
  for (const Architecture& a : kArchitectures) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

// Hyper-parameters are integers a hostile file could make absurd; bound them before any
// allocation is sized from them.
int positive_int(const gguf::File& file, const std::string& key, uint64_t fallback,
                 uint64_t limit) {
  const uint64_t v = file.find(key) ? file.find(key)->as_u64() : fallback;
  if (v == 0 || v > limit) {
    fail(ErrorKind::kFormat, "metadata '" + key + "' is " + std::to_string(v) +
                                 ", outside the range 1.." + std::to_string(limit));
  }
  return static_cast<int>(v);
}

ModelConfig read_config(const gguf::File& file, const std::string& arch) {
  const std::string p = arch + ".";
  ModelConfig c;
  c.architecture = arch;
  c.name = std::string(file.get_string("general.name", ""));
  file.require(p + "embedding_length");
  file.require(p + "block_count");
  file.require(p + "attention.head_count");
  file.require(p + "feed_forward_length");
  c.n_embd = positive_int(file, p + "embedding_length", 0, 1 << 16);
  c.n_layer = positive_int(file, p + "block_count", 0, 1024);
  c.n_head = positive_int(file, p + "attention.head_count", 0, 1024);
  c.n_head_kv = positive_int(file, p + "attention.head_count_kv", c.n_head, 1024);
  c.n_ff = positive_int(file, p + "feed_forward_length", 0, 1 << 20);
  c.n_ctx_train = positive_int(file, p + "context_length", 2048, 1 << 24);
  if (c.n_embd % c.n_head != 0 && !file.find(p + "attention.key_length")) {
    fail(ErrorKind::kFormat, "embedding_length " + std::to_string(c.n_embd) +
                                 " is not a multiple of head_count " + std::to_string(c.n_head));
  }
  c.head_dim = positive_int(file, p + "attention.key_length", c.n_embd / c.n_head, 1 << 12);
  if (c.n_head % c.n_head_kv != 0) {
    fail(ErrorKind::kFormat, "attention.head_count " + std::to_string(c.n_head) +
                                 " is not a multiple of head_count_kv " +
                                 std::to_string(c.n_head_kv));
  }
  c.rope_dim = positive_int(file, p + "rope.dimension_count", c.head_dim, c.head_dim);
  if (c.rope_dim % 2 != 0) {
    fail(ErrorKind::kFormat, "rope.dimension_count " + std::to_string(c.rope_dim) + " is odd");
  }
  c.rope_freq_base = static_cast<float>(file.get_f64(p + "rope.freq_base", 10000.0));
  if (file.find(p + "attention.sliding_window")) {
    c.sliding_window = positive_int(file, p + "attention.sliding_window", 0, 1 << 24);
  }
  // RMSNorm models name their epsilon one way, LayerNorm models (gpt2) the other.
  c.norm_eps =
      static_cast<float>(file.get_f64(p + "attention.layer_norm_rms_epsilon",
                                      file.get_f64(p + "attention.layer_norm_epsilon", 1e-5)));
  const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight");
  if (!embd) fail(ErrorKind::kFormat, "the model file has no tensor 'token_embd.weight'");
  if (embd->dims.size() != 2) fail(ErrorKind::kFormat, "tensor 'token_embd.weight' is not 2-D");
  c.n_vocab = static_cast<int>(embd->dims[1]);
  return c;
}

}  // namespace

Model::Model(ModelParts parts)
    : buffers_(std::move(parts.buffers)),
      size_(parts.size),
      file_(std::move(parts.file)),
      config_(std::move(parts.config)),
      tokenizer_(std::move(parts.tokenizer)) {}

std::unique_ptr<Model> Model::load(OwnedBytes bytes, size_t size, const LoadOptions& options) {
  std::vector<ModelBuffer> buffers;
  buffers.push_back({std::move(bytes), size});
  return load(std::move(buffers), options);
}

std::unique_ptr<Model> Model::load(std::vector<ModelBuffer> buffers, const LoadOptions& options) {
  ModelParts parts;
  parts.buffers = std::move(buffers);
  std::vector<gguf::File> files;
  files.reserve(parts.buffers.size());
  for (size_t i = 0; i < parts.buffers.size(); ++i) {
    const ModelBuffer& b = parts.buffers[i];
    parts.size += b.size;
    try {
      files.push_back(gguf::File::parse({b.bytes.get(), b.size}, {options.allow_duplicate_keys}));
    } catch (const Error& e) {
      if (parts.buffers.size() == 1) throw;
      fail(e.kind(), "part " + std::to_string(i + 1) + " of " +
                         std::to_string(parts.buffers.size()) + ": " + e.what());
    }
  }
  parts.file = gguf::File::join_split(std::move(files));
  const std::string arch(parts.file.get_string("general.architecture", ""));
  if (arch.empty()) {
    fail(ErrorKind::kFormat, "the model file has no 'general.architecture' metadata");
  }
  for (const Architecture& a : kArchitectures) {
    if (arch != a.name) continue;
    parts.config = read_config(parts.file, arch);
    parts.tokenizer = Tokenizer::from_gguf(parts.file);
    if (parts.tokenizer->vocab().size() != parts.config.n_vocab) {
      fail(ErrorKind::kFormat, "the tokenizer has " +
                                   std::to_string(parts.tokenizer->vocab().size()) +
                                   " tokens but token_embd.weight has " +
                                   std::to_string(parts.config.n_vocab) + " rows");
    }
    return a.make(std::move(parts));
  }
  fail(ErrorKind::kUnsupported, "architecture '" + arch + "' is not supported; pipit supports: " +
                                    supported_architectures());
}

std::map<std::string, int> Model::tensor_type_counts() const {
  std::map<std::string, int> counts;
  for (const gguf::TensorInfo& t : file_.tensors()) ++counts[type_name(t.type_id)];
  return counts;
}

OwnedBytes read_file(const std::string& path, size_t* size) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(ErrorKind::kInvalidArgument, "cannot open '" + path + "'");
  std::fseek(f, 0, SEEK_END);
  const long length = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  OwnedBytes bytes(static_cast<uint8_t*>(std::malloc(length > 0 ? length : 1)));
  if (!bytes) {
    std::fclose(f);
    fail(ErrorKind::kOutOfMemory, "not enough memory to read '" + path + "'");
  }
  const size_t got = std::fread(bytes.get(), 1, static_cast<size_t>(length), f);
  std::fclose(f);
  if (got != static_cast<size_t>(length)) {
    fail(ErrorKind::kInvalidArgument, "could not read all of '" + path + "'");
  }
  *size = got;
  return bytes;
}

}  // namespace pipit
