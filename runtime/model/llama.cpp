// LLaMA: pre-RMSNorm transformer with rotary positions, grouped-query attention and a SwiGLU
// feed-forward network.
//
//   x = embed(token)
//   per layer:  h = rmsnorm(x) * w_attn_norm
//               q, k, v = h Wq, h Wk, h Wv;  q, k = rope(q, pos), rope(k, pos)
//               x += softmax(q k^T / sqrt(d_head) + causal mask) v  Wo
//               h = rmsnorm(x) * w_ffn_norm
//               x += (silu(h Wgate) * (h Wup)) Wdown
//   logits = (rmsnorm(x) * w_output_norm) Woutput      (Woutput = embedding when tied)
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/architectures.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "ops/ops.h"

namespace pipit {
namespace {

struct LlamaLayer {
  const float* attn_norm;
  kernels::Matrix wq, wk, wv, wo;
  const float* ffn_norm;
  kernels::Matrix w_gate, w_up, w_down;
};

class LlamaModel final : public Model {
 public:
  explicit LlamaModel(ModelParts parts) : Model(std::move(parts)) {
    const ModelConfig& c = config_;
    if (file_.get_u64("llama.expert_count", 0) > 0) {
      fail(ErrorKind::kUnsupported, "mixture-of-experts llama models are not supported yet");
    }
    const int q_dim = c.n_head * c.head_dim;
    const int kv_dim = c.n_head_kv * c.head_dim;
    WeightLoader w(file_);
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
          w.vector(p + "ffn_norm.weight", c.n_embd),
          w.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff),
          w.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff),
          w.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd),
      });
    }
  }

  std::unique_ptr<KvCache> new_kv_cache(int context_length) const override {
    return std::make_unique<KvCache>(config_.n_layer, context_length,
                                     config_.n_head_kv * config_.head_dim);
  }

  void forward(std::span<const int32_t> tokens, int pos0, KvCache& kv,
               float* logits) const override {
    const ModelConfig& c = config_;
    const int n = static_cast<int>(tokens.size());
    const int d = c.n_embd, hd = c.head_dim;
    const int q_dim = c.n_head * hd, kv_dim = c.n_head_kv * hd;

    std::vector<float> x(n * d), h(n * d), q(n * q_dim), k(n * kv_dim), v(n * kv_dim);
    std::vector<float> attn(n * q_dim), gate(n * c.n_ff), up(n * c.n_ff);

    for (int t = 0; t < n; ++t) {
      kernels::dequantize_row(token_embd_.type, token_embd_.row(tokens[t]), &x[t * d], d);
    }

    for (int l = 0; l < c.n_layer; ++l) {
      const LlamaLayer& L = layers_[l];

      for (int t = 0; t < n; ++t) ops::rms_norm(&x[t * d], L.attn_norm, d, c.norm_eps, &h[t * d]);
      kernels::matmul(L.wq, h.data(), n, q.data());
      kernels::matmul(L.wk, h.data(), n, k.data());
      kernels::matmul(L.wv, h.data(), n, v.data());
      for (int t = 0; t < n; ++t) {
        const int pos = pos0 + t;
        ops::rope_interleaved(&q[t * q_dim], c.n_head, hd, c.rope_dim, pos, c.rope_freq_base);
        ops::rope_interleaved(&k[t * kv_dim], c.n_head_kv, hd, c.rope_dim, pos, c.rope_freq_base);
        std::copy_n(&k[t * kv_dim], kv_dim, kv.key(l, pos));
        std::copy_n(&v[t * kv_dim], kv_dim, kv.value(l, pos));
      }
      attention(l, n, pos0, q.data(), kv, attn.data());
      kernels::matmul(L.wo, attn.data(), n, h.data());
      ops::add(x.data(), h.data(), n * d);

      for (int t = 0; t < n; ++t) ops::rms_norm(&x[t * d], L.ffn_norm, d, c.norm_eps, &h[t * d]);
      kernels::matmul(L.w_gate, h.data(), n, gate.data());
      kernels::matmul(L.w_up, h.data(), n, up.data());
      ops::swiglu(gate.data(), up.data(), n * c.n_ff);
      kernels::matmul(L.w_down, gate.data(), n, h.data());
      ops::add(x.data(), h.data(), n * d);
    }

    ops::rms_norm(&x[(n - 1) * d], output_norm_, d, c.norm_eps, h.data());
    kernels::matmul(output_, h.data(), 1, logits);
  }

 private:
  // Causal attention of n new queries (positions pos0..pos0+n-1) over every cached position
  // up to their own; query head hq reads kv head hq / (n_head / n_head_kv).
  void attention(int layer, int n, int pos0, const float* q, const KvCache& kv, float* out) const {
    const ModelConfig& c = config_;
    const int hd = c.head_dim, q_dim = c.n_head * hd;
    const int group = c.n_head / c.n_head_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    std::vector<float> scores(pos0 + n);
    for (int t = 0; t < n; ++t) {
      const int n_pos = pos0 + t + 1;
      for (int hq = 0; hq < c.n_head; ++hq) {
        const float* qh = q + t * q_dim + hq * hd;
        const int kv_off = (hq / group) * hd;
        for (int p = 0; p < n_pos; ++p) {
          const float* kp = kv.key(layer, p) + kv_off;
          float s = 0.0f;
          for (int i = 0; i < hd; ++i) s += qh[i] * kp[i];
          scores[p] = s * scale;
        }
        ops::softmax(scores.data(), n_pos);
        float* oh = out + t * q_dim + hq * hd;
        std::fill_n(oh, hd, 0.0f);
        for (int p = 0; p < n_pos; ++p) {
          const float* vp = kv.value(layer, p) + kv_off;
          for (int i = 0; i < hd; ++i) oh[i] += scores[p] * vp[i];
        }
      }
    }
  }

  kernels::Matrix token_embd_;
  const float* output_norm_ = nullptr;
  kernels::Matrix output_;
  std::vector<LlamaLayer> layers_;
};

}  // namespace

std::unique_ptr<Model> make_llama(ModelParts parts) {
  return std::make_unique<LlamaModel>(std::move(parts));
}

}  // namespace pipit
