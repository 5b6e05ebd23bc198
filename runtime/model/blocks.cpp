#include "model/blocks.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"

namespace pipit::blocks {

void embed(const kernels::Matrix& table, std::span<const int32_t> tokens, float* x) {
  for (size_t t = 0; t < tokens.size(); ++t) {
    kernels::dequantize_matrix_row(table, tokens[t], x + t * table.cols);
  }
}

void rms_norm_rows(const float* x, const float* weight, int rows, int dim, float eps, float* out) {
  for (int r = 0; r < rows; ++r) ops::rms_norm(x + r * dim, weight, dim, eps, out + r * dim);
}

void layer_norm_rows(const float* x, const float* weight, const float* bias, int rows, int dim,
                     float eps, float* out) {
  for (int r = 0; r < rows; ++r) {
    ops::layer_norm(x + r * dim, weight, bias, dim, eps, out + r * dim);
  }
}

void add_bias_rows(float* y, const float* bias, int rows, int dim) {
  for (int r = 0; r < rows; ++r) ops::add(y + r * dim, bias, dim);
}

void split_columns(const float* src, int rows,
                   std::initializer_list<std::pair<float*, int>> parts) {
  int width = 0;
  for (const auto& part : parts) width += part.second;
  for (int r = 0; r < rows; ++r) {
    const float* row = src + r * width;
    for (const auto& [dst, w] : parts) {
      std::copy_n(row, w, dst + r * w);
      row += w;
    }
  }
}

void rope_rows(const ops::Rope& rope, float* x, int rows, int row_stride, int n_heads, int head_dim,
               int pos0) {
  for (int r = 0; r < rows; ++r) ops::rope(rope, x + r * row_stride, n_heads, head_dim, pos0 + r);
}

void store_kv(KvCache& kv, int layer, int pos0, int n, const float* k, const float* v, int kv_dim) {
  for (int t = 0; t < n; ++t) {
    std::copy_n(k + t * kv_dim, kv_dim, kv.key(layer, pos0 + t));
    std::copy_n(v + t * kv_dim, kv_dim, kv.value(layer, pos0 + t));
  }
}

void causal_attention(const Attention& a, const KvCache& kv, int layer, int n, int pos0,
                      const float* q, float* out) {
  const int hd = a.head_dim, q_dim = a.n_head * hd;
  const int group = a.n_head / a.n_head_kv;
  AttentionCapture* capture =
      kv.capture != nullptr && kv.capture->layer == layer && kv.capture->n_head == a.n_head
          ? kv.capture
          : nullptr;
  // One (token, head) pair per work item: heads are independent, and so are the new tokens.
  const auto pairs = [&](int64_t begin, int64_t end) {
    std::vector<float> scores(pos0 + n);
    for (int64_t item = begin; item < end; ++item) {
      const int t = static_cast<int>(item / a.n_head), h = static_cast<int>(item % a.n_head);
      const int pos = pos0 + t;
      const int first = a.window > 0 ? std::max(0, pos - a.window + 1) : 0;
      const int n_keys = pos + 1 - first;
      const float* qh = q + t * q_dim + h * hd;
      const int kv_off = (h / group) * hd;
      for (int p = first; p <= pos; ++p) {
        const float* kp = kv.key(layer, p) + kv_off;
        float s = 0.0f;
        for (int i = 0; i < hd; ++i) s += qh[i] * kp[i];
        scores[p - first] = s * a.scale;
      }
      if (a.softcap > 0.0f) ops::softcap(scores.data(), n_keys, a.softcap);
      ops::softmax(scores.data(), n_keys);
      if (capture != nullptr) {
        const size_t row = (static_cast<size_t>(h) * capture->n_ctx + pos) * capture->n_ctx;
        std::copy_n(scores.data(), n_keys, capture->weights + row + first);
      }
      float* oh = out + t * q_dim + h * hd;
      std::fill_n(oh, hd, 0.0f);
      for (int p = first; p <= pos; ++p) {
        const float w = scores[p - first];
        const float* vp = kv.value(layer, p) + kv_off;
        for (int i = 0; i < hd; ++i) oh[i] += w * vp[i];
      }
    }
  };
  const int64_t items = static_cast<int64_t>(n) * a.n_head;
  if (ThreadPool* pool = ThreadPool::current(); pool && pool->size() > 1) {
    pool->parallel_for(items, pairs);
  } else {
    pairs(0, items);
  }
}

}  // namespace pipit::blocks
