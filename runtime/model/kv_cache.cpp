#include "model/kv_cache.h"

#include <new>
#include <string>

#include "core/error.h"

namespace pipit {

KvCache::KvCache(int n_layer, int context_length, int kv_dim)
    : context_length_(context_length), kv_dim_(kv_dim) {
  const size_t n = static_cast<size_t>(n_layer) * context_length * kv_dim;
  try {
    keys_.resize(n);
    values_.resize(n);
  } catch (const std::bad_alloc&) {
    fail(ErrorKind::kOutOfMemory,
         "not enough memory for a KV cache of " + std::to_string(context_length) + " positions (" +
             std::to_string(2 * n * sizeof(float) >> 20) + " MB); use a shorter context length");
  }
}

}  // namespace pipit
