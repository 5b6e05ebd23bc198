// Kernels for Layout::kRowsOf4 (see kernels.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "quant/kernels.h"
#include "quant/types.h"

namespace pipit::kernels {

// Four rows (one group) with `count` (1 to 4) activation rows `stride` bytes apart:
// out[4k + r] = dot(row r, activation row k). Null for types without such a kernel.
using Rows4Fn = void (*)(const uint8_t* group, const uint8_t* x, size_t stride, int count,
                         int64_t n, float* out);
Rows4Fn rows4_kernel(TensorType type);

// The four-row layouts are written in place: calls rewrite(group, original) for every group of
// four rows of w (`data` is w's bytes), with `original` a copy of the group's bytes as they
// were, so that the rewrite can read any row while it writes the group.
template <typename Rewrite>
void rewrite_groups_of_4(const Matrix& w, uint8_t* data, Rewrite&& rewrite) {
  const size_t group_bytes = 4 * w.row_bytes;
  std::vector<uint8_t> original(group_bytes);
  for (int64_t g = 0; g < w.rows / 4; ++g) {
    uint8_t* group = data + g * group_bytes;
    std::memcpy(original.data(), group, group_bytes);
    rewrite(group, original.data());
  }
}

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
