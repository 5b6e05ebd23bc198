// Activations quantized the way llama.cpp's CPU backend quantizes them before every matmul,
// so that integer dot products with quantized weights give llama.cpp's numbers:
//   Q8_0 (for Q4_0, Q5_0, Q8_0 weights): 32 values, scale amax/127 rounded to f16,
//        q = round-half-even(x * 127/amax); pipit adds the integer sum of q
//   Q8_1 (for Q4_1, Q5_1): Q8_0 plus s = d * sum(q), rounded to f16
//   Q8_K (for the K-quants): 256 values, scale 1/(-127/max) in f32 where max is the value of
//        largest magnitude, q = round-half-even(x * -127/max), and sums of each 16 values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quant/types.h"

namespace pipit::kernels {

struct BlockQ8_0 {
  float d;  // the f16 scale, widened
  // sum(qs), made once per matmul input: weights kept unsigned with an offset o
  // (w = d * (q - o)) subtract o * sum from every row's sum of q * qs.
  int32_t sum;
  int8_t qs[32];
};

struct BlockQ8_1 {
  float d;
  float s;  // d * sum(qs), through f16
  int8_t qs[32];
};

struct BlockQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};

// Which activation format a weight type's dot product wants.
enum class ActivationFormat { kF32, kF16, kQ8_0, kQ8_1, kQ8_K };
ActivationFormat activation_format(TensorType weight_type);

void quantize_q8_0(const float* x, BlockQ8_0* out, int64_t n);
void quantize_q8_1(const float* x, BlockQ8_1* out, int64_t n);
void quantize_q8_K(const float* x, BlockQ8_K* out, int64_t n);

// Block b of activation row k, for converted rows `stride` bytes apart.
template <typename Block>
const Block& block_of(const uint8_t* x, size_t stride, int k, int64_t b) {
  return reinterpret_cast<const Block*>(x + k * stride)[b];
}

}  // namespace pipit::kernels
