#include "synthetic.h"

#include <cmath>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace pipit::gguf {
namespace {

[[noreturn]] void invalid(const std::string& message) {
  fail(ErrorKind::kInvalidArgument, message);
}

// SplitMix64: one multiply-xorshift step per value, a good enough stream for weights and,
// being integer arithmetic, identical everywhere.
uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ull;
  return h;
}

// Approximately normal: the sum of four 16-bit uniforms (Irwin-Hall), scaled to unit
// variance. Box-Muller would need log and cos, whose last bit differs between libms.
double unit_normal(uint64_t& state) {
  const uint64_t r = splitmix(state);
  const uint64_t sum = (r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48);
  constexpr double kMean = 4 * 65535 / 2.0;
  const double inv_std = std::sqrt(3.0) / 65536.0;
  return (static_cast<double>(sum) - kMean) * inv_std;
}

// Each row gets its own stream, derived from (seed, tensor name, row), so rows can be made
// in any order and a tensor's values do not depend on which other tensors exist.
RowGenerator normal_rows(uint64_t seed, const std::string& name, uint64_t row_len, double mean,
                         double stddev) {
  const uint64_t base = seed * 0x9E3779B97F4A7C15ull ^ fnv1a(name);
  return [=](uint64_t row, float* out) {
    uint64_t state = base;
    state ^= splitmix(state) + row * 0xD1B54A32D192ED03ull;
    for (uint64_t i = 0; i < row_len; ++i) {
      out[i] = static_cast<float>(mean + stddev * unit_normal(state));
    }
  };
}

uint32_t file_type(TensorType t, QuantMix mix) {
  // llama.cpp's llama_ftype numbering for "mostly <type>" files.
  if (mix == QuantMix::kQ4_K_M) return 15;
  switch (t) {
    case TensorType::F32:
      return 0;
    case TensorType::F16:
      return 1;
    case TensorType::Q4_0:
      return 2;
    case TensorType::Q8_0:
      return 7;
    default:
      invalid(
          "synthetic models support matrix types F32, F16, Q8_0 and Q4_0 (or the Q4_K_M "
          "mix), not " +
          type_name(static_cast<uint32_t>(t)));
  }
}

// llama.cpp's rule for which layers get more bits in a _M mix: the first and last eighth,
// and every third layer in between.
bool more_bits(uint32_t layer, uint32_t n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

// K-quants need whole 256-value super-blocks per row; llama.cpp falls back to the legacy
// type of about the same size when a row has none.
TensorType fit_row(TensorType t, uint64_t row_len) {
  if (row_len % type_traits(t).block_elems == 0) return t;
  return t == TensorType::Q6_K ? TensorType::Q8_0 : TensorType::Q5_0;
}

void check_positive(uint32_t v, const char* field) {
  if (v == 0) invalid(std::string("synthetic model: ") + field + " must be positive");
}

using Metadata = std::vector<std::pair<std::string, MetaValue>>;

// Every tokenizer.* key of a vocab file, and the vocab size they imply.
Metadata read_tokenizer(const std::string& path, uint32_t& n_vocab) {
  const std::vector<uint8_t> bytes = read_file(path);
  const File vocab = File::parse(bytes, ParseOptions{.allow_duplicate_keys = true});
  const Value* tokens = vocab.find("tokenizer.ggml.tokens");
  if (!tokens || tokens->type() != ValueType::kArray) {
    invalid("'" + path + "' has no tokenizer.ggml.tokens array to take the vocab from");
  }
  n_vocab = static_cast<uint32_t>(tokens->size());
  Metadata keys;
  for (const auto& [key, value] : vocab.metadata()) {
    if (key.starts_with("tokenizer.")) keys.emplace_back(key, MetaValue::from(value));
  }
  return keys;
}

// Bijective base 26: 1 -> "a", 26 -> "z", 27 -> "aa", so every index gives a new piece.
std::string letters(uint64_t k) {
  std::string s;
  for (; k > 0; k = (k - 1) / 26) s.insert(s.begin(), static_cast<char>('a' + (k - 1) % 26));
  return s;
}

}  // namespace

void add_generated_vocab(Writer& writer, uint32_t n_vocab) {
  constexpr uint32_t kSpecial = 3 + 256;
  if (n_vocab < kSpecial) {
    invalid("a generated vocab needs at least " + std::to_string(kSpecial) +
            " tokens (3 special + 256 bytes), not " + std::to_string(n_vocab));
  }
  // SentencePiece's token types: 1 normal, 2 unknown, 3 control, 6 byte.
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0.0f, 0.0f, 0.0f};
  std::vector<int32_t> types = {2, 3, 3};
  tokens.reserve(n_vocab);
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
    scores.push_back(0.0f);
    types.push_back(6);
  }
  // Alternate word-initial ("\u2581" marks a preceding space) and inner pieces, with
  // scores falling so that earlier pieces merge first.
  for (uint32_t k = 0; tokens.size() < n_vocab; ++k) {
    tokens.push_back((k % 2 == 0 ? "\xE2\x96\x81" : "") + letters(k / 2 + 1));
    scores.push_back(-static_cast<float>(k));
    types.push_back(1);
  }
  writer.set("tokenizer.ggml.model", MetaValue::string("llama"));
  writer.set("tokenizer.ggml.tokens", MetaValue::strings(tokens));
  writer.set("tokenizer.ggml.scores", MetaValue::f32s(scores));
  writer.set("tokenizer.ggml.token_type", MetaValue::i32s(types));
  writer.set("tokenizer.ggml.unknown_token_id", MetaValue::u32(0));
  writer.set("tokenizer.ggml.bos_token_id", MetaValue::u32(1));
  writer.set("tokenizer.ggml.eos_token_id", MetaValue::u32(2));
  writer.set("tokenizer.ggml.add_bos_token", MetaValue::boolean(true));
  writer.set("tokenizer.ggml.add_eos_token", MetaValue::boolean(false));
}

Writer synthetic_llama(const SyntheticConfig& c) {
  const std::string& arch = c.architecture;
  if (arch != "llama" && arch != "qwen2") {
    invalid("synthetic model: architecture must be llama or qwen2, not '" + arch + "'");
  }
  check_positive(c.n_embd, "n_embd");
  check_positive(c.n_layer, "n_layer");
  check_positive(c.n_head, "n_head");
  check_positive(c.n_head_kv, "n_head_kv");
  check_positive(c.n_ff, "n_ff");
  check_positive(c.n_ctx, "n_ctx");
  if (c.n_embd % c.n_head != 0) {
    invalid("synthetic model: n_embd " + std::to_string(c.n_embd) +
            " is not a multiple of n_head " + std::to_string(c.n_head));
  }
  const uint32_t head_dim = c.n_embd / c.n_head;
  if (head_dim % 2 != 0) {
    invalid("synthetic model: the head size n_embd/n_head = " + std::to_string(head_dim) +
            " must be even for RoPE");
  }
  if (c.n_head % c.n_head_kv != 0) {
    invalid("synthetic model: n_head " + std::to_string(c.n_head) +
            " is not a multiple of n_head_kv " + std::to_string(c.n_head_kv));
  }
  const uint32_t ftype = file_type(c.matrix_type, c.mix);
  // Under the mix every row length must at least fit the fallback types' 32-value blocks.
  const TypeTraits traits =
      type_traits(c.mix == QuantMix::kQ4_K_M ? TensorType::Q5_0 : c.matrix_type);
  for (auto [len, field] : {std::pair{c.n_embd, "n_embd"}, std::pair{c.n_ff, "n_ff"}}) {
    if (len % traits.block_elems != 0) {
      invalid(std::string("synthetic model: ") + field + " " + std::to_string(len) +
              " is not a multiple of the " + std::to_string(traits.block_elems) +
              "-value blocks of " + traits.name + " (a row length of some matrices)");
    }
  }

  Writer w;
  w.set("general.architecture", MetaValue::string(arch));
  w.set("general.type", MetaValue::string("model"));
  w.set("general.name", MetaValue::string(c.name.empty() ? "pipit synthetic " + arch : c.name));
  w.set("general.description",
        MetaValue::string("Synthetic random-weight " + arch + " model (NOT trained), seed " +
                          std::to_string(c.seed)));
  w.set("general.file_type", MetaValue::u32(ftype));
  if (c.mix != QuantMix::kUniform ||
      (c.matrix_type != TensorType::F32 && c.matrix_type != TensorType::F16)) {
    w.set("general.quantization_version", MetaValue::u32(2));
  }
  uint32_t n_vocab = c.n_vocab;
  Metadata tokenizer;
  if (!c.vocab_from.empty()) tokenizer = read_tokenizer(c.vocab_from, n_vocab);
  const std::string p = arch + ".";
  w.set(p + "vocab_size", MetaValue::u32(n_vocab));
  w.set(p + "context_length", MetaValue::u32(c.n_ctx));
  w.set(p + "embedding_length", MetaValue::u32(c.n_embd));
  w.set(p + "block_count", MetaValue::u32(c.n_layer));
  w.set(p + "feed_forward_length", MetaValue::u32(c.n_ff));
  w.set(p + "attention.head_count", MetaValue::u32(c.n_head));
  w.set(p + "attention.head_count_kv", MetaValue::u32(c.n_head_kv));
  w.set(p + "attention.layer_norm_rms_epsilon", MetaValue::f32(c.rms_eps));
  w.set(p + "rope.freq_base", MetaValue::f32(c.rope_base));
  w.set(p + "rope.dimension_count", MetaValue::u32(head_dim));
  if (c.vocab_from.empty()) {
    add_generated_vocab(w, n_vocab);
  } else {
    for (auto& [key, value] : tokenizer) w.set(key, std::move(value));
  }

  // Scales keep activations sane: a matrix's outputs have about the variance of its inputs,
  // and logits have an RMS of about 3, as in trained models.
  const uint64_t n_embd = c.n_embd;
  const uint64_t n_kv = static_cast<uint64_t>(head_dim) * c.n_head_kv;
  const double logit_std = 3.0 / std::sqrt(static_cast<double>(n_embd));
  const bool k_mix = c.mix == QuantMix::kQ4_K_M;
  // more: the tensor is one the mix gives Q6_K.
  auto type_for = [&](uint64_t row_len, bool more) {
    if (!k_mix) return c.matrix_type;
    return fit_row(more ? TensorType::Q6_K : TensorType::Q4_K, row_len);
  };
  auto matrix = [&](const std::string& name, uint64_t row_len, uint64_t rows, double stddev,
                    bool more) {
    w.add_tensor(name, type_for(row_len, more), {row_len, rows},
                 normal_rows(c.seed, name, row_len, 0.0, stddev));
  };
  auto vector = [&](const std::string& name, uint64_t len, double mean) {
    w.add_tensor(name, TensorType::F32, {len}, normal_rows(c.seed, name, len, mean, 0.1));
  };
  auto linear = [&](const std::string& name, uint64_t in, uint64_t out, bool more = false) {
    matrix(name, in, out, 1.0 / std::sqrt(static_cast<double>(in)), more);
  };

  // A tied embedding is the output projection, which the mix keeps at Q6_K.
  matrix("token_embd.weight", n_embd, n_vocab, c.tied_output ? logit_std : 1.0, c.tied_output);
  for (uint32_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const bool more = more_bits(l, c.n_layer);
    vector(b + "attn_norm.weight", n_embd, 1.0);
    linear(b + "attn_q.weight", n_embd, n_embd);
    linear(b + "attn_k.weight", n_embd, n_kv);
    linear(b + "attn_v.weight", n_embd, n_kv, more);
    if (arch == "qwen2") {
      vector(b + "attn_q.bias", n_embd, 0.0);
      vector(b + "attn_k.bias", n_kv, 0.0);
      vector(b + "attn_v.bias", n_kv, 0.0);
    }
    linear(b + "attn_output.weight", n_embd, n_embd);
    vector(b + "ffn_norm.weight", n_embd, 1.0);
    linear(b + "ffn_gate.weight", n_embd, c.n_ff);
    linear(b + "ffn_up.weight", n_embd, c.n_ff);
    linear(b + "ffn_down.weight", c.n_ff, n_embd, more);
  }
  vector("output_norm.weight", n_embd, 1.0);
  if (!c.tied_output) matrix("output.weight", n_embd, n_vocab, logit_std, true);
  return w;
}

}  // namespace pipit::gguf
