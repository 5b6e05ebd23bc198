// GPT-2: learned absolute positions, LayerNorm with bias, one fused [q | k | v] projection,
// biases everywhere, a GELU feed-forward network, and plain multi-head attention.
//
//   x = embed(token) + position_embedding(pos)
//   per layer:  h = layernorm(x) * w_attn_norm + b_attn_norm
//               [q | k | v] = h Wqkv + bqkv
//               x += softmax(q k^T / sqrt(d_head) + causal mask) v  Wo + bo
//               h = layernorm(x) * w_ffn_norm + b_ffn_norm
//               x += gelu(h Wup + bup) Wdown + bdown
//   logits = (layernorm(x) * w_output_norm + b_output_norm) Woutput
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/architectures.h"
#include "model/blocks.h"
#include "model/weights.h"

namespace pipit {
namespace {

struct Gpt2Layer {
  const float *attn_norm, *attn_norm_bias;
  kernels::Matrix w_qkv;
  const float* b_qkv;
  kernels::Matrix wo;
  const float* bo;
  const float *ffn_norm, *ffn_norm_bias;
  kernels::Matrix w_up;
  const float* b_up;
  kernels::Matrix w_down;
  const float* b_down;
};

class Gpt2Model final : public Model {
 public:
  explicit Gpt2Model(ModelParts parts) : Model(std::move(parts)) {
    const ModelConfig& c = config_;
    const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
    WeightLoader w(file_);
    token_embd_ = w.matrix("token_embd.weight", c.n_embd, c.n_vocab);
    position_embd_ = w.matrix("position_embd.weight", c.n_embd, c.n_ctx_train);
    output_norm_ = w.vector("output_norm.weight", c.n_embd);
    output_norm_bias_ = w.vector("output_norm.bias", c.n_embd);
    output_ = w.has("output.weight") ? w.matrix("output.weight", c.n_embd, c.n_vocab) : token_embd_;
    for (int l = 0; l < c.n_layer; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      layers_.push_back({
          w.vector(p + "attn_norm.weight", c.n_embd),
          w.vector(p + "attn_norm.bias", c.n_embd),
          w.matrix(p + "attn_qkv.weight", c.n_embd, q_dim + 2 * kv_dim),
          w.vector(p + "attn_qkv.bias", q_dim + 2 * kv_dim),
          w.matrix(p + "attn_output.weight", q_dim, c.n_embd),
          w.vector(p + "attn_output.bias", c.n_embd),
          w.vector(p + "ffn_norm.weight", c.n_embd),
          w.vector(p + "ffn_norm.bias", c.n_embd),
          w.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff),
          w.vector(p + "ffn_up.bias", c.n_ff),
          w.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd),
          w.vector(p + "ffn_down.bias", c.n_embd),
      });
    }
    attention_ = {c.n_head, c.n_head_kv, c.head_dim, 1.0f / std::sqrt(float(c.head_dim))};
  }

  std::unique_ptr<KvCache> new_kv_cache(int context_length) const override {
    if (context_length > config_.n_ctx_train) {
      fail(ErrorKind::kInvalidArgument,
           "GPT-2 models only know positions up to their training context of " +
               std::to_string(config_.n_ctx_train) + " tokens; a context of " +
               std::to_string(context_length) + " is not possible");
    }
    return std::make_unique<KvCache>(config_.n_layer, context_length, config_.n_head_kv,
                                     config_.head_dim);
  }

  void forward(std::span<const int32_t> tokens, int pos0, KvCache& kv,
               float* logits) const override {
    const ModelConfig& c = config_;
    const int n = static_cast<int>(tokens.size());
    const int d = c.n_embd, q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
    const float eps = c.norm_eps;
    std::vector<float> x(n * d), h(n * d), qkv(n * (q_dim + 2 * kv_dim)), pos_row(d);
    std::vector<float> q(n * q_dim), k(n * kv_dim), v(n * kv_dim), attn(n * q_dim);
    std::vector<float> up(n * c.n_ff);

    blocks::embed(token_embd_, tokens, x.data());
    for (int t = 0; t < n; ++t) {
      kernels::dequantize_row(position_embd_.type, position_embd_.row(pos0 + t), pos_row.data(), d);
      ops::add(&x[t * d], pos_row.data(), d);
    }
    for (int l = 0; l < c.n_layer; ++l) {
      const Gpt2Layer& L = layers_[l];

      blocks::layer_norm_rows(x.data(), L.attn_norm, L.attn_norm_bias, n, d, eps, h.data());
      kernels::matmul(L.w_qkv, h.data(), n, qkv.data());
      blocks::add_bias_rows(qkv.data(), L.b_qkv, n, q_dim + 2 * kv_dim);
      blocks::split_columns(qkv.data(), n,
                            {{q.data(), q_dim}, {k.data(), kv_dim}, {v.data(), kv_dim}});
      blocks::store_kv(kv, l, pos0, n, k.data(), v.data());
      blocks::causal_attention(attention_, kv, l, n, pos0, q.data(), attn.data());
      kernels::matmul(L.wo, attn.data(), n, h.data());
      blocks::add_bias_rows(h.data(), L.bo, n, d);
      ops::add(x.data(), h.data(), n * d);

      blocks::layer_norm_rows(x.data(), L.ffn_norm, L.ffn_norm_bias, n, d, eps, h.data());
      kernels::matmul(L.w_up, h.data(), n, up.data());
      blocks::add_bias_rows(up.data(), L.b_up, n, c.n_ff);
      ops::gelu(up.data(), n * c.n_ff);
      kernels::matmul(L.w_down, up.data(), n, h.data());
      blocks::add_bias_rows(h.data(), L.b_down, n, d);
      ops::add(x.data(), h.data(), n * d);
    }
    ops::layer_norm(&x[(n - 1) * d], output_norm_, output_norm_bias_, d, eps, h.data());
    kernels::matmul(output_, h.data(), 1, logits);
  }

 private:
  kernels::Matrix token_embd_, position_embd_;
  const float *output_norm_ = nullptr, *output_norm_bias_ = nullptr;
  kernels::Matrix output_;
  std::vector<Gpt2Layer> layers_;
  blocks::Attention attention_;
};

}  // namespace

std::unique_ptr<Model> make_gpt2(ModelParts parts) {
  return std::make_unique<Gpt2Model>(std::move(parts));
}

}  // namespace pipit
