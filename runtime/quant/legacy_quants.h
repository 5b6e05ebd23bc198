// The legacy 32-value block types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) as the row kernels and the
// four-row kernels multiply them. The 4- and 5-bit quants stay unsigned (0-15, 0-31): an
// unsigned-by-signed byte product is one instruction under relaxed SIMD and natively, and the
// symmetric types' offset (w = d * (q - offset)) comes back as offset times the activation
// block's sum of quants.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/simd128.h"
#include "quant/activations.h"
#include "quant/quant_simd.h"

namespace pipit::kernels {

// A block's 32 quants as two vectors of bytes: values 0-15 and 16-31.
struct Quants32 {
  simd::V lo, hi;
};

// The masks of the legacy kernels' loops, made once per call (simd::held()).
struct LegacyMasks {
  simd::V low_nibbles = simd::held(simd::splat_i8(0x0F));
  simd::V fifth_bit = simd::held(simd::splat_i8(0x10));
  simd::V five_bits = simd::held(simd::splat_i8(0x1F));
  simd::V top_three_bits = simd::held(simd::splat_i8(0x1C));
  simd::V low_two_bits = simd::held(simd::splat_i8(0x03));
  simd::V sign_copies = simd::held(simd::splat_i32(simd::kHalvesSignCopies));
  simd::F halves_unscale = simd::held(simd::splat_f32(simd::kHalvesUnscale));
};

// Low nibbles are values 0-15, high nibbles 16-31.
inline Quants32 nibbles(const uint8_t* q, const LegacyMasks& masks) {
  using namespace simd;
  const V packed = load(q);
  return {bit_and(packed, masks.low_nibbles), bit_and(shr_u16<4>(packed), masks.low_nibbles)};
}

// Q5: a 32-bit mask of fifth bits (bit j belongs to value j), then the nibbles. Each byte of
// the mask is copied to the eight lanes it covers and tested against that lane's bit. The mask
// enters the vector through a splat: a narrow store read back as a whole vector would stall
// store forwarding, many times the cost of the rest of the block.
inline Quants32 five_bits(const uint8_t* q, const LegacyMasks& masks) {
  using namespace simd;
  uint32_t qh;
  std::memcpy(&qh, q, 4);
  const V mask = splat_i32(static_cast<int32_t>(qh));
  const V lane_bit = bytes(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  const auto fifth_bits = [&](V byte_index) {
    return bit_and(has_bits(shuffle_bytes(mask, byte_index), lane_bit), masks.fifth_bit);
  };
  const Quants32 low = nibbles(q + 4, masks);
  return {bit_or(low.lo, fifth_bits(bytes(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1))),
          bit_or(low.hi, fifth_bits(bytes(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)))};
}

// Four int32 lanes whose total is the dot product of 32 quants below 32 with 32
// activations. Two products per int16 lane, and two such lanes added, stay below
// 2 * 2 * 31 * 127 = 15748.
inline simd::V dot_unsigned(Quants32 q, simd::V x0, simd::V x1) {
  using namespace simd;
  return widen_pairs_i16(add_i16(dot_u7_pairs(q.lo, x0), dot_u7_pairs(q.hi, x1)));
}

// Q8_0's quants are signed bytes.
inline simd::V dot_signed(Quants32 q, simd::V x0, simd::V x1) {
  using namespace simd;
#if defined(__wasm_relaxed_simd__)
  // Five operations per 16 values where the SIMD128 path (two extended multiplies, an add and
  // a widening add) takes about ten on x64. A product pair can reach 2 * 127 * 127, so each
  // half is widened on its own.
  return add_i32(RowProducts::totals(RowProducts::signed_products(signed_row_weights(q.lo), x0)),
                 RowProducts::totals(RowProducts::signed_products(signed_row_weights(q.hi), x1)));
#else
  return add_i32(dot_i8(q.lo, x0), dot_i8(q.hi, x1));
#endif
}

// Each type as the kernels see it: kQuantBytes of quants follow the block's f16 scale (and,
// when kHasMin, its f16 minimum); the activations come as blocks of type Activations;
// unpack() runs once per block for every activation row, and dot() gives four int32 lanes
// whose total is the sum of quant * activation over the block, before subtracting
// kOffset * (sum of the activations). kLargestQuant: the largest magnitude of a quant, which
// bounds how many products int16 lanes can add. kFiveBits: Q5's 5-bit quants, which the
// four-row layout packs its own way (below). kUnsigned: the quants are unsigned.
struct Q8_0Quants {
  using Activations = BlockQ8_0;
  static constexpr int kQuantBytes = 32, kOffset = 0;
  static constexpr int kLargestQuant = 128;
  static constexpr bool kHasMin = false;
  static constexpr bool kFiveBits = false;
  static constexpr bool kUnsigned = false;
  static Quants32 unpack(const uint8_t* q, const LegacyMasks&) {
    return {simd::load(q), simd::load(q + 16)};
  }
  static simd::V dot(Quants32 q, simd::V x0, simd::V x1) { return dot_signed(q, x0, x1); }
};

struct Q4_0Quants {
  using Activations = BlockQ8_0;
  static constexpr int kQuantBytes = 16, kOffset = 8;
  static constexpr int kLargestQuant = 15;
  static constexpr bool kHasMin = false;
  static constexpr bool kFiveBits = false;
  static constexpr bool kUnsigned = true;
  static Quants32 unpack(const uint8_t* q, const LegacyMasks& m) { return nibbles(q, m); }
  static simd::V dot(Quants32 q, simd::V x0, simd::V x1) { return dot_unsigned(q, x0, x1); }
};

struct Q5_0Quants {
  using Activations = BlockQ8_0;
  static constexpr int kQuantBytes = 20, kOffset = 16;
  static constexpr int kLargestQuant = 31;
  static constexpr bool kHasMin = false;
  static constexpr bool kFiveBits = true;
  static constexpr bool kUnsigned = true;
  static Quants32 unpack(const uint8_t* q, const LegacyMasks& m) { return five_bits(q, m); }
  static simd::V dot(Quants32 q, simd::V x0, simd::V x1) { return dot_unsigned(q, x0, x1); }
};

struct Q4_1Quants {
  using Activations = BlockQ8_1;
  static constexpr int kQuantBytes = 16, kOffset = 0;
  static constexpr int kLargestQuant = 15;
  static constexpr bool kHasMin = true;
  static constexpr bool kFiveBits = false;
  static constexpr bool kUnsigned = true;
  static Quants32 unpack(const uint8_t* q, const LegacyMasks& m) { return nibbles(q, m); }
  static simd::V dot(Quants32 q, simd::V x0, simd::V x1) { return dot_unsigned(q, x0, x1); }
};

struct Q5_1Quants {
  using Activations = BlockQ8_1;
  static constexpr int kQuantBytes = 20, kOffset = 0;
  static constexpr int kLargestQuant = 31;
  static constexpr bool kHasMin = true;
  static constexpr bool kFiveBits = true;
  static constexpr bool kUnsigned = true;
  static Quants32 unpack(const uint8_t* q, const LegacyMasks& m) { return five_bits(q, m); }
  static simd::V dot(Quants32 q, simd::V x0, simd::V x1) { return dot_unsigned(q, x0, x1); }
};

// Layout::kRowsOf4 (rows_of_4.cpp) keeps each block position of four rows as eight "row
// vectors": vector c holds values 4c to 4c + 3 of each row, row r in bytes 4r to 4r + 3, so
// its products with activation values 4c to 4c + 3 (repeated by load4_splat) fall into lanes
// of one row each (quant_simd.h) and a block needs no exchange between rows. Q8_0 stores the
// eight vectors as they are. Q4 stores four vectors of nibble pairs: byte i of pair vector m
// holds byte i of vector m in its low nibble and of vector m + 4 in its high nibble, which
// keeps the file's own pairing of values j and 16 + j. Q5 stores a vector of low bits, then
// four packed vectors: byte i of packed vector m holds byte i of vector m whole (bits 0-4) and
// the top three bits of byte i of vector m + 4 (bits 5-7); the low two bits of that byte are
// bits 2m and 2m + 1 of byte i of the low-bit vector. Unpacking a pair takes 6 operations
// (a mask for vector m; a shift, two masks and an or for vector m + 4, and a shift of the low
// bits for m > 0), where nibbles plus a plane of fifth bits took 9.
constexpr int kRowVectors = 8;
constexpr int kLowBitsBytes = 16;

// Pair vector m's two row vectors (Q4: nibbles; Q5: a packed vector and the low bits).
template <typename T, int m>
inline void unpack_pair(const uint8_t* pairs, simd::V low_bits, const LegacyMasks& masks,
                        simd::V w[kRowVectors]) {
  using namespace simd;
  if constexpr (T::kFiveBits) {
    const V packed = load(pairs + 16 * m);
    w[m] = bit_and(packed, masks.five_bits);
    V low;
    if constexpr (m == 0) {
      low = low_bits;
    } else {
      low = shr_u16<2 * m>(low_bits);
    }
    // A 16-bit shift moves bits 5-7 of each byte to bits 2-4 of the same byte (what moves in
    // from the byte above lands in bits 5-7, which the mask clears).
    w[m + 4] =
        bit_or(bit_and(shr_u16<3>(packed), masks.top_three_bits), bit_and(low, masks.low_two_bits));
  } else {
    const Quants32 q = nibbles(pairs + 16 * m, masks);
    w[m] = q.lo;
    w[m + 4] = q.hi;
  }
}

// A row vector as simd::RowWeights.
template <typename T>
inline simd::RowWeights row_weights_of(simd::V w) {
  return T::kUnsigned ? simd::row_weights(w) : simd::signed_row_weights(w);
}

// How many row vectors' products one P::Sums adds before they widen to int32.
template <typename P, typename T>
constexpr int kProductsPerSum = [] {
  constexpr int limit = P::per_sum(T::kLargestQuant);
  static_assert(limit >= 1);
  return limit >= 8 ? 8 : limit >= 4 ? 4 : limit >= 2 ? 2 : 1;
}();

// Row vector c's products with activation values 4c to 4c + 3, alone or added to `sums`.
template <typename P, typename T>
PIPIT_ALWAYS_INLINE inline typename P::Sums products_of(simd::RowWeights w, const int8_t* x,
                                                        int c) {
  const simd::V x4 = simd::load4_splat(x + 4 * c);
  return T::kUnsigned ? P::products(w, x4) : P::signed_products(w, x4);
}
template <typename P, typename T>
PIPIT_ALWAYS_INLINE inline typename P::Sums add_products_of(typename P::Sums sums,
                                                            simd::RowWeights w, const int8_t* x,
                                                            int c) {
  const simd::V x4 = simd::load4_splat(x + 4 * c);
  return T::kUnsigned ? P::add_products(sums, w, x4) : P::add_signed_products(sums, w, x4);
}

// Lane r: row r's sum of quant * activation over the block (before the offset), from the
// RowWeights of the block's row vectors. Products add as long as their lanes can hold them,
// then widen.
template <typename P, typename T>
PIPIT_ALWAYS_INLINE inline simd::V row_totals_of_block(const simd::RowWeights w[kRowVectors],
                                                       const int8_t* x) {
  using namespace simd;
  constexpr int kPerSum = kProductsPerSum<P, T>;
  V total = zero();
  for (int first = 0; first < kRowVectors; first += kPerSum) {
    typename P::Sums sums = products_of<P, T>(w[first], x, first);
    for (int c = first + 1; c < first + kPerSum; ++c)
      sums = add_products_of<P, T>(sums, w[c], x, c);
    total = first == 0 ? P::totals(sums) : add_i32(total, P::totals(sums));
  }
  return total;
}

// row_totals_of_block for N tokens (activation blocks x[k] into totals[k]), straight from the
// block's quants: each nibble pair (or pair of Q8_0 vectors) becomes row vectors where their
// products are made, and simd::keep_order between pairs stops V8 from loading every vector
// first. With all eight row vectors of two blocks live at once Node 20's V8 spilled most of
// them to the stack and ran the Q8_0 and Q5_0 kernels at half speed; Chromium's spilled less,
// and gains 5-12% on the 4- and 5-bit types.
template <typename P, typename T, int N>
PIPIT_ALWAYS_INLINE inline void row_totals_streamed(const uint8_t* quants, const LegacyMasks& masks,
                                                    const int8_t* const x[N], simd::V totals[N]) {
  using namespace simd;
  constexpr int kPerSum = kProductsPerSum<P, T>;
  const V low_bits = T::kFiveBits ? load(quants) : zero();
  const uint8_t* pairs = quants + (T::kFiveBits ? kLowBitsBytes : 0);
  typename P::Sums sums[N];
  int taken = 0;  // a constant at every step once the calls below are inlined
  const auto take = [&](V vector, int c) PIPIT_ALWAYS_INLINE {
    const RowWeights w = row_weights_of<T>(vector);
    for (int k = 0; k < N; ++k) {
      sums[k] = taken % kPerSum == 0 ? products_of<P, T>(w, x[k], c)
                                     : add_products_of<P, T>(sums[k], w, x[k], c);
      if ((taken + 1) % kPerSum == 0) {
        totals[k] =
            taken + 1 == kPerSum ? P::totals(sums[k]) : add_i32(totals[k], P::totals(sums[k]));
      }
    }
    ++taken;
  };
  // Vectors m and m + 4 come from one nibble pair, so they meet the sums one after the other.
  const auto pair = [&]<int m>(std::integral_constant<int, m>) PIPIT_ALWAYS_INLINE {
    if constexpr (T::kQuantBytes == 32) {
      take(load(quants + 16 * m), m);
      take(load(quants + 16 * (m + 4)), m + 4);
    } else {
      V w[kRowVectors];
      unpack_pair<T, m>(pairs, low_bits, masks, w);
      take(w[m], m);
      take(w[m + 4], m + 4);
    }
    // Q8_0's vectors need no unpacking, and a store after every pair made Chromium's V8
    // slower than after every second one (Node 20's V8 was faster with every pair). The fused
    // products for several tokens run 9% faster without the stores (Chromium, 16 tokens).
    constexpr bool kFused = !std::is_same_v<P, simd::RowProducts>;
    if ((!kFused || N == 1) && (T::kQuantBytes != 32 || m % 2 == 1)) {
      for (int k = 0; k < N; ++k) keep_order_sums(sums[k]);
    }
  };
  pair(std::integral_constant<int, 0>{});
  pair(std::integral_constant<int, 1>{});
  pair(std::integral_constant<int, 2>{});
  pair(std::integral_constant<int, 3>{});
}

}  // namespace pipit::kernels
