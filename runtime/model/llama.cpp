// LLaMA: pre-RMSNorm transformer with rotary positions (interleaved pairs), grouped-query
// attention (over a sliding window in Mistral's files) and a SwiGLU feed-forward network — or, in
// Mixtral-style files, a mixture of SwiGLU experts of which a router picks the top k per token.
//
//   x = embed(token)
//   per layer:  h = rmsnorm(x) * w_attn_norm
//               q, k, v = h Wq, h Wk, h Wv;  q, k = rope(q, pos), rope(k, pos)
//               x += softmax(q k^T / sqrt(d_head) + causal mask) v  Wo
//                    (Mistral: the mask also hides keys more than sliding_window - 1 back)
//               h = rmsnorm(x) * w_ffn_norm
//               x += (silu(h Wgate) * (h Wup)) Wdown
//                 or, with experts:  p = softmax(h Wrouter);  E = the k largest p
//                    x += sum over e in E of  p_e / sum_E(p) * (silu(h Wgate_e) * (h Wup_e))
//                    Wdown_e
//   logits = (rmsnorm(x) * w_output_norm) Woutput      (Woutput = embedding when tied)
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/architectures.h"
#include "model/blocks.h"
#include "model/rotary.h"
#include "model/weights.h"

namespace pipit {
namespace {

struct Experts {
  kernels::Matrix router;  // n_embd -> n_expert
  std::vector<kernels::Matrix> gate, up, down;
  int n_used = 0;
};

struct LlamaLayer {
  const float* attn_norm;
  kernels::Matrix wq, wk, wv, wo;
  const float* ffn_norm;
  kernels::Matrix w_gate, w_up, w_down;  // dense FFN
  Experts experts;                       // MoE FFN, when the file has experts
};

class LlamaModel final : public Model {
 public:
  explicit LlamaModel(ModelParts parts) : Model(std::move(parts)) {
    const ModelConfig& c = config_;
    const int q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
    const int n_expert = static_cast<int>(file_.get_u64("llama.expert_count", 0));
    const int n_used = static_cast<int>(file_.get_u64("llama.expert_used_count", 0));
    if (n_expert > 0 && (n_used < 1 || n_used > n_expert)) {
      fail(ErrorKind::kFormat, "llama.expert_used_count is " + std::to_string(n_used) +
                                   " but must be between 1 and expert_count " +
                                   std::to_string(n_expert));
    }
    WeightLoader w(file_);
    rotary_ = RotaryEmbedding(file_, c, ops::RopeStyle::kInterleaved, w);
    token_embd_ = w.matrix("token_embd.weight", c.n_embd, c.n_vocab);
    output_norm_ = w.vector("output_norm.weight", c.n_embd);
    output_ = w.has("output.weight") ? w.matrix("output.weight", c.n_embd, c.n_vocab) : token_embd_;
    for (int l = 0; l < c.n_layer; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      LlamaLayer L{};
      L.attn_norm = w.vector(p + "attn_norm.weight", c.n_embd);
      L.wq = w.matrix(p + "attn_q.weight", c.n_embd, q_dim);
      L.wk = w.matrix(p + "attn_k.weight", c.n_embd, kv_dim);
      L.wv = w.matrix(p + "attn_v.weight", c.n_embd, kv_dim);
      L.wo = w.matrix(p + "attn_output.weight", q_dim, c.n_embd);
      L.ffn_norm = w.vector(p + "ffn_norm.weight", c.n_embd);
      if (n_expert > 0) {
        L.experts.router = w.matrix(p + "ffn_gate_inp.weight", c.n_embd, n_expert);
        L.experts.gate = w.experts(p + "ffn_gate_exps.weight", c.n_embd, c.n_ff, n_expert);
        L.experts.up = w.experts(p + "ffn_up_exps.weight", c.n_embd, c.n_ff, n_expert);
        L.experts.down = w.experts(p + "ffn_down_exps.weight", c.n_ff, c.n_embd, n_expert);
        L.experts.n_used = n_used;
      } else {
        L.w_gate = w.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff);
        L.w_up = w.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff);
        L.w_down = w.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd);
      }
      layers_.push_back(std::move(L));
    }
    attention_ = {c.n_head, c.n_head_kv, c.head_dim, 1.0f / std::sqrt(float(c.head_dim))};
    attention_.window = c.sliding_window;  // Mistral
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
      const LlamaLayer& L = layers_[l];

      blocks::rms_norm_rows(x.data(), L.attn_norm, n, d, c.norm_eps, h.data());
      const kernels::MatmulTarget qkv[] = {{&L.wq, q.data()}, {&L.wk, k.data()}, {&L.wv, v.data()}};
      kernels::matmul_shared_input(qkv, h.data(), n);
      rope(q.data(), c.n_head, q_dim);
      rope(k.data(), c.n_head_kv, kv_dim);
      blocks::store_kv(kv, l, pos0, n, k.data(), v.data());
      blocks::causal_attention(attention_, kv, l, n, pos0, q.data(), attn.data());
      kernels::matmul(L.wo, attn.data(), n, h.data());
      ops::add(x.data(), h.data(), n * d);

      blocks::rms_norm_rows(x.data(), L.ffn_norm, n, d, c.norm_eps, h.data());
      if (L.experts.n_used > 0) {
        for (int t = 0; t < n; ++t) mixture_of_experts(L.experts, &h[t * d], &x[t * d]);
      } else {
        const kernels::MatmulTarget gate_up[] = {{&L.w_gate, gate.data()}, {&L.w_up, up.data()}};
        kernels::matmul_shared_input(gate_up, h.data(), n);
        blocks::swiglu(gate.data(), up.data(), n * c.n_ff);
        kernels::matmul(L.w_down, gate.data(), n, h.data());
        ops::add(x.data(), h.data(), n * d);
      }
    }
    ops::rms_norm(&x[(n - 1) * d], output_norm_, d, c.norm_eps, h.data());
    kernels::matmul(output_, h.data(), 1, logits);
  }

 private:
  // x += the router-weighted sum of the chosen experts' SwiGLU outputs for one token h.
  void mixture_of_experts(const Experts& E, const float* h, float* x) const {
    const int n_expert = static_cast<int>(E.gate.size());
    const int d = config_.n_embd, ff = config_.n_ff;
    std::vector<float> p(n_expert), gate(ff), up(ff), out(d);
    kernels::matmul(E.router, h, 1, p.data());
    ops::softmax(p.data(), n_expert);
    std::vector<int> order(n_expert);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    float chosen_mass = 0.0f;
    for (int i = 0; i < E.n_used; ++i) chosen_mass += p[order[i]];
    for (int i = 0; i < E.n_used; ++i) {
      const int e = order[i];
      kernels::matmul(E.gate[e], h, 1, gate.data());
      kernels::matmul(E.up[e], h, 1, up.data());
      blocks::swiglu(gate.data(), up.data(), ff);
      kernels::matmul(E.down[e], gate.data(), 1, out.data());
      const float weight = p[e] / chosen_mass;
      for (int j = 0; j < d; ++j) x[j] += weight * out[j];
    }
  }

  kernels::Matrix token_embd_;
  const float* output_norm_ = nullptr;
  kernels::Matrix output_;
  RotaryEmbedding rotary_;
  std::vector<LlamaLayer> layers_;
  blocks::Attention attention_;
};

}  // namespace

std::unique_ptr<Model> make_llama(ModelParts parts) {
  return std::make_unique<LlamaModel>(std::move(parts));
}

}  // namespace pipit
