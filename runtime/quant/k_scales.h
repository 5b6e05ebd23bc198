// The packed sub-block scales of the K-quants, decoded the same way by every dequantizer and
// kernel, and the SIMD forms the kernels use.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/simd128.h"

namespace pipit::kernels {

// Q4_K and Q5_K: eight 6-bit scales and eight 6-bit mins in 12 bytes. The first four of each
// are the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); the last four take their low 4 bits
// from bytes 8-11 and their top 2 bits from the top of bytes 0-7.
inline void unpack_k4_scales(const uint8_t* packed, int scale[8], int min[8]) {
  for (int j = 0; j < 4; ++j) {
    scale[j] = packed[j] & 63;
    min[j] = packed[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    scale[j] = (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4);
    min[j] = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
  }
}

// Q3_K: sixteen 6-bit scales in 12 bytes (low 4 bits in bytes 0-7, two per byte; high 2 bits
// in bytes 8-11, four per byte), returned as the signed values they stand for (stored - 32).
template <typename T>
void unpack_q3_k_scales(const uint8_t* packed, T scale[16]) {
  constexpr uint32_t kLow2 = 0x03030303, kLow4 = 0x0F0F0F0F;
  uint32_t aux[4];
  std::memcpy(aux, packed, 12);
  const uint32_t high = aux[2];
  aux[2] = ((aux[0] >> 4) & kLow4) | (((high >> 4) & kLow2) << 4);
  aux[3] = ((aux[1] >> 4) & kLow4) | (((high >> 6) & kLow2) << 4);
  aux[0] = (aux[0] & kLow4) | (((high >> 0) & kLow2) << 4);
  aux[1] = (aux[1] & kLow4) | (((high >> 2) & kLow2) << 4);
  uint8_t stored[16];
  std::memcpy(stored, aux, 16);
  for (int i = 0; i < 16; ++i) scale[i] = static_cast<T>(stored[i] - 32);
}

// unpack_k4_scales in one SIMD pass: the eight scales in bytes 0-7 of the result, the eight mins
// in bytes 8-15. Reads 16 bytes from `packed`, the 12 packed ones and 4 it ignores.
inline simd::V k4_scales_and_mins(const uint8_t* packed) {
  using namespace simd;
  const V v = load(packed);
  const V low_bits =
      bit_and(shuffle_bytes(v, bytes(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, -1, -1, -1, -1)),
              bytes(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0));
  const V high_nibbles = shr_u8<4>(
      shuffle_bytes(v, bytes(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 8, 9, 10, 11)));
  const V top_bits = bit_and(
      shr_u8<2>(shuffle_bytes(v, bytes(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7))),
      splat_i8(0x30));
  return bit_or(bit_or(low_bits, high_nibbles), top_bits);
}

// Bytes 0-7 or 8-15 of v, zero-extended to eight int16 lanes.
inline simd::V low_bytes_as_i16(simd::V v) {
  using namespace simd;
  return shuffle_bytes(v, bytes(0, -1, 1, -1, 2, -1, 3, -1, 4, -1, 5, -1, 6, -1, 7, -1));
}
inline simd::V high_bytes_as_i16(simd::V v) {
  using namespace simd;
  return shuffle_bytes(v, bytes(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1));
}

// Mins 4h..4h+3 of k4_scales_and_mins as int16, each twice: a min covers two groups of 16
// activations, so these pair with bsums 8h..8h+7 in one madd_i16.
template <int h>
simd::V k4_min_pairs(simd::V scales_and_mins) {
  using namespace simd;
  constexpr int8_t m = 8 + 4 * h;
  return shuffle_bytes(scales_and_mins, bytes(m, -1, m, -1, m + 1, -1, m + 1, -1, m + 2, -1, m + 2,
                                              -1, m + 3, -1, m + 3, -1));
}

inline void store_i16(int16_t* p, simd::V v) {
  std::memcpy(p, &v, sizeof v);
}

// Q5_K's fifth bits for the 64 quants of sub-block pair j (32 low nibbles in lo0/lo1, 32 high
// ones in hi0/hi1): bit 2j of the 32 qh bytes for the low ones, bit 2j + 1 for the high ones.
inline void add_q5_k_fifth_bits(simd::V qh0, simd::V qh1, int j, simd::V& lo0, simd::V& lo1,
                                simd::V& hi0, simd::V& hi1) {
  using namespace simd;
  const V fifth = splat_i8(0x10);
  const V bit_lo = splat_i8(static_cast<int8_t>(1 << (2 * j)));
  const V bit_hi = splat_i8(static_cast<int8_t>(1 << (2 * j + 1)));
  lo0 = bit_or(lo0, bit_and(has_bits(qh0, bit_lo), fifth));
  lo1 = bit_or(lo1, bit_and(has_bits(qh1, bit_lo), fifth));
  hi0 = bit_or(hi0, bit_and(has_bits(qh0, bit_hi), fifth));
  hi1 = bit_or(hi1, bit_and(has_bits(qh1, bit_hi), fifth));
}

}  // namespace pipit::kernels
