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

void store_kv(KvCache& kv, int layer, int pos0, int n, const float* k, const float* v) {
  const int hd = kv.head_dim(), kv_dim = kv.n_head_kv() * hd;
  for (int t = 0; t < n; ++t) {
    for (int head = 0; head < kv.n_head_kv(); ++head) {
      std::copy_n(k + t * kv_dim + head * hd, hd, kv.key(layer, head, pos0 + t));
      std::copy_n(v + t * kv_dim + head * hd, hd, kv.value(layer, head, pos0 + t));
    }
  }
}

namespace {

using Batch = xsimd::batch<float>;
constexpr int kLanes = static_cast<int>(Batch::size);

// For the n_heads query heads that share one kv head (q holds them one after another), whose
// keys are `keys` (hd values per position): scores[h * scores_stride + p - first] = scale *
// (q_h . key p) for p in [first, last]. Four keys a pass, taken by every head in turn, so that
// the other heads find the keys in L1. Two sums per key (even and odd vectors) keep eight
// chains of adds in flight: with one, a pass waited on the latency of hd / 4 dependent adds.
// Four keys, so that with 4-lane vectors (WASM) one horizontal add (haddp) serves four dot
// products.
void key_scores(const float* keys, const float* q, int n_heads, int hd, int first, int last,
                float scale, float* scores, int scores_stride) {
  const int pairs_end = hd - hd % (2 * kLanes), vector_end = hd - hd % kLanes;
  int p = first;
  for (; p + 3 <= last; p += 4) {
    const float* k[4];
    for (int j = 0; j < 4; ++j) k[j] = keys + (p + j) * hd;
    for (int h = 0; h < n_heads; ++h) {
      const float* qh = q + h * hd;
      Batch even[4], odd[4];
      for (int j = 0; j < 4; ++j) even[j] = odd[j] = Batch(0.0f);
      int i = 0;
      for (; i < pairs_end; i += 2 * kLanes) {
        const Batch q0 = Batch::load_unaligned(qh + i), q1 = Batch::load_unaligned(qh + i + kLanes);
        for (int j = 0; j < 4; ++j) {
          even[j] = xsimd::fma(q0, Batch::load_unaligned(k[j] + i), even[j]);
          odd[j] = xsimd::fma(q1, Batch::load_unaligned(k[j] + i + kLanes), odd[j]);
        }
      }
      if (i < vector_end) {
        const Batch q0 = Batch::load_unaligned(qh + i);
        for (int j = 0; j < 4; ++j)
          even[j] = xsimd::fma(q0, Batch::load_unaligned(k[j] + i), even[j]);
      }
      for (int j = 0; j < 4; ++j) even[j] += odd[j];
      alignas(64) float sums[kLanes];
      if constexpr (kLanes == 4) {
        xsimd::haddp(even).store_aligned(sums);
      } else {
        for (int j = 0; j < 4; ++j) sums[j] = xsimd::hadd(even[j]);
      }
      for (int j = 0; j < 4; ++j) {
        float s = sums[j];
        for (int t = vector_end; t < hd; ++t) s += qh[t] * k[j][t];
        scores[h * scores_stride + p + j - first] = s * scale;
      }
    }
  }
  for (; p <= last; ++p) {
    const float* k = keys + p * hd;
    for (int h = 0; h < n_heads; ++h) {
      const float* qh = q + h * hd;
      Batch acc(0.0f);
      for (int i = 0; i < vector_end; i += kLanes) {
        acc = xsimd::fma(Batch::load_unaligned(qh + i), Batch::load_unaligned(k + i), acc);
      }
      float s = xsimd::hadd(acc);
      for (int i = vector_end; i < hd; ++i) s += qh[i] * k[i];
      scores[h * scores_stride + p - first] = s * scale;
    }
  }
}

// out[i, i + kVectors * kLanes) = sum over p in [first, last] of weights[p - first] *
// value p (hd values per position), with the sums in registers across all positions.
template <int kVectors>
void weighted_values_slice(const float* values, int hd, const float* weights, int first, int last,
                           int i, float* out) {
  Batch acc[kVectors];
  for (int j = 0; j < kVectors; ++j) acc[j] = Batch(0.0f);
  for (int p = first; p <= last; ++p) {
    const Batch w(weights[p - first]);
    const float* v = values + p * hd + i;
    for (int j = 0; j < kVectors; ++j) {
      acc[j] = xsimd::fma(w, Batch::load_unaligned(v + j * kLanes), acc[j]);
    }
  }
  for (int j = 0; j < kVectors; ++j) acc[j].store_unaligned(out + i + j * kLanes);
}

// out = sum over p in [first, last] of weights[p - first] * value p. Eight vectors a pass
// keep eight chains of adds in flight, each one add per position.
void weighted_values(const float* values, const float* weights, int hd, int first, int last,
                     float* out) {
  int i = 0;
  for (; i + 8 * kLanes <= hd; i += 8 * kLanes) {
    weighted_values_slice<8>(values, hd, weights, first, last, i, out);
  }
  for (; i + 4 * kLanes <= hd; i += 4 * kLanes) {
    weighted_values_slice<4>(values, hd, weights, first, last, i, out);
  }
  for (; i + kLanes <= hd; i += kLanes) {
    weighted_values_slice<1>(values, hd, weights, first, last, i, out);
  }
  for (; i < hd; ++i) {
    float acc = 0.0f;
    for (int p = first; p <= last; ++p) acc += weights[p - first] * values[p * hd + i];
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
  // A work item is one token's query heads that share a kv head, so that they share each load
  // of a key or value. But when those items would leave a thread idle for long (decoding
  // three kv heads on two threads), an item is one head.
  const ThreadPool* pool = ThreadPool::current();
  const int64_t threads = pool != nullptr ? pool->size() : 1;
  const int64_t groups = static_cast<int64_t>(n) * a.n_head_kv;
  const int heads_per_item = groups % threads == 0 || groups >= 4 * threads ? group : 1;
  const int items_per_token = a.n_head / heads_per_item;
  const auto items = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    const int scores_stride = pos0 + n;
    scores.resize(static_cast<size_t>(heads_per_item) * scores_stride);
    for (int64_t item = begin; item < end; ++item) {
      const int t = static_cast<int>(item / items_per_token);
      const int h0 = static_cast<int>(item % items_per_token) * heads_per_item;
      const int pos = pos0 + t;
      const int first = a.window > 0 ? std::max(0, pos - a.window + 1) : 0;
      const int n_keys = pos + 1 - first;
      const int kv_head = h0 / group;
      const float* q_item = q + t * q_dim + h0 * hd;
      key_scores(kv.key(layer, kv_head, 0), q_item, heads_per_item, hd, first, pos, a.scale,
                 scores.data(), scores_stride);
      for (int h = 0; h < heads_per_item; ++h) {
        float* head_scores = scores.data() + h * scores_stride;
        if (a.softcap > 0.0f) ops::softcap(head_scores, n_keys, a.softcap);
        ops::softmax(head_scores, n_keys);
        if (capture != nullptr) {
          const size_t row = (static_cast<size_t>(h0 + h) * capture->n_ctx + pos) * capture->n_ctx;
          std::copy_n(head_scores, n_keys, capture->weights + row + first);
        }
      }
      for (int h = 0; h < heads_per_item; ++h) {
        weighted_values(kv.value(layer, kv_head, 0), scores.data() + h * scores_stride, hd, first,
                        pos, out + t * q_dim + (h0 + h) * hd);
      }
    }
  };
  ThreadPool::parallel_for_current(static_cast<int64_t>(n) * items_per_token, 1, items);
}

}  // namespace pipit::blocks
