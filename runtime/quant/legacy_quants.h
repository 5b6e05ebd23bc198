// The legacy 32-value block types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) as the row kernels and the
// four-row kernels multiply them. The 4- and 5-bit quants stay unsigned (0-15, 0-31): an
// unsigned-by-signed byte product is one instruction under relaxed SIMD and natively, and the
// symmetric types' offset (w = d * (q - offset)) comes back as offset times the activation
// block's sum of quants.
#pragma once

#include <cstdint>
#include <cstring>

#include "quant/activations.h"
#include "quant/simd128.h"

namespace pipit::kernels {

// A block's 32 quants as two vectors of bytes: values 0-15 and 16-31.
struct Quants32 {
  simd::V lo, hi;
};

// Low nibbles are values 0-15, high nibbles 16-31.
inline Quants32 nibbles(const uint8_t* q) {
  const simd::V packed = simd::load(q);
  return {simd::bit_and(packed, simd::splat_i8(0x0F)), simd::shr_u8<4>(packed)};
}

// Q5: a 32-bit mask of fifth bits (bit j belongs to value j), then the nibbles. Each byte of
// the mask is copied to the eight lanes it covers and tested against that lane's bit. The mask
// enters the vector through a splat: a narrow store read back as a whole vector would stall
// store forwarding, many times the cost of the rest of the block.
inline Quants32 five_bits(const uint8_t* q) {
  using namespace simd;
  uint32_t qh;
  std::memcpy(&qh, q, 4);
  const V mask = splat_i32(static_cast<int32_t>(qh));
  const V lane_bit = bytes(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  const auto fifth_bits = [&](V byte_index) {
    return bit_and(has_bits(shuffle_bytes(mask, byte_index), lane_bit), splat_i8(0x10));
  };
  const Quants32 low = nibbles(q + 4);
  return {bit_or(low.lo, fifth_bits(bytes(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1))),
          bit_or(low.hi, fifth_bits(bytes(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)))};
}

// Q5 in Layout::kRowsOf4: per block position the four rows' 128 fifth bits come first, as one
// vector (a "bit plane"), then each row's 16 bytes of nibbles. Bit k of plane byte i is the
// fifth bit of value i (k even) or 16 + i (k odd) of row k / 2. A 16-bit shift brings bit k of
// every byte to bit 4 (the shift is at most 4 left or 3 right, so bit 4 of each byte still
// comes from that byte), and one mask keeps it: three operations per 16 values, against six
// to expand a row's 32-bit mask on its own.
constexpr int kFifthBitPlaneBytes = 16;

template <int k>
inline simd::V fifth_bits_of_slot(simd::V plane) {
  using namespace simd;
  if constexpr (k < 4) {
    return bit_and(shl_u16<4 - k>(plane), splat_i8(0x10));
  } else if constexpr (k == 4) {
    return bit_and(plane, splat_i8(0x10));
  } else {
    return bit_and(shr_u16<k - 4>(plane), splat_i8(0x10));
  }
}

template <int r>
inline Quants32 five_bits_of_row(simd::V plane, const uint8_t* nibble_bytes) {
  const Quants32 low = nibbles(nibble_bytes + r * 16);
  return {simd::bit_or(low.lo, fifth_bits_of_slot<2 * r>(plane)),
          simd::bit_or(low.hi, fifth_bits_of_slot<2 * r + 1>(plane))};
}

inline void five_bit_rows(const uint8_t* quants, Quants32 q[4]) {
  const simd::V plane = simd::load(quants);
  const uint8_t* nibble_bytes = quants + kFifthBitPlaneBytes;
  q[0] = five_bits_of_row<0>(plane, nibble_bytes);
  q[1] = five_bits_of_row<1>(plane, nibble_bytes);
  q[2] = five_bits_of_row<2>(plane, nibble_bytes);
  q[3] = five_bits_of_row<3>(plane, nibble_bytes);
}

// Eight int16 lanes whose total is the dot product of 32 quants below 32 with 32 activations.
// Two products per lane, and two such lanes added, stay below 2 * 2 * 31 * 127 = 15748, so
// two of these lanes still add in int16 (simd::reduce4_i16).
inline simd::V dot_unsigned_i16(Quants32 q, simd::V x0, simd::V x1) {
  using namespace simd;
  return add_i16(dot_u7_pairs(q.lo, x0), dot_u7_pairs(q.hi, x1));
}

// The same widened: four int32 lanes.
inline simd::V dot_unsigned(Quants32 q, simd::V x0, simd::V x1) {
  return simd::madd_i16(dot_unsigned_i16(q, x0, x1), simd::splat_i16(1));
}

// Q8_0's quants are signed bytes.
inline simd::V dot_signed(Quants32 q, simd::V x0, simd::V x1) {
  using namespace simd;
#if defined(__wasm_relaxed_simd__)
  // |w| times x with w's sign moved onto x: five operations per 16 values where the SIMD128
  // path (two extended multiplies, an add and a widening add) takes about ten on x64. A
  // product pair can reach 2 * 127 * 127, so each half is widened on its own. The sign mask is
  // |w| > w rather than w < 0, which LLVM would turn into an arithmetic shift by 7, five
  // instructions on x64 against one compare. A weight of -128 (llama.cpp never writes one; a
  // hostile file could) keeps x's sign and makes |w| the byte 0x80, outside the 7-bit operand
  // the product is exact for: x64 reads it as 128 and gets the negated product, engines that
  // read it as -128 get the right one. Wrong numbers, never a trap.
  const auto signed_pairs = [](V w, V x) {
    const V magnitude = wasm_i8x16_abs(w);
    const V negative = wasm_i8x16_gt(magnitude, w);
    const V x_signed = wasm_i8x16_sub(wasm_v128_xor(x, negative), negative);
    return madd_i16(dot_u7_pairs(magnitude, x_signed), splat_i16(1));
  };
  return add_i32(signed_pairs(q.lo, x0), signed_pairs(q.hi, x1));
#else
  return add_i32(dot_i8(q.lo, x0), dot_i8(q.hi, x1));
#endif
}

// Each type as the kernels see it: kQuantBytes of quants follow the block's f16 scale (and,
// when kHasMin, its f16 minimum); the activations come as blocks of type Activations;
// unpack() runs once per block for every activation row, and dot() gives four int32 lanes
// whose total is the sum of quant * activation over the block, before subtracting
// kOffset * (sum of the activations). kFifthBitPlane: the four-row layout keeps the fifth
// bits as a bit plane (above) rather than each row's block as the file has it. kUnsigned: the
// quants are below 32 and dot() is dot_unsigned, so the four-row kernel can add rows in int16.
struct Q8_0Quants {
  using Activations = BlockQ8_0;
  static constexpr int kQuantBytes = 32, kOffset = 0;
  static constexpr bool kHasMin = false;
  static constexpr bool kFifthBitPlane = false;
  static constexpr bool kUnsigned = false;
  static Quants32 unpack(const uint8_t* q) { return {simd::load(q), simd::load(q + 16)}; }
  static simd::V dot(Quants32 q, simd::V x0, simd::V x1) { return dot_signed(q, x0, x1); }
};

struct Q4_0Quants {
  using Activations = BlockQ8_0;
  static constexpr int kQuantBytes = 16, kOffset = 8;
  static constexpr bool kHasMin = false;
  static constexpr bool kFifthBitPlane = false;
  static constexpr bool kUnsigned = true;
  static Quants32 unpack(const uint8_t* q) { return nibbles(q); }
  static simd::V dot(Quants32 q, simd::V x0, simd::V x1) { return dot_unsigned(q, x0, x1); }
};

struct Q5_0Quants {
  using Activations = BlockQ8_0;
  static constexpr int kQuantBytes = 20, kOffset = 16;
  static constexpr bool kHasMin = false;
  static constexpr bool kFifthBitPlane = true;
  static constexpr bool kUnsigned = true;
  static Quants32 unpack(const uint8_t* q) { return five_bits(q); }
  static simd::V dot(Quants32 q, simd::V x0, simd::V x1) { return dot_unsigned(q, x0, x1); }
};

struct Q4_1Quants {
  using Activations = BlockQ8_1;
  static constexpr int kQuantBytes = 16, kOffset = 0;
  static constexpr bool kHasMin = true;
  static constexpr bool kFifthBitPlane = false;
  static constexpr bool kUnsigned = true;
  static Quants32 unpack(const uint8_t* q) { return nibbles(q); }
  static simd::V dot(Quants32 q, simd::V x0, simd::V x1) { return dot_unsigned(q, x0, x1); }
};

struct Q5_1Quants {
  using Activations = BlockQ8_1;
  static constexpr int kQuantBytes = 20, kOffset = 0;
  static constexpr bool kHasMin = true;
  static constexpr bool kFifthBitPlane = true;
  static constexpr bool kUnsigned = true;
  static Quants32 unpack(const uint8_t* q) { return five_bits(q); }
  static simd::V dot(Quants32 q, simd::V x0, simd::V x1) { return dot_unsigned(q, x0, x1); }
};

// The four rows' quants of one block position in Layout::kRowsOf4.
template <typename T>
inline void unpack_rows(const uint8_t* quants, Quants32 q[4]) {
  if constexpr (T::kFifthBitPlane) {
    five_bit_rows(quants, q);
  } else {
    for (int r = 0; r < 4; ++r) q[r] = T::unpack(quants + r * T::kQuantBytes);
  }
}

}  // namespace pipit::kernels
