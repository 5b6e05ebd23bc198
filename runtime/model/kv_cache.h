// Keys and values of every position seen so far, per layer and kv head, in f32.
#pragma once

#include <cstddef>
#include <vector>

#include "ops/ops.h"

namespace pipit {

// Where causal_attention copies one layer's attention weights (after softmax) while set: for
// the "look inside" views, filled by a replay of the context, never during generation.
struct AttentionCapture {
  int layer = -1;
  int n_head = 0;
  int n_ctx = 0;  // queries and keys per head: weights[(head * n_ctx + query) * n_ctx + key]
  float* weights = nullptr;
};

class KvCache {
 public:
  KvCache(int n_layer, int context_length, int n_head_kv, int head_dim);

  int context_length() const { return context_length_; }
  int n_head_kv() const { return n_head_kv_; }
  int head_dim() const { return head_dim_; }
  // head_dim values of one kv head at one position. A head's positions are adjacent, so
  // attention reads its keys (or values) as one stream, which the hardware fetches ahead. With
  // all kv heads of a position side by side instead, one token's attention over 1024 positions
  // took 25.9 ns per query head and key against 14.0 (SmolLM2-135M's heads, keys and values
  // coming from memory; pipit-kernel-bench, Chromium).
  float* key(int layer, int head, int pos) { return keys_.data() + offset(layer, head, pos); }
  float* value(int layer, int head, int pos) { return values_.data() + offset(layer, head, pos); }
  const float* key(int layer, int head, int pos) const {
    return keys_.data() + offset(layer, head, pos);
  }
  const float* value(int layer, int head, int pos) const {
    return values_.data() + offset(layer, head, pos);
  }
  size_t bytes() const { return (keys_.size() + values_.size()) * sizeof(float); }

  // Forgets positions [first, first + count) of the `used` ones: the entries after them move
  // down by count, and their keys, stored rotated to their old positions, are turned back by
  // count positions with `rope`.
  void drop(int first, int count, int used, const ops::Rope& rope);
  AttentionCapture* capture = nullptr;  // null except while Session::attention replays

 private:
  size_t offset(int layer, int head, int pos) const {
    return ((static_cast<size_t>(layer) * n_head_kv_ + head) * context_length_ + pos) * head_dim_;
  }
  int n_layer_;
  int context_length_;
  int n_head_kv_;
  int head_dim_;
  std::vector<float> keys_;
  std::vector<float> values_;
};

}  // namespace pipit
