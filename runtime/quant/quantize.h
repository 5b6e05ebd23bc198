// Scalar reference quantizers and dequantizers. They define the bytes pipit writes and the
// values the fast kernels must reproduce, so they follow ggml's reference rounding exactly:
// a row quantized here is byte-identical to the same row quantized by llama-quantize.
#pragma once

#include <cstdint>

#include "quant/types.h"

namespace pipit {

// Encodes n floats as `type` (F32, F16, Q8_0 or Q4_0). n must be a multiple of the type's
// block size (Error kInvalidArgument); other types throw Error(kUnsupported).
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);

// Decodes n values of `type` (same types and rules as quantize_row).
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

}  // namespace pipit
