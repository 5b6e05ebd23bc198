// The synthetic generator's benchmark variants: the qwen2 architecture (q/k/v biases, its own
// metadata keys) and the Q4_K_M tensor-type mix; both load and run in pipit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf_writer.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "synthetic.h"

namespace pipit::gguf {
namespace {

SyntheticConfig config(const std::string& arch, uint32_t n_embd, uint32_t n_ff) {
  SyntheticConfig c;
  c.architecture = arch;
  c.n_vocab = 300;
  c.n_embd = n_embd;
  c.n_layer = 8;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.n_ff = n_ff;
  c.n_ctx = 64;
  c.tied_output = true;
  c.seed = 5;
  return c;
}

TensorType type_of(const File& f, const std::string& name) {
  const TensorInfo* t = f.find_tensor(name);
  if (!t) ADD_FAILURE() << "no tensor " << name;
  return t ? static_cast<TensorType>(t->type_id) : TensorType::F32;
}

// Loads the file into pipit and runs two tokens through it: the logits must be finite.
void runs_in_pipit(const std::vector<uint8_t>& bytes) {
  OwnedBytes owned(static_cast<uint8_t*>(std::malloc(bytes.size())));
  std::memcpy(owned.get(), bytes.data(), bytes.size());
  const auto model = Model::load(std::move(owned), bytes.size(), {});
  const auto kv = model->new_kv_cache(16);
  std::vector<float> logits(model->config().n_vocab);
  const std::vector<int32_t> tokens = {1, 260};
  model->forward(tokens, 0, *kv, logits.data());
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

TEST(SyntheticMix, Qwen2HasItsKeysAndBiases) {
  SyntheticConfig c = config("qwen2", 64, 96);
  c.rope_base = 1e6f;
  c.matrix_type = TensorType::Q8_0;
  const std::vector<uint8_t> bytes = synthetic_llama(c).bytes();
  const File f = File::parse(bytes);
  EXPECT_EQ(f.get_string("general.architecture", ""), "qwen2");
  EXPECT_EQ(f.get_string("general.name", ""), "pipit synthetic qwen2");
  EXPECT_EQ(f.get_u64("qwen2.block_count", 0), 8u);
  EXPECT_EQ(f.get_u64("qwen2.embedding_length", 0), 64u);
  EXPECT_EQ(f.get_u64("qwen2.attention.head_count_kv", 0), 2u);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_f64("qwen2.rope.freq_base", 0)), 1e6f);
  EXPECT_EQ(f.find("llama.block_count"), nullptr);
  for (const char* name : {"attn_q.bias", "attn_k.bias", "attn_v.bias"}) {
    const TensorInfo* t = f.find_tensor(std::string("blk.3.") + name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->type_id, static_cast<uint32_t>(TensorType::F32));
    EXPECT_EQ(t->dims, (std::vector<uint64_t>{name[5] == 'q' ? 64u : 32u})) << name;
  }
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f.tensors().size(), 1u + 8 * 12 + 1);
  runs_in_pipit(bytes);
}

TEST(SyntheticMix, Q4_K_MTypesLikeLlamaQuantize) {
  SyntheticConfig c = config("llama", 256, 512);
  c.mix = QuantMix::kQ4_K_M;
  const std::vector<uint8_t> bytes = synthetic_llama(c).bytes();
  const File f = File::parse(bytes);
  EXPECT_EQ(f.get_u64("general.file_type", 0), 15u);
  EXPECT_EQ(f.get_u64("general.quantization_version", 0), 2u);
  // The tied embedding is the output projection: Q6_K.
  EXPECT_EQ(type_of(f, "token_embd.weight"), TensorType::Q6_K);
  // With 8 layers: layer 0 and 7 (first and last eighth) and every third between (3, 6).
  const std::vector<int> more = {0, 3, 6, 7};
  for (int l = 0; l < 8; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const bool m = std::find(more.begin(), more.end(), l) != more.end();
    const TensorType v = m ? TensorType::Q6_K : TensorType::Q4_K;
    EXPECT_EQ(type_of(f, b + "attn_v.weight"), v) << l;
    EXPECT_EQ(type_of(f, b + "ffn_down.weight"), v) << l;
    for (const char* name : {"attn_q.weight", "attn_k.weight", "attn_output.weight",
                             "ffn_gate.weight", "ffn_up.weight"}) {
      EXPECT_EQ(type_of(f, b + name), TensorType::Q4_K) << b << name;
    }
    EXPECT_EQ(type_of(f, b + "attn_norm.weight"), TensorType::F32);
  }
  runs_in_pipit(bytes);
}

// Rows of 96 values (like SmolLM2's 576 or Qwen2.5-0.5B's 896) are no whole super-block:
// Q4_K falls back to Q5_0 and Q6_K to Q8_0, while 512-value rows keep the K-quants.
TEST(SyntheticMix, Q4_K_MFallsBackForShortRows) {
  SyntheticConfig c = config("qwen2", 96, 512);
  c.n_head = 3;
  c.n_head_kv = 1;
  c.mix = QuantMix::kQ4_K_M;
  const std::vector<uint8_t> bytes = synthetic_llama(c).bytes();
  const File f = File::parse(bytes);
  EXPECT_EQ(type_of(f, "token_embd.weight"), TensorType::Q8_0);
  EXPECT_EQ(type_of(f, "blk.0.attn_q.weight"), TensorType::Q5_0);
  EXPECT_EQ(type_of(f, "blk.0.attn_v.weight"), TensorType::Q8_0);
  EXPECT_EQ(type_of(f, "blk.1.attn_v.weight"), TensorType::Q5_0);
  EXPECT_EQ(type_of(f, "blk.1.ffn_up.weight"), TensorType::Q5_0);
  EXPECT_EQ(type_of(f, "blk.0.ffn_down.weight"), TensorType::Q6_K);
  EXPECT_EQ(type_of(f, "blk.1.ffn_down.weight"), TensorType::Q4_K);
  runs_in_pipit(bytes);
}

TEST(SyntheticMix, RefusesOtherArchitecturesAndUnfitRows) {
  SyntheticConfig c = config("gpt2", 64, 96);
  try {
    synthetic_llama(c);
    FAIL() << "gpt2 is not a synthetic architecture";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("gpt2"), std::string::npos) << e.what();
  }
  c = config("llama", 64, 100);
  c.mix = QuantMix::kQ4_K_M;
  EXPECT_THROW(synthetic_llama(c), Error);
}

}  // namespace
}  // namespace pipit::gguf
