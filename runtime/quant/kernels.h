// The compute kernels over quantized weights: products of a weight matrix with f32
// activations (quantized per matmul as llama.cpp does, then multiplied in integers), and row
// dequantization (embedding lookups). Weights keep their quantized blocks; some types are
// regrouped four rows at a time at load (Layout::kRowsOf4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "quant/types.h"

namespace pipit::kernels {

// How a matrix's blocks are laid out in memory.
enum class Layout {
  kRows,  // as GGUF stores it: each row's blocks one after another
  // Groups of four rows with each block position interleaved: the four block scales (and
  // minimums), then the four rows' quants, arranged as the type's kernel multiplies them
  // (legacy_quants.h, rows_of_4_k.cpp). One pass computes four rows while loading each
  // activation block once.
  kRowsOf4,
};

// A 2-D weight tensor: `rows` rows of `cols` values each.
struct Matrix {
  TensorType type = TensorType::F32;
  const uint8_t* data = nullptr;
  int64_t cols = 0;  // GGUF ne[0]: the input dimension of a matmul
  int64_t rows = 0;  // GGUF ne[1]: the output dimension
  size_t row_bytes = 0;
  Layout layout = Layout::kRows;

  // Row r's bytes; only meaningful for Layout::kRows.
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

// Types the kernels compute with. A model whose weights use another type is refused at load.
bool is_supported(TensorType type);

// dst[0..n) = the n values at the start of `src`, a row of `type`.
void dequantize_row(TensorType type, const uint8_t* src, float* dst, int64_t n);

// Row r of w as floats, whatever its layout (embedding lookups).
void dequantize_matrix_row(const Matrix& w, int64_t r, float* dst);

// Rewrites w's bytes in place into Layout::kRowsOf4 when its type has kernels for that
// layout and its row count is a multiple of 4; otherwise leaves it as it is. `data` is w.data,
// writable. Done once at load.
void interleave_rows_of_4(Matrix& w, uint8_t* data);

// y[t * w.rows + r] = dot(row r of w, x + t * w.cols) for every token t < n_tokens.
void matmul(const Matrix& w, const float* x, int n_tokens, float* y);

// One matrix of several that multiply the same input, and where its product goes (laid out as
// matmul's y).
struct MatmulTarget {
  const Matrix* w;
  float* y;
};

// matmul of every target with the same x (at most 8 matrices, all with the same cols), e.g.
// the query/key/value projections: the input is converted once per activation format and all
// the rows are computed in one parallel pass, so threads meet once instead of once per matrix.
void matmul_shared_input(std::span<const MatmulTarget> targets, const float* x, int n_tokens);

}  // namespace pipit::kernels
