// Gemma 2: a scaled embedding, RMSNorm both before and after attention and the feed-forward
// network, a GELU-gated FFN, soft-capped attention scores and logits, and sliding-window
// attention on every other layer.
//
//   x = embed(token) * sqrt(d_model)
//   per layer:  h = rmsnorm(x) * w_attn_norm
//               q, k, v = h Wq, h Wk, h Wv;  q, k = rope_neox(q, k, pos)
//               s = cap_attn * tanh(q k^T / sqrt(d_head) / cap_attn)     (even layers: window)
//               x += rmsnorm(softmax(s + causal mask) v Wo) * w_post_attention_norm
//               h = rmsnorm(x) * w_ffn_norm
//               x += rmsnorm((gelu(h Wgate) * (h Wup)) Wdown) * w_post_ffw_norm
//   logits = cap_final * tanh((rmsnorm(x) * w_output_norm) Wembed / cap_final)
#include <cmath>
#include <string>
#include <vector>

#include "model/architectures.h"
#include "model/blocks.h"
#include "model/rotary.h"
#include "model/weights.h"

namespace pipit {
namespace {

struct Gemma2Layer {
  const float* attn_norm;
  kernels::Matrix wq, wk, wv, wo;
  const float* post_attention_norm;
  const float* ffn_norm;
  kernels::Matrix w_gate, w_up, w_down;
  const float* post_ffw_norm;
};

class Gemma2Model final : public Model {
 public:
  explicit Gemma2Model(ModelParts parts) : Model(std::move(parts)) {
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
          w.vector(p + "post_attention_norm.weight", c.n_embd),
          w.vector(p + "ffn_norm.weight", c.n_embd),
          w.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff),
          w.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff),
          w.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd),
          w.vector(p + "post_ffw_norm.weight", c.n_embd),
      });
    }
    global_ = {c.n_head, c.n_head_kv, c.head_dim, 1.0f / std::sqrt(float(c.head_dim))};
    global_.softcap = static_cast<float>(file_.get_f64("gemma2.attn_logit_softcapping", 50.0));
    local_ = global_;
    local_.window = static_cast<int>(file_.get_u64("gemma2.attention.sliding_window", 4096));
    final_softcap_ = static_cast<float>(file_.get_f64("gemma2.final_logit_softcapping", 30.0));
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
    const float embed_scale = std::sqrt(static_cast<float>(d));
    for (float& value : x) value *= embed_scale;
    for (int l = 0; l < c.n_layer; ++l) {
      const Gemma2Layer& L = layers_[l];

      blocks::rms_norm_rows(x.data(), L.attn_norm, n, d, c.norm_eps, h.data());
      kernels::matmul(L.wq, h.data(), n, q.data());
      kernels::matmul(L.wk, h.data(), n, k.data());
      kernels::matmul(L.wv, h.data(), n, v.data());
      rope(q.data(), c.n_head, q_dim);
      rope(k.data(), c.n_head_kv, kv_dim);
      blocks::store_kv(kv, l, pos0, n, k.data(), v.data());
      blocks::causal_attention(l % 2 == 0 ? local_ : global_, kv, l, n, pos0, q.data(),
                               attn.data());
      kernels::matmul(L.wo, attn.data(), n, h.data());
      blocks::rms_norm_rows(h.data(), L.post_attention_norm, n, d, c.norm_eps, h.data());
      ops::add(x.data(), h.data(), n * d);

      blocks::rms_norm_rows(x.data(), L.ffn_norm, n, d, c.norm_eps, h.data());
      kernels::matmul(L.w_gate, h.data(), n, gate.data());
      kernels::matmul(L.w_up, h.data(), n, up.data());
      ops::gelu(gate.data(), n * c.n_ff);
      for (int i = 0; i < n * c.n_ff; ++i) gate[i] *= up[i];
      kernels::matmul(L.w_down, gate.data(), n, h.data());
      blocks::rms_norm_rows(h.data(), L.post_ffw_norm, n, d, c.norm_eps, h.data());
      ops::add(x.data(), h.data(), n * d);
    }
    ops::rms_norm(&x[(n - 1) * d], output_norm_, d, c.norm_eps, h.data());
    kernels::matmul(output_, h.data(), 1, logits);
    ops::softcap(logits, c.n_vocab, final_softcap_);
  }

 private:
  kernels::Matrix token_embd_;
  const float* output_norm_ = nullptr;
  kernels::Matrix output_;
  RotaryEmbedding rotary_;
  std::vector<Gemma2Layer> layers_;
  blocks::Attention global_, local_;
  float final_softcap_ = 30.0f;
};

}  // namespace

std::unique_ptr<Model> make_gemma2(ModelParts parts) {
  return std::make_unique<Gemma2Model>(std::move(parts));
}

}  // namespace pipit
