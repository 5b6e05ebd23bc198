// The 32 quants of a legacy block (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) as two vectors of int8, values
// 0-15 and 16-31, read from the bytes that follow the block's scale (and minimum). The
// symmetric types come out centred on zero; Q4_1 and Q5_1 stay unsigned (their minimum is
// added separately). Shared by the row kernels and the four-row kernels.
#pragma once

#include <cstdint>
#include <cstring>

#include "quant/simd128.h"

namespace pipit::kernels {

struct Quants32 {
  simd::V lo, hi;
};

using UnpackFn = Quants32 (*)(const uint8_t* quants);

inline Quants32 unpack_q8_0(const uint8_t* q) {
  return {simd::load(q), simd::load(q + 16)};
}

// Low nibbles are values 0-15, high nibbles 16-31.
inline Quants32 nibbles(const uint8_t* q) {
  const simd::V packed = simd::load(q);
  return {simd::bit_and(packed, simd::splat_i8(0x0F)), simd::shr_u8<4>(packed)};
}

// Q5: a 32-bit mask of fifth bits (bit j belongs to value j), then the nibbles.
inline Quants32 five_bits(const uint8_t* q) {
  uint32_t qh;
  std::memcpy(&qh, q, 4);
  const Quants32 low = nibbles(q + 4);
  return {simd::bit_or(low.lo, simd::fifth_bits(qh & 0xFFFF)),
          simd::bit_or(low.hi, simd::fifth_bits(qh >> 16))};
}

inline Quants32 centred(Quants32 q, int8_t offset) {
  const simd::V o = simd::splat_i8(offset);
  return {simd::sub_i8(q.lo, o), simd::sub_i8(q.hi, o)};
}

inline Quants32 unpack_q4_0(const uint8_t* q) {
  return centred(nibbles(q), 8);
}
inline Quants32 unpack_q5_0(const uint8_t* q) {
  return centred(five_bits(q), 16);
}
inline Quants32 unpack_q4_1(const uint8_t* q) {
  return nibbles(q);
}
inline Quants32 unpack_q5_1(const uint8_t* q) {
  return five_bits(q);
}

}  // namespace pipit::kernels
