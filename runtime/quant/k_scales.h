// The packed sub-block scales of the K-quants, decoded the same way by every dequantizer and
// kernel.
#pragma once

#include <cstdint>
#include <cstring>

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
inline void unpack_q3_k_scales(const uint8_t* packed, int scale[16]) {
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
  for (int i = 0; i < 16; ++i) scale[i] = stored[i] - 32;
}

}  // namespace pipit::kernels
