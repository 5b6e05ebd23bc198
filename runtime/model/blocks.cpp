#include "model/blocks.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <xsimd/xsimd.hpp>

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

void swiglu(float* gate, const float* up, int64_t count) {
  constexpr int64_t kChunk = 512;  // a multiple of the 4 lanes ops::swiglu computes at once
  const auto chunks = [&](int64_t begin, int64_t end) {
    const int64_t first = begin * kChunk, last = std::min(count, end * kChunk);
    ops::swiglu(gate + first, up + first, static_cast<int>(last - first));
  };
  const int64_t n_chunks = (count + kChunk - 1) / kChunk;
  ThreadPool::parallel_for_current(n_chunks, 1, chunks);
}

void store_kv(KvCache& kv, int layer, int pos0, int n, const float* k, const float* v, int kv_dim) {
  for (int t = 0; t < n; ++t) {
    std::copy_n(k + t * kv_dim, kv_dim, kv.key(layer, pos0 + t));
    std::copy_n(v + t * kv_dim, kv_dim, kv.value(layer, pos0 + t));
  }
}

namespace {

using Batch = xsimd::batch<float>;
constexpr int kLanes = static_cast<int>(Batch::size);

// scores[p - first] = scale * (q . key p) for p in [first, last]. Four keys a pass, so that
// with 4-lane vectors (WASM) one horizontal add (haddp) serves four dot products: per key,
// that add would cost as much as the multiplies of a 64-value head.
void key_scores(const KvCache& kv, int layer, int kv_off, const float* q, int hd, int first,
                int last, float scale, float* scores) {
  const int vector_end = hd - hd % kLanes;
  int p = first;
  for (; p + 3 <= last; p += 4) {
    const float* k[4];
    Batch acc[4];
    for (int j = 0; j < 4; ++j) {
      k[j] = kv.key(layer, p + j) + kv_off;
      acc[j] = Batch(0.0f);
    }
    for (int i = 0; i < vector_end; i += kLanes) {
      const Batch qi = Batch::load_unaligned(q + i);
      for (int j = 0; j < 4; ++j) acc[j] = xsimd::fma(qi, Batch::load_unaligned(k[j] + i), acc[j]);
    }
    alignas(64) float sums[kLanes];
    if constexpr (kLanes == 4) {
      xsimd::haddp(acc).store_aligned(sums);
    } else {
      for (int j = 0; j < 4; ++j) sums[j] = xsimd::hadd(acc[j]);
    }
    for (int j = 0; j < 4; ++j) {
      float s = sums[j];
      for (int i = vector_end; i < hd; ++i) s += q[i] * k[j][i];
      scores[p + j - first] = s * scale;
    }
  }
  for (; p <= last; ++p) {
    const float* k = kv.key(layer, p) + kv_off;
    Batch acc(0.0f);
    for (int i = 0; i < vector_end; i += kLanes) {
      acc = xsimd::fma(Batch::load_unaligned(q + i), Batch::load_unaligned(k + i), acc);
    }
    float s = xsimd::hadd(acc);
    for (int i = vector_end; i < hd; ++i) s += q[i] * k[i];
    scores[p - first] = s * scale;
  }
}

// out = sum over p in [first, last] of weights[p - first] * value p. The output is built a
// few vectors at a time with the sum in registers across all positions, not reloaded and
// stored for every position.
void weighted_values(const KvCache& kv, int layer, int kv_off, const float* weights, int hd,
                     int first, int last, float* out) {
  constexpr int kChunk = 4 * kLanes;
  int i = 0;
  for (; i + kChunk <= hd; i += kChunk) {
    Batch acc[4] = {Batch(0.0f), Batch(0.0f), Batch(0.0f), Batch(0.0f)};
    for (int p = first; p <= last; ++p) {
      const Batch w(weights[p - first]);
      const float* v = kv.value(layer, p) + kv_off + i;
      for (int j = 0; j < 4; ++j)
        acc[j] = xsimd::fma(w, Batch::load_unaligned(v + j * kLanes), acc[j]);
    }
    for (int j = 0; j < 4; ++j) acc[j].store_unaligned(out + i + j * kLanes);
  }
  for (; i + kLanes <= hd; i += kLanes) {
    Batch acc(0.0f);
    for (int p = first; p <= last; ++p) {
      acc = xsimd::fma(Batch(weights[p - first]),
                       Batch::load_unaligned(kv.value(layer, p) + kv_off + i), acc);
    }
    acc.store_unaligned(out + i);
  }
  for (; i < hd; ++i) {
    float acc = 0.0f;
    for (int p = first; p <= last; ++p) acc += weights[p - first] * kv.value(layer, p)[kv_off + i];
    out[i] = acc;
  }
}

}  // namespace

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
    thread_local std::vector<float> scores;
    scores.resize(pos0 + n);
    for (int64_t item = begin; item < end; ++item) {
      const int t = static_cast<int>(item / a.n_head), h = static_cast<int>(item % a.n_head);
      const int pos = pos0 + t;
      const int first = a.window > 0 ? std::max(0, pos - a.window + 1) : 0;
      const int n_keys = pos + 1 - first;
      const int kv_off = (h / group) * hd;
      key_scores(kv, layer, kv_off, q + t * q_dim + h * hd, hd, first, pos, a.scale, scores.data());
      if (a.softcap > 0.0f) ops::softcap(scores.data(), n_keys, a.softcap);
      ops::softmax(scores.data(), n_keys);
      if (capture != nullptr) {
        const size_t row = (static_cast<size_t>(h) * capture->n_ctx + pos) * capture->n_ctx;
        std::copy_n(scores.data(), n_keys, capture->weights + row + first);
      }
      weighted_values(kv, layer, kv_off, scores.data(), hd, first, pos, out + t * q_dim + h * hd);
    }
  };
  const int64_t items = static_cast<int64_t>(n) * a.n_head;
  ThreadPool::parallel_for_current(items, 1, pairs);
}

}  // namespace pipit::blocks
