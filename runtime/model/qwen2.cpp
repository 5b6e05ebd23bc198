// Qwen2: LLaMA's layer with biases on the q, k and v projections and rotary embeddings in the
// GPT-NeoX layout (pairs i and i + d/2); the output matrix is usually the embedding (tied).
//
//   x = embed(token)
//   per layer:  h = rmsnorm(x) * w_attn_norm
//               q, k, v = h Wq + bq, h Wk + bk, h Wv + bv;  q, k = rope_neox(q, k, pos)
//               x += softmax(q k^T / sqrt(d_head) + causal mask) v  Wo
//               h = rmsnorm(x) * w_ffn_norm
//               x += (silu(h Wgate) * (h Wup)) Wdown
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

struct Qwen2Layer {
  const float* attn_norm;
  kernels::Matrix wq, wk, wv, wo;
  const float *bq, *bk, *bv;
  const float* ffn_norm;
  kernels::Matrix w_gate, w_up, w_down;
};

class Qwen2Model final : public Model {
 public:
  explicit Qwen2Model(ModelParts parts) : Model(std::move(parts)) {
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
          w.matrix(p + "attn_q.weight", c.n_embd, q_dim),
          w.matrix(p + "attn_k.weight", c.n_embd, kv_dim),
          w.matrix(p + "attn_v.weight", c.n_embd, kv_dim),
          w.matrix(p + "attn_output.weight", q_dim, c.n_embd),
          w.vector(p + "attn_q.bias", q_dim),
          w.vector(p + "attn_k.bias", kv_dim),
          w.vector(p + "attn_v.bias", kv_dim),
          w.vector(p + "ffn_norm.weight", c.n_embd),
          w.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff),
          w.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff),
          w.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd),
      });
    }
    attention_ = {c.n_head, c.n_head_kv, c.head_dim, 1.0f / std::sqrt(float(c.head_dim))};
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
    std::vector<float> x(n * d), h(n * d), q(n * q_dim), k(n * kv_dim), v(n * kv_dim);
    std::vector<float> attn(n * q_dim), gate(n * c.n_ff), up(n * c.n_ff);

    blocks::embed(token_embd_, tokens, x.data());
    for (int l = 0; l < c.n_layer; ++l) {
      const Qwen2Layer& L = layers_[l];

      blocks::rms_norm_rows(x.data(), L.attn_norm, n, d, c.norm_eps, h.data());
      const kernels::MatmulTarget qkv[] = {{&L.wq, q.data()}, {&L.wk, k.data()}, {&L.wv, v.data()}};
      kernels::matmul_shared_input(qkv, h.data(), n);
      blocks::add_bias_rows(q.data(), L.bq, n, q_dim);
      blocks::add_bias_rows(k.data(), L.bk, n, kv_dim);
      blocks::add_bias_rows(v.data(), L.bv, n, kv_dim);
      rope(q.data(), c.n_head, q_dim);
      rope(k.data(), c.n_head_kv, kv_dim);
      blocks::store_kv(kv, l, pos0, n, k.data(), v.data());
      blocks::causal_attention(attention_, kv, l, n, pos0, q.data(), attn.data());
      kernels::matmul(L.wo, attn.data(), n, h.data());
      ops::add(x.data(), h.data(), n * d);

      blocks::rms_norm_rows(x.data(), L.ffn_norm, n, d, c.norm_eps, h.data());
      const kernels::MatmulTarget gate_up[] = {{&L.w_gate, gate.data()}, {&L.w_up, up.data()}};
      kernels::matmul_shared_input(gate_up, h.data(), n);
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
  std::vector<Qwen2Layer> layers_;
  blocks::Attention attention_;
};

}  // namespace

std::unique_ptr<Model> make_qwen2(ModelParts parts) {
  return std::make_unique<Qwen2Model>(std::move(parts));
}

}  // namespace pipit
