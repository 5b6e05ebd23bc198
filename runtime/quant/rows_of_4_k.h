// Layout::kRowsOf4 for the K-quants (rows_of_4.cpp hands these types over).
#pragma once

#include <cstdint>

#include "quant/kernels.h"
#include "quant/rows_of_4.h"

namespace pipit::kernels {

// The four-row kernel of a K-quant type, or null when it has none.
Rows4Fn rows4_k_kernel(TensorType type);

// Rewrites w in place into Layout::kRowsOf4 when it is a K-quant type with a four-row kernel
// and its row count is a multiple of 4. Returns whether w's type has such a kernel (whether or
// not the row count allowed the rewrite).
bool interleave_k_rows_of_4(Matrix& w, uint8_t* data);

// Row r of a K-quant matrix in Layout::kRowsOf4, decoded into dst. Returns false for other types.
bool dequantize_k_row_of_4(const Matrix& w, int64_t r, float* dst);

}  // namespace pipit::kernels
