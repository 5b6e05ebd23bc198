// Kernels for Layout::kRowsOf4 (see kernels.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace pipit::kernels {

// Four rows (one group) with `count` (1 to 4) activation rows `stride` bytes apart:
// out[4k + r] = dot(row r, activation row k). Null for types without such a kernel.
using Rows4Fn = void (*)(const uint8_t* group, const uint8_t* x, size_t stride, int count,
                         int64_t n, float* out);
Rows4Fn rows4_kernel(TensorType type);

// A four-row kernel for a fixed number of activation rows (the template argument of every
// kernel): `for_count` turns four of them (1 to 4 rows) into one Rows4Fn.
using GroupKernel = void (*)(const uint8_t* group, const uint8_t* x, size_t stride, int64_t n,
                             float* out);

template <GroupKernel K1, GroupKernel K2, GroupKernel K3, GroupKernel K4>
void for_count(const uint8_t* g, const uint8_t* x, size_t stride, int count, int64_t n,
               float* out) {
  switch (count) {
    case 1:
      return K1(g, x, stride, n, out);
    case 2:
      return K2(g, x, stride, n, out);
    case 3:
      return K3(g, x, stride, n, out);
    default:
      return K4(g, x, stride, n, out);
  }
}

}  // namespace pipit::kernels
