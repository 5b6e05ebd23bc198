// The SIMD pieces the quant kernels share: f16 block scales as float vectors, and the products
// of the four-row layout's weight vectors with activations.
#pragma once

#include "core/simd128.h"

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
// needs no exchange between rows: row_totals() gives lane r = row r's total. A weight vector
// becomes RowWeights once per block (row_weights() for quants in [0, 127], signed_row_weights()
// for Q8_0's), whatever can be done before the activations are known, and then meets every
// token's activations (x in [-127, 127]). Callers add at most row_vectors_per_sum() products
// into one RowSums.
#if defined(__wasm_simd128__) && !defined(__wasm_relaxed_simd__)
// Without a byte product instruction, weights and activations widen to int16 and one int16
// multiply-add (x64 pmaddwd) per half makes int32 lanes: rows 0 and 1 (two lanes each) from
// the low half, rows 2 and 3 from the high half.
struct RowWeights {
  V rows01, rows23;  // int16
};
struct RowSums {
  V rows01, rows23;
};
constexpr int row_vectors_per_sum(int /*largest_quant*/) {
  return 8;
}
inline RowWeights row_weights(V w) {
  return {wasm_u16x8_extend_low_u8x16(w), wasm_u16x8_extend_high_u8x16(w)};
}
inline RowWeights signed_row_weights(V w) {
  return {wasm_i16x8_extend_low_i8x16(w), wasm_i16x8_extend_high_i8x16(w)};
}
inline RowSums row_products(RowWeights w, V x4) {
  const V x = wasm_i16x8_extend_low_i8x16(x4);
  return {wasm_i32x4_dot_i16x8(w.rows01, x), wasm_i32x4_dot_i16x8(w.rows23, x)};
}
inline RowSums signed_row_products(RowWeights w, V x4) {
  return row_products(w, x4);
}
inline RowSums add(RowSums a, RowSums b) {
  return {wasm_i32x4_add(a.rows01, b.rows01), wasm_i32x4_add(a.rows23, b.rows23)};
}
inline V row_totals(RowSums s) {
  return wasm_i32x4_add(wasm_i32x4_shuffle(s.rows01, s.rows23, 0, 2, 4, 6),
                        wasm_i32x4_shuffle(s.rows01, s.rows23, 1, 3, 5, 7));
}
struct RowScales {
  V lanes;  // row r's scale in int32 lane r
};
template <int t>
inline RowScales row_scales(V scales) {
  const V four = shuffle_bytes(scales, bytes(4 * t, 4 * t + 1, 4 * t + 2, 4 * t + 3, -1, -1, -1, -1,
                                             -1, -1, -1, -1, -1, -1, -1, -1));
  return {wasm_i32x4_extend_low_i16x8(wasm_i16x8_extend_low_i8x16(four))};
}
inline V scaled_row_totals(RowSums s, RowScales k) {
  return mul_i32(row_totals(s), k.lanes);
}
inline V twice_scaled(RowScales k, int16_t a) {
  return mul_i32(k.lanes, splat_i32(2 * a));
}
#else
// One unsigned-by-signed pair product instruction: row r in lanes 2r and 2r + 1. Signed
// weights multiply as |w| times x with w's sign moved onto x.
struct RowWeights {
  V magnitude;
  V sign;  // for signed weights: the mask of negative weights (relaxed), or w itself (SSE)
};
struct RowSums {
  V pairs;
};
// How many row_products() int16 lanes can add (two products each, |x| <= 127) for quants of
// magnitude up to largest_quant.
constexpr int row_vectors_per_sum(int largest_quant) {
  return 32767 / (2 * largest_quant * 127);
}
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
inline RowSums row_products(RowWeights w, V x4) {
  return {dot_u7_pairs(w.magnitude, x4)};
}
inline RowSums signed_row_products(RowWeights w, V x4) {
  return {dot_u7_pairs(w.magnitude, signed_activations(w, x4))};
}
inline RowSums add(RowSums a, RowSums b) {
  return {add_i16(a.pairs, b.pairs)};
}
inline V row_totals(RowSums s) {
  return widen_pairs_i16(s.pairs);
}
struct RowScales {
  V pairs;  // row r's scale in int16 lanes 2r and 2r + 1, where RowSums keeps row r
};
template <int t>
inline RowScales row_scales(V scales) {
  return {widen_low_i8(
      shuffle_bytes(scales, bytes(4 * t, 4 * t, 4 * t + 1, 4 * t + 1, 4 * t + 2, 4 * t + 2,
                                  4 * t + 3, 4 * t + 3, -1, -1, -1, -1, -1, -1, -1, -1)))};
}
inline V scaled_row_totals(RowSums s, RowScales k) {
  return madd_i16(s.pairs, k.pairs);
}
inline V twice_scaled(RowScales k, int16_t a) {
  return madd_i16(k.pairs, splat_i16(a));
}
#endif

// Sub-block scales for RowSums (K-quants scale every 16 values of a row):
//   row_scales<t>(scales): bytes 4t to 4t + 3 of `scales` (row r's scale in byte 4t + r).
//   scaled_row_totals(s, k): lane r = row r's total times its scale. The products in s must
//     fit their lanes once scaled: at most row_vectors_per_sum() of them.
//   twice_scaled(k, a): lane r = 2 * row r's scale * a, for |a| below 16384.

// simd::keep_order for a RowSums.
inline void keep_order(const RowSums& s) {
  static_assert(sizeof s % sizeof(V) == 0);
  for (size_t i = 0; i < sizeof s / sizeof(V); ++i) keep_order(reinterpret_cast<const V*>(&s)[i]);
}

}  // namespace pipit::simd
