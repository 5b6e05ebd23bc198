// Random-weight LLaMA-family models (llama, or qwen2: llama with q/k/v biases) with
// llama.cpp's metadata keys and tensor names: the same shapes as real models, for speed work
// and for tests that need a model of a given size.
// The weights come from pipit's own seeded generator using integer arithmetic and exactly
// rounded float operations only, so a seed gives the same bytes on every platform.
#pragma once

#include <cstdint>
#include <string>

#include "gguf_writer.h"
#include "quant/types.h"

namespace pipit::gguf {

// How matrices are typed: all alike (matrix_type), or a mix the way llama-quantize makes a
// "Q4_K_M" file: Q4_K, with Q6_K for the output (or tied embedding) and for attn_v and
// ffn_down in about half the layers; a matrix whose rows are not whole 256-value
// super-blocks falls back as llama.cpp does (Q4_K -> Q5_0, Q6_K -> Q8_0).
enum class QuantMix { kUniform, kQ4_K_M };

struct SyntheticConfig {
  std::string architecture = "llama";  // "llama" or "qwen2"
  uint32_t n_vocab = 512;              // ignored when vocab_from is set: the vocab file decides
  uint32_t n_embd = 256;
  uint32_t n_layer = 4;
  uint32_t n_head = 8;
  uint32_t n_head_kv = 2;
  uint32_t n_ff = 768;
  uint32_t n_ctx = 512;
  bool tied_output = false;  // no output.weight: the output projection reuses token_embd
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  TensorType matrix_type = TensorType::F32;  // norms and biases are always F32
  QuantMix mix = QuantMix::kUniform;         // kQ4_K_M ignores matrix_type
  uint64_t seed = 1;
  std::string vocab_from;  // a GGUF whose tokenizer.* keys are copied; empty: generate one
  std::string name;        // empty: "pipit synthetic <architecture>"
};

// A Writer holding the whole model; the weights are generated while it is written, so even
// a model of hundreds of MB needs one row of floats in memory. Error(kInvalidArgument) for
// an inconsistent config (names the field).
Writer synthetic_llama(const SyntheticConfig& config);

// The minimal SentencePiece-style vocab used when no vocab file is given: <unk>, <s>, </s>,
// the 256 byte tokens <0x00>..<0xFF>, then generated pieces up to n_vocab (at least 259).
void add_generated_vocab(Writer& writer, uint32_t n_vocab);

}  // namespace pipit::gguf
