// The SIMD pieces the quant kernels share: f16 block scales as float vectors, and the products
// of the four-row layout's weight vectors with activations.
#pragma once

#include "core/simd128.h"

// Until after linking, a relaxed dot-add is the call of an import (core/simd128.h), which LLVM
// prices as a call: the kernels' pieces are forced inline, or the kernels for several tokens
// call them out of line and pass their sums through memory (5 times slower).
#define PIPIT_ALWAYS_INLINE __attribute__((always_inline))

namespace pipit::simd {

// Four halves (in the low 16 bits of each uint32 lane) as floats, exactly, for every finite
// half: the same exponent trick as pipit::f16_to_f32.
inline F halves_to_f32(V h) {
  const V magnitude = shl_i32<13>(bit_and(h, splat_i32(0x7FFF)));
  const V sign = shl_i32<16>(bit_and(h, splat_i32(0x8000)));
  return bits_as_f32(
      bit_or(f32_as_bits(mul_f32(bits_as_f32(magnitude), splat_f32(0x1p112f))), sign));
}

// Four halves (8 bytes at p) as floats divided by 2^112, exactly, for every finite half
// (kHalvesUnscale multiplies them back): each half goes to the top of its 32-bit lane, an
// arithmetic shift moves its exponent and mantissa to where a float has them, and the mask
// kHalvesSignCopies (held() by the caller) clears the three copies of the sign bit that the
// shift made. Four operations where halves_to_f32 takes eight; callers multiply by
// kHalvesUnscale (also held()) once per block, for all the tokens that use the scales.
constexpr float kHalvesUnscale = 0x1p112f;
constexpr int32_t kHalvesSignCopies = static_cast<int32_t>(0x8FFFFFFF);
inline F halves_to_f32_unscaled(const void* p, V sign_copies) {
#if defined(__wasm_simd128__)
  const V high = wasm_i32x4_shl(wasm_u32x4_load16x4(p), 16);
  return wasm_v128_and(wasm_i32x4_shr(high, 3), sign_copies);
#else
  const V high = _mm_unpacklo_epi16(_mm_setzero_si128(), load64(p));
  return _mm_castsi128_ps(_mm_and_si128(_mm_srai_epi32(high, 3), sign_copies));
#endif
}

// Products for Layout::kRowsOf4's weight vectors: 16 bytes holding four values of each of four
// rows (row r in bytes 4r to 4r + 3), times four activation bytes repeated for every row
// (load4_splat). The products stay in lanes that belong to one row each, so adding up a block
// needs no exchange between rows. A weight vector becomes RowWeights once per block
// (row_weights() for quants in [0, 127], signed_row_weights() for Q8_0's), whatever can be
// done before the activations are known, and then meets every token's activations (x in
// [-127, 127]).
//
// A family of products says how they add up; the kernels take one as a template argument:
//   P::Sums                        running sums of products
//   P::products(w, x4)             one row vector's products (signed_products: Q8_0's)
//   P::add_products(s, w, x4)      s plus them (add_signed_products: Q8_0's)
//   P::totals(s)                   int32 lane r = row r's total
//   P::per_sum(largest_quant)      how many row vectors' products one Sums adds up
// and RowProducts, every build's family, has Q6_K's sub-block scales besides:
//   P::Scales, P::scales<t>(v)     bytes 4t to 4t + 3 of v (row r's scale in byte 4t + r)
//   P::scaled_totals(s, k)         lane r = row r's total times its scale; s must hold at most
//                                  per_sum() products
//   P::twice_scaled(k, a)          lane r = 2 * row r's scale * a, for |a| below 16384
// The relaxed-SIMD build also has FusedRowProducts for the legacy types, and picks a family
// per engine (rows_of_4.h).
#if defined(__wasm_simd128__) && !defined(__wasm_relaxed_simd__)
// Without a byte product instruction, weights and activations widen to int16 and one int16
// multiply-add (x64 pmaddwd) per half makes int32 lanes: rows 0 and 1 (two lanes each) from
// the low half, rows 2 and 3 from the high half.
struct RowWeights {
  V rows01, rows23;  // int16
};
inline RowWeights row_weights(V w) {
  return {wasm_u16x8_extend_low_u8x16(w), wasm_u16x8_extend_high_u8x16(w)};
}
inline RowWeights signed_row_weights(V w) {
  return {wasm_i16x8_extend_low_i8x16(w), wasm_i16x8_extend_high_i8x16(w)};
}
struct RowProducts {
  struct Sums {
    V rows01, rows23;
  };
  struct Scales {
    V lanes;  // row r's scale in int32 lane r
  };
  static constexpr int per_sum(int /*largest_quant*/) { return 8; }
  static Sums products(RowWeights w, V x4) {
    const V x = wasm_i16x8_extend_low_i8x16(x4);
    return {wasm_i32x4_dot_i16x8(w.rows01, x), wasm_i32x4_dot_i16x8(w.rows23, x)};
  }
  static Sums signed_products(RowWeights w, V x4) { return products(w, x4); }
  static Sums add_products(Sums s, RowWeights w, V x4) {
    const Sums p = products(w, x4);
    return {wasm_i32x4_add(s.rows01, p.rows01), wasm_i32x4_add(s.rows23, p.rows23)};
  }
  static Sums add_signed_products(Sums s, RowWeights w, V x4) { return add_products(s, w, x4); }
  static V totals(Sums s) {
    return wasm_i32x4_add(wasm_i32x4_shuffle(s.rows01, s.rows23, 0, 2, 4, 6),
                          wasm_i32x4_shuffle(s.rows01, s.rows23, 1, 3, 5, 7));
  }
  template <int t>
  static Scales scales(V v) {
    const V four = shuffle_bytes(v, bytes(4 * t, 4 * t + 1, 4 * t + 2, 4 * t + 3, -1, -1, -1, -1,
                                          -1, -1, -1, -1, -1, -1, -1, -1));
    return {wasm_i32x4_extend_low_i16x8(wasm_i16x8_extend_low_i8x16(four))};
  }
  static V scaled_totals(Sums s, Scales k) { return mul_i32(totals(s), k.lanes); }
  static V twice_scaled(Scales k, int16_t a) { return mul_i32(k.lanes, splat_i32(2 * a)); }
};
#else
// Signed weights multiply as |w| times x with w's sign moved onto x.
struct RowWeights {
  V magnitude;
  V sign;  // for signed weights: the mask of negative weights (relaxed), or w itself (SSE)
};
inline RowWeights row_weights(V w) {
  return {w, zero()};
}
#if defined(__wasm_relaxed_simd__)
// The sign mask is |w| > w rather than w < 0, which LLVM would turn into an arithmetic shift
// by 7, five instructions on x64 against one compare. A weight of -128 (llama.cpp never writes
// one; a hostile file could) keeps x's sign and makes |w| the byte 0x80, outside the 7-bit
// operand the product is exact for: x64 reads it as 128 and gets the negated product, engines
// that read it as -128 get the right one. Wrong numbers, never a trap.
inline RowWeights signed_row_weights(V w) {
  const V magnitude = wasm_i8x16_abs(w);
  return {magnitude, wasm_i8x16_gt(magnitude, w)};
}
inline V signed_activations(RowWeights w, V x4) {
  return wasm_i8x16_sub(wasm_v128_xor(x4, w.sign), w.sign);
}
#else
inline RowWeights signed_row_weights(V w) {
  return {_mm_abs_epi8(w), w};
}
inline V signed_activations(RowWeights w, V x4) {
  return _mm_sign_epi8(x4, w.sign);
}
#endif
// One unsigned-by-signed pair product instruction (x64 pmaddubsw): row r in int16 lanes 2r and
// 2r + 1, widened to int32 when the lanes are full.
struct RowProducts {
  struct Sums {
    V pairs;
  };
  struct Scales {
    V pairs;  // row r's scale in int16 lanes 2r and 2r + 1, where Sums keeps row r
  };
  // Two products per int16 lane, |x| <= 127.
  static constexpr int per_sum(int largest_quant) { return 32767 / (2 * largest_quant * 127); }
  static Sums products(RowWeights w, V x4) { return {dot_u7_pairs(w.magnitude, x4)}; }
  static Sums signed_products(RowWeights w, V x4) {
    return {dot_u7_pairs(w.magnitude, signed_activations(w, x4))};
  }
  static Sums add_products(Sums s, RowWeights w, V x4) {
    return {add_i16(s.pairs, products(w, x4).pairs)};
  }
  static Sums add_signed_products(Sums s, RowWeights w, V x4) {
    return {add_i16(s.pairs, signed_products(w, x4).pairs)};
  }
  static V totals(Sums s) { return widen_pairs_i16(s.pairs); }
  template <int t>
  static Scales scales(V v) {
    return {widen_low_i8(
        shuffle_bytes(v, bytes(4 * t, 4 * t, 4 * t + 1, 4 * t + 1, 4 * t + 2, 4 * t + 2, 4 * t + 3,
                               4 * t + 3, -1, -1, -1, -1, -1, -1, -1, -1)))};
  }
  static V scaled_totals(Sums s, Scales k) { return madd_i16(s.pairs, k.pairs); }
  static V twice_scaled(Scales k, int16_t a) { return madd_i16(k.pairs, splat_i16(a)); }
};
#endif

#if defined(__wasm_relaxed_simd__)
// One relaxed dot-add per row vector: int32 lane r takes row r's four products and adds them
// to its sum. Engines do that in one instruction on x64 with AVX-VNNI (vpdpbusd) and on Arm
// (sdot), and there it beats RowProducts, which needs adds and widening besides; on other x64
// it costs pmaddubsw, pmaddwd and paddd, and loses (rows_of_4.h picks per engine).
struct FusedRowProducts {
  struct Sums {
    V rows;
  };
  // Sums are int32 and never overflow here (a block adds 8 row vectors before scaling), so
  // this sets how long each chain of dependent dot-adds is. Q8_0's signed products (largest
  // quant 127; every other type's is 31 or less) ran 10-15% faster as two chains of 4 than as
  // one of 8 (Chromium, decode and prefill); the 4- and 5-bit types gained nothing in decode
  // and Q5_0 lost 8% in prefill.
  static constexpr int per_sum(int largest_quant) { return largest_quant > 31 ? 4 : 8; }
  static Sums products(RowWeights w, V x4) {
    return {pipit_relaxed_dot_add(x4, w.magnitude, zero())};
  }
  static Sums signed_products(RowWeights w, V x4) {
    return {pipit_relaxed_dot_add(signed_activations(w, x4), w.magnitude, zero())};
  }
  static Sums add_products(Sums s, RowWeights w, V x4) {
    return {pipit_relaxed_dot_add(x4, w.magnitude, s.rows)};
  }
  static Sums add_signed_products(Sums s, RowWeights w, V x4) {
    return {pipit_relaxed_dot_add(signed_activations(w, x4), w.magnitude, s.rows)};
  }
  static V totals(Sums s) { return s.rows; }
};
#endif

// simd::keep_order for a family's Sums.
template <typename Sums>
inline void keep_order_sums(const Sums& s) {
  static_assert(sizeof s % sizeof(V) == 0);
  for (size_t i = 0; i < sizeof s / sizeof(V); ++i) keep_order(reinterpret_cast<const V*>(&s)[i]);
}

}  // namespace pipit::simd
