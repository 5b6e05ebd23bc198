// The compute kernels over quantized weights: products of a weight matrix with f32
// activations, and row dequantization (embedding lookups). Weights stay in their file
// format; each row is expanded block by block inside the dot product.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace pipit::kernels {

// A 2-D weight tensor as GGUF stores it: `rows` rows of `cols` values each, row-major.
struct Matrix {
  TensorType type = TensorType::F32;
  const uint8_t* data = nullptr;
  int64_t cols = 0;  // GGUF ne[0]: the input dimension of a matmul
  int64_t rows = 0;  // GGUF ne[1]: the output dimension
  size_t row_bytes = 0;

  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

// Types the kernels compute with. A model whose weights use another type is refused at load.
bool is_supported(TensorType type);

// dst[0..n) = the n values at the start of `src`, a row of `type`.
void dequantize_row(TensorType type, const uint8_t* src, float* dst, int64_t n);

// y[t * w.rows + r] = dot(row r of w, x + t * w.cols) for every token t < n_tokens.
void matmul(const Matrix& w, const float* x, int n_tokens, float* y);

}  // namespace pipit::kernels
