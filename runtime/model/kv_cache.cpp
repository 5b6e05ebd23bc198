#include "model/kv_cache.h"

#include <algorithm>
#include <new>
#include <string>

#include "core/error.h"

namespace pipit {

KvCache::KvCache(int n_layer, int context_length, int n_head_kv, int head_dim)
    : n_layer_(n_layer),
      context_length_(context_length),
      n_head_kv_(n_head_kv),
      head_dim_(head_dim) {
  const size_t n = static_cast<size_t>(n_layer) * context_length * n_head_kv * head_dim;
  try {
    keys_.resize(n);
    values_.resize(n);
  } catch (const std::bad_alloc&) {
    fail(ErrorKind::kOutOfMemory,
         "not enough memory for a KV cache of " + std::to_string(context_length) + " positions (" +
             std::to_string(2 * n * sizeof(float) >> 20) + " MB); use a shorter context length");
  }
}

void KvCache::drop(int first, int count, int used, const ops::Rope& rope) {
  for (int layer = 0; layer < n_layer_; ++layer) {
    for (int head = 0; head < n_head_kv_; ++head) {
      // A head's positions are adjacent: the kept ones move down as one block.
      std::copy(key(layer, head, first + count), key(layer, head, used), key(layer, head, first));
      std::copy(value(layer, head, first + count), value(layer, head, used),
                value(layer, head, first));
      for (int pos = first; pos < used - count; ++pos) {
        ops::rope_shift(rope, key(layer, head, pos), 1, head_dim_, -count);
      }
    }
  }
}

}  // namespace pipit
