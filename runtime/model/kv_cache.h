// Keys and values of every position seen so far, per layer, in f32.
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
  KvCache(int n_layer, int context_length, int kv_dim);

  int context_length() const { return context_length_; }
  float* key(int layer, int pos) { return keys_.data() + offset(layer, pos); }
  float* value(int layer, int pos) { return values_.data() + offset(layer, pos); }
  const float* key(int layer, int pos) const { return keys_.data() + offset(layer, pos); }
  const float* value(int layer, int pos) const { return values_.data() + offset(layer, pos); }
  size_t bytes() const { return (keys_.size() + values_.size()) * sizeof(float); }

  // Forgets positions [first, first + count) of the `used` ones: the entries after them move
  // down by count, and their keys, stored rotated to their old positions, are turned back by
  // count positions with `rope` (heads of head_dim values).
  void drop(int first, int count, int used, const ops::Rope& rope, int head_dim);
  AttentionCapture* capture = nullptr;  // null except while Session::attention replays

 private:
  size_t offset(int layer, int pos) const {
    return (static_cast<size_t>(layer) * context_length_ + pos) * kv_dim_;
  }
  int n_layer_;
  int context_length_;
  int kv_dim_;
  std::vector<float> keys_;
  std::vector<float> values_;
};

}  // namespace pipit
