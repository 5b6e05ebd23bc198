// IEEE half <-> float, exact in both directions (round to nearest even on the way down).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace pipit {

// std::bit_cast is missing from the libc++ that Emscripten 3.1.6 ships.
inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Branch-free for every finite half, since it runs once per quantized block in the kernels:
// the half's exponent and mantissa, placed in a float and multiplied by 2^112, become the same
// value (subnormal halves included, as float has the range for them).
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t magnitude = static_cast<uint32_t>(h & 0x7FFF) << 13;
  if ((h & 0x7C00) == 0x7C00) return bits_float(sign | 0x7F800000 | magnitude);  // inf, nan
  return bits_float(sign | float_bits(bits_float(magnitude) * 0x1p112f));
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t x = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7FFFFFFF;
  if (abs >= 0x7F800000) {  // inf or nan
    return sign | 0x7C00 | (abs > 0x7F800000 ? 0x200 : 0);
  }
  if (abs >= 0x477FF000) return sign | 0x7C00;  // rounds past the largest half
  if (abs < 0x38800000) {                       // below the smallest normal half
    // Scaling by 2^24 (exact) puts the half's subnormal mantissa in the integer part;
    // nearbyint rounds it to nearest even. 1024 comes out as the smallest normal, correctly.
    const float scaled = bits_float(abs) * 0x1p24f;
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  const uint32_t rounded = abs + 0xFFF + ((abs >> 13) & 1);  // round to nearest even
  return sign | static_cast<uint16_t>((rounded - 0x38000000) >> 13);
}

}  // namespace pipit
