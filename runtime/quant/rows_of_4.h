// Kernels for Layout::kRowsOf4 (see kernels.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "quant/kernels.h"
#include "quant/types.h"

namespace pipit::kernels {

// Groups [0, n_groups) of four rows, `group_bytes` apart, times n_tokens activation rows
// `stride` bytes apart: y[t * y_stride + 4g + r] = dot(row r of group g, activation row t).
// Null for types without such a kernel.
using Rows4Fn = void (*)(const uint8_t* groups, size_t group_bytes, int64_t n_groups,
                         const uint8_t* x, size_t stride, int n_tokens, int64_t n, float* y,
                         size_t y_stride);
Rows4Fn rows4_kernel(TensorType type);

// How the four-row kernels add up byte products (quant_simd.h): every build has RowProducts;
// the relaxed-SIMD build also has FusedRowProducts, one relaxed dot-add per row vector, which
// it uses where the engine does that in one instruction (asked once, at the first matmul).
enum class ProductFamily { kRowProducts, kFused };
ProductFamily product_family();
// For tests: use `family` whatever the engine (nullopt: the engine's best again). Returns false,
// changing nothing, for a family this build lacks.
bool choose_product_family(std::optional<ProductFamily> family);

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

// A four-row kernel for one group and a fixed number of activation rows (the template
// argument of every kernel): out[k * out_stride + r] = dot(row r, activation row k). `for_groups`
// turns four of them (1 to 4 activation rows) into a Rows4Fn. Each group meets every
// activation row while its weights are in cache, and the kernels are called directly (not
// through a pointer per group), so a decode step's groups run as one loop.
using GroupKernel = void (*)(const uint8_t* group, const uint8_t* x, size_t stride, int64_t n,
                             float* out, size_t out_stride);

template <GroupKernel K1, GroupKernel K2, GroupKernel K3, GroupKernel K4>
void for_groups(const uint8_t* groups, size_t group_bytes, int64_t n_groups, const uint8_t* x,
                size_t stride, int n_tokens, int64_t n, float* y, size_t y_stride) {
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* group = groups + g * group_bytes;
    float* yg = y + 4 * g;
    int t = 0;
    for (; t + 4 <= n_tokens; t += 4)
      K4(group, x + t * stride, stride, n, yg + t * y_stride, y_stride);
    const uint8_t* xt = x + t * stride;
    float* yt = yg + t * y_stride;
    switch (n_tokens - t) {
      case 1:
        K1(group, xt, stride, n, yt, y_stride);
        break;
      case 2:
        K2(group, xt, stride, n, yt, y_stride);
        break;
      case 3:
        K3(group, xt, stride, n, yt, y_stride);
        break;
      default:
        break;
    }
  }
}

}  // namespace pipit::kernels
