// Scalar reference quantizers and dequantizers. They define the bytes pipit writes and the
// values the fast kernels must reproduce. F16, Q8_0, Q4_0 and Q5_0 follow ggml's reference
// rounding exactly: a row quantized here is byte-identical to the same row quantized by
// llama-quantize. Q4_K and Q6_K are correct encodings of ggml's block formats (any reader
// decodes them) chosen by a simpler search than llama.cpp's, so their bytes differ from it.
#pragma once

#include <cstdint>

#include "quant/types.h"

namespace pipit {

// Encodes n floats as `type` (F32, F16, Q8_0, Q4_0, Q5_0, Q4_K or Q6_K). n must be a multiple of
// the type's block size (Error kInvalidArgument); other types throw Error(kUnsupported).
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);

// Decodes n values of `type` (same types and rules as quantize_row).
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

}  // namespace pipit
