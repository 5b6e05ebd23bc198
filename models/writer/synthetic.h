// Random-weight LLaMA models with llama.cpp's metadata keys and tensor names: the same
// shapes as real models, for speed work and for tests that need a model of a given size.
// The weights come from pipit's own seeded generator using integer arithmetic and exactly
// rounded float operations only, so a seed gives the same bytes on every platform.
#pragma once

#include <cstdint>
#include <string>

#include "gguf_writer.h"
#include "quant/types.h"

namespace pipit::gguf {

struct SyntheticConfig {
  uint32_t n_vocab = 512;  // ignored when vocab_from is set: the vocab file decides
  uint32_t n_embd = 256;
  uint32_t n_layer = 4;
  uint32_t n_head = 8;
  uint32_t n_head_kv = 2;
  uint32_t n_ff = 768;
  uint32_t n_ctx = 512;
  bool tied_output = false;  // no output.weight: the output projection reuses token_embd
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  TensorType matrix_type = TensorType::F32;  // norms are always F32
  uint64_t seed = 1;
  std::string vocab_from;  // a GGUF whose tokenizer.* keys are copied; empty: generate one
  std::string name = "pipit synthetic llama";
};

// A Writer holding the whole model; the weights are generated while it is written, so even
// a model of hundreds of MB needs one row of floats in memory. Error(kInvalidArgument) for
// an inconsistent config (names the field).
Writer synthetic_llama(const SyntheticConfig& config);

// The minimal SentencePiece-style vocab used when no vocab file is given: <unk>, <s>, </s>,
// the 256 byte tokens <0x00>..<0xFF>, then generated pieces up to n_vocab (at least 259).
void add_generated_vocab(Writer& writer, uint32_t n_vocab);

}  // namespace pipit::gguf
