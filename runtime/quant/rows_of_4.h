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

}  // namespace pipit::kernels
