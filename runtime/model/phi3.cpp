// Phi-3: LLaMA's equations with fused projections — one matrix yields [q | k | v], one yields
// [gate | up] — and rotary embeddings in the GPT-NeoX layout.
//
//   x = embed(token)
//   per layer:  h = rmsnorm(x) * w_attn_norm
//               [q | k | v] = h Wqkv;  q, k = rope_neox(q, k, pos)
//               x += softmax(q k^T / sqrt(d_head) + causal mask, sliding window) v  Wo
//               h = rmsnorm(x) * w_ffn_norm
//               [g | u] = h Wgate_up;  x += (silu(g) * u) Wdown
//   logits = (rmsnorm(x) * w_output_norm) Woutput
#include <cmath>
#include <string>
#include <vector>

#include "model/architectures.h"
#include "model/blocks.h"
#include "model/rotary.h"
#include "model/weights.h"

namespace pipit {
namespace {

struct Phi3Layer {
  const float* attn_norm;
  kernels::Matrix w_qkv, wo;
  const float* ffn_norm;
  kernels::Matrix w_gate_up, w_down;
};

class Phi3Model final : public Model {
 public:
  explicit Phi3Model(ModelParts parts) : Model(std::move(parts)) {
    const ModelConfig& c = config_;
    const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
    WeightLoader w(file_);
    rotary_ = RotaryEmbedding(file_, c, ops::RopeStyle::kNeox, w);
    token_embd_ = w.matrix("token_embd.weight", c.n_embd, c.n_vocab);
    output_norm_ = w.vector("output_norm.weight", c.n_embd);
    output_ = w.has("output.weight") ? w.matrix("output.weight", c.n_embd, c.n_vocab) : token_embd_;
    for (int l = 0; l < c.n_layer; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      layers_.push_back({
          w.vector(p + "attn_norm.weight", c.n_embd),
          w.matrix(p + "attn_qkv.weight", c.n_embd, q_dim + 2 * kv_dim),
          w.matrix(p + "attn_output.weight", q_dim, c.n_embd),
          w.vector(p + "ffn_norm.weight", c.n_embd),
          w.matrix(p + "ffn_up.weight", c.n_embd, 2 * c.n_ff),
          w.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd),
      });
    }
    attention_ = {c.n_head, c.n_head_kv, c.head_dim, 1.0f / std::sqrt(float(c.head_dim))};
    attention_.window = c.sliding_window;
  }

  const ops::Rope* key_rotation(int context_length) const override {
    return &rotary_.for_context(context_length);
  }

  std::unique_ptr<KvCache> new_kv_cache(int context_length) const override {
    return std::make_unique<KvCache>(config_.n_layer, context_length, config_.n_head_kv,
                                     config_.head_dim);
  }

  void forward(std::span<const int32_t> tokens, int pos0, KvCache& kv,
               float* logits) const override {
    const ModelConfig& c = config_;
    const int n = static_cast<int>(tokens.size());
    const int d = c.n_embd, q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
    const ops::Rope& rotation = rotary_.for_context(kv.context_length());
    const auto rope = [&](float* x, int n_heads, int stride) {
      blocks::rope_rows(rotation, x, n, stride, n_heads, c.head_dim, pos0);
    };
    std::vector<float> x(n * d), h(n * d), qkv(n * (q_dim + 2 * kv_dim));
    std::vector<float> q(n * q_dim), k(n * kv_dim), v(n * kv_dim), attn(n * q_dim);
    std::vector<float> gate_up(n * 2 * c.n_ff), gate(n * c.n_ff), up(n * c.n_ff);

    blocks::embed(token_embd_, tokens, x.data());
    for (int l = 0; l < c.n_layer; ++l) {
      const Phi3Layer& L = layers_[l];

      blocks::rms_norm_rows(x.data(), L.attn_norm, n, d, c.norm_eps, h.data());
      kernels::matmul(L.w_qkv, h.data(), n, qkv.data());
      blocks::split_columns(qkv.data(), n,
                            {{q.data(), q_dim}, {k.data(), kv_dim}, {v.data(), kv_dim}});
      rope(q.data(), c.n_head, q_dim);
      rope(k.data(), c.n_head_kv, kv_dim);
      blocks::store_kv(kv, l, pos0, n, k.data(), v.data());
      blocks::causal_attention(attention_, kv, l, n, pos0, q.data(), attn.data());
      kernels::matmul(L.wo, attn.data(), n, h.data());
      ops::add(x.data(), h.data(), n * d);

      blocks::rms_norm_rows(x.data(), L.ffn_norm, n, d, c.norm_eps, h.data());
      kernels::matmul(L.w_gate_up, h.data(), n, gate_up.data());
      blocks::split_columns(gate_up.data(), n, {{gate.data(), c.n_ff}, {up.data(), c.n_ff}});
      blocks::swiglu(gate.data(), up.data(), n * c.n_ff);
      kernels::matmul(L.w_down, gate.data(), n, h.data());
      ops::add(x.data(), h.data(), n * d);
    }
    ops::rms_norm(&x[(n - 1) * d], output_norm_, d, c.norm_eps, h.data());
    kernels::matmul(output_, h.data(), 1, logits);
  }

 private:
  kernels::Matrix token_embd_;
  const float* output_norm_ = nullptr;
  kernels::Matrix output_;
  RotaryEmbedding rotary_;
  std::vector<Phi3Layer> layers_;
  blocks::Attention attention_;
};

}  // namespace

std::unique_ptr<Model> make_phi3(ModelParts parts) {
  return std::make_unique<Phi3Model>(std::move(parts));
}

}  // namespace pipit
