// Building blocks the architectures share, over batches of n token rows.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <utility>

#include "model/kv_cache.h"
#include "ops/ops.h"
#include "quant/kernels.h"

namespace pipit::blocks {

// x[t] = row tokens[t] of `table`.
void embed(const kernels::Matrix& table, std::span<const int32_t> tokens, float* x);

void rms_norm_rows(const float* x, const float* weight, int rows, int dim, float eps, float* out);
void layer_norm_rows(const float* x, const float* weight, const float* bias, int rows, int dim,
                     float eps, float* out);
void add_bias_rows(float* y, const float* bias, int rows, int dim);

// Splits each of `rows` rows into consecutive column ranges, one per destination
// (dst, width): for fused projections such as [q | k | v].
void split_columns(const float* src, int rows, std::initializer_list<std::pair<float*, int>> parts);

// Rotates the heads of n rows (row_stride apart) for positions pos0, pos0+1, ...
void rope_rows(const ops::Rope& rope, float* x, int rows, int row_stride, int n_heads, int head_dim,
               int pos0);

struct Attention {
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  float scale = 1.0f;    // applied to q·k
  float softcap = 0.0f;  // 0 = none; else scores become softcap * tanh(score / softcap)
  int window = 0;        // 0 = all earlier positions; else only the last `window` ones
};

// gate[i] = silu(gate[i]) * up[i] for i < count (ops::swiglu), split among the current pool's
// threads: at two threads it is otherwise the longest serial step of a decode layer.
void swiglu(float* gate, const float* up, int64_t count);

// Writes n rows of keys and values (n_head_kv * head_dim each) at positions pos0...
void store_kv(KvCache& kv, int layer, int pos0, int n, const float* k, const float* v);

// Causal attention of n queries at positions pos0.. over the cached keys and values up to
// each query's own position; query head h reads kv head h / (n_head / n_head_kv).
void causal_attention(const Attention& a, const KvCache& kv, int layer, int n, int pos0,
                      const float* q, float* out);

}  // namespace pipit::blocks
