// Dot products of one weight row with one activation row in the format activation_format()
// names for the weight type. Each type has a scalar reference, written for clarity and
// matching llama.cpp's integer arithmetic, and may have a SIMD version that tests check
// against it.
#pragma once

#include <cstdint>

#include "quant/activations.h"
#include "quant/types.h"

namespace pipit::kernels {

// x is an array of BlockQ8_0 / BlockQ8_1 / BlockQ8_K, or floats for kF32/kF16 (kF16 rows hold
// values already rounded to half precision).
using DotFn = float (*)(const uint8_t* w_row, const void* x, int64_t n);

DotFn reference_dot(TensorType type);
DotFn simd_dot(TensorType type);  // the SIMD version, or the reference where there is none

// One weight row with `count` (1 to 4) activation rows `stride` bytes apart, into out[count]:
// the weights are unpacked once for all of them. Null for types without such a kernel.
using MultiDotFn = void (*)(const uint8_t* w_row, const void* x, size_t stride, int count,
                            int64_t n, float* out);
MultiDotFn simd_multi_dot(TensorType type);

}  // namespace pipit::kernels
