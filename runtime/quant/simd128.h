// The handful of 128-bit integer operations the quantized dot products need, spelled once
// for WebAssembly SIMD128 and once for x86 SSE4.1 (xsimd 8.1 has no widening int8 product).
// Lane order of dot_i8 differs between the two, which is fine: callers only ever add all
// four lanes together or scale them uniformly.
#pragma once

#include <cstdint>
#include <cstring>

// The relaxed-SIMD tree exists for its kernels: without the flag it would build a slower copy
// of the SIMD128 engine that still passes every test.
#if defined(PIPIT_RELAXED_SIMD_BUILD) && !defined(__wasm_relaxed_simd__)
#error "the relaxed-SIMD tree (PIPIT_RELAXED_SIMD_BUILD) must be compiled with -mrelaxed-simd"
#endif

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#elif defined(__SSE4_1__)
#include <immintrin.h>
#else
#error "pipit's quantized kernels need WebAssembly SIMD128 or x86 SSE4.1"
#endif

namespace pipit::simd {

#if defined(__wasm_simd128__)

using V = v128_t;
using F = v128_t;
// LLVM writes a v128.const at every use of a vector constant, and V8 builds each one afresh
// (two to four instructions on x64), inside every loop that uses it. An empty asm statement
// makes the constant a value LLVM cannot rematerialize: the kernels make their masks once per
// call and V8 keeps them in registers (or stack slots) through their loops.
inline V held(V v) {
  __asm__("" : "+r"(v));
  return v;
}
inline V load(const void* p) {
  return wasm_v128_load(p);
}
inline V splat_i8(int8_t v) {
  return wasm_i8x16_splat(v);
}
inline V splat_i32(int32_t v) {
  return wasm_i32x4_splat(v);
}
inline F splat_f32(float v) {
  return wasm_f32x4_splat(v);
}
inline V zero() {
  return wasm_i32x4_const(0, 0, 0, 0);
}
inline F zero_f32() {
  return wasm_f32x4_splat(0.0f);
}
inline V bytes(int8_t b0, int8_t b1, int8_t b2, int8_t b3, int8_t b4, int8_t b5, int8_t b6,
               int8_t b7, int8_t b8, int8_t b9, int8_t b10, int8_t b11, int8_t b12, int8_t b13,
               int8_t b14, int8_t b15) {
  return wasm_i8x16_make(b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15);
}
inline V bit_and(V a, V b) {
  return wasm_v128_and(a, b);
}
inline V bit_or(V a, V b) {
  return wasm_v128_or(a, b);
}
inline V sub_i8(V a, V b) {
  return wasm_i8x16_sub(a, b);
}
// Per byte: (v >> n) for unsigned bytes. V8 has no byte shifts either and spends five
// instructions on each; a 16-bit shift (and a mask for what crossed from the neighbour byte)
// takes two.
template <int n>
inline V shr_u8(V v) {
  return wasm_v128_and(wasm_u16x8_shr(v, n), wasm_i8x16_splat(static_cast<int8_t>(0xFF >> n)));
}
// Shifts of each 16-bit lane (bits cross between the lane's two bytes).
template <int n>
inline V shl_u16(V v) {
  return wasm_i16x8_shl(v, n);
}
template <int n>
inline V shr_u16(V v) {
  return wasm_u16x8_shr(v, n);
}
// The bytes of v at the positions idx names (each below 16).
inline V shuffle_bytes(V v, V idx) {
  return wasm_i8x16_swizzle(v, idx);
}
// 0xFF in each byte where every bit of `bits` is set in v, else 0.
inline V has_bits(V v, V bits) {
  return wasm_i8x16_eq(wasm_v128_and(v, bits), bits);
}
inline V add_i32(V a, V b) {
  return wasm_i32x4_add(a, b);
}
inline V mul_i32(V a, V b) {
  return wasm_i32x4_mul(a, b);
}
inline F to_f32(V v) {
  return wasm_f32x4_convert_i32x4(v);
}
inline V load64(const void* p) {
  return wasm_v128_load64_zero(p);
}
// The four bytes at p in every 32-bit lane.
inline V load4_splat(const void* p) {
  return wasm_v128_load32_splat(p);
}
inline void store_f32(float* p, F v) {
  wasm_v128_store(p, v);
}
// Lane r of the result is the total of the four lanes of s_r.
inline V reduce4(V s0, V s1, V s2, V s3) {
  const V t0 = wasm_i32x4_add(wasm_i32x4_shuffle(s0, s1, 0, 4, 1, 5),
                              wasm_i32x4_shuffle(s0, s1, 2, 6, 3, 7));
  const V t1 = wasm_i32x4_add(wasm_i32x4_shuffle(s2, s3, 0, 4, 1, 5),
                              wasm_i32x4_shuffle(s2, s3, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5),
                        wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7));
}
inline F load_f32(const float* p) {
  return wasm_v128_load(p);
}
inline F mul_f32(F a, F b) {
  return wasm_f32x4_mul(a, b);
}
inline F bits_as_f32(V v) {
  return v;
}
inline V f32_as_bits(F v) {
  return v;
}
template <int n>
inline V shl_i32(V v) {
  return wasm_i32x4_shl(v, n);
}
// Zero-extends the low or high four of eight uint16 lanes to uint32.
inline V widen_low_u16(V v) {
  return wasm_u32x4_extend_low_u16x8(v);
}
inline V widen_high_u16(V v) {
  return wasm_u32x4_extend_high_u16x8(v);
}
inline F add_f32(F a, F b) {
  return wasm_f32x4_add(a, b);
}
inline F mul_add_f32(F a, F b, F acc) {
  return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b));
}
inline float sum_f32(F v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}
// Four int32 lanes whose total is the dot product of 16 int8 pairs. Needs a in [-128, 127]
// and b in [-127, 127], so two products never overflow int16.
inline V dot_i8(V a, V b) {
  const V lo = wasm_i16x8_extmul_low_i8x16(a, b);
  const V hi = wasm_i16x8_extmul_high_i8x16(a, b);
  return wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_add(lo, hi));
}
// Eight int16 lanes whose total is the dot product of 16 pairs: u in [0, 127] (unsigned
// weight quants, before any offset), x any int8 but -128. Each lane holds two products.
// Relaxed SIMD does this in one instruction (x86 pmaddubsw), exact for u below 128.
inline V dot_u7_pairs(V u, V x) {
#if defined(__wasm_relaxed_simd__)
  return (V)__builtin_wasm_relaxed_dot_i8x16_i7x16_s_i16x8((__i8x16)x, (__i8x16)u);
#else
  return wasm_i16x8_add(wasm_i16x8_extmul_low_i8x16(u, x), wasm_i16x8_extmul_high_i8x16(u, x));
#endif
}
// Four int32 lanes: pairs of int16 lanes multiplied and added (widening before the add).
inline V madd_i16(V a, V b) {
  return wasm_i32x4_dot_i16x8(a, b);
}
// Four int32 lanes: pairs of int16 lanes added. V8 makes this a multiply-add with a vector of
// ones from memory, one instruction where madd_i16(v, splat_i16(1)) builds the ones first.
inline V widen_pairs_i16(V v) {
  return wasm_i32x4_extadd_pairwise_i16x8(v);
}
inline V add_i16(V a, V b) {
  return wasm_i16x8_add(a, b);
}
inline V splat_i16(int16_t v) {
  return wasm_i16x8_splat(v);
}
inline V sub_i32(V a, V b) {
  return wasm_i32x4_sub(a, b);
}

#else

using V = __m128i;
using F = __m128;
// Native compilers keep loop constants in registers by themselves.
inline V held(V v) {
  return v;
}
inline F held(F v) {
  return v;
}
inline V load(const void* p) {
  return _mm_loadu_si128(static_cast<const __m128i*>(p));
}
inline V splat_i8(int8_t v) {
  return _mm_set1_epi8(v);
}
inline V splat_i32(int32_t v) {
  return _mm_set1_epi32(v);
}
inline F splat_f32(float v) {
  return _mm_set1_ps(v);
}
inline V zero() {
  return _mm_setzero_si128();
}
inline F zero_f32() {
  return _mm_setzero_ps();
}
inline V bytes(int8_t b0, int8_t b1, int8_t b2, int8_t b3, int8_t b4, int8_t b5, int8_t b6,
               int8_t b7, int8_t b8, int8_t b9, int8_t b10, int8_t b11, int8_t b12, int8_t b13,
               int8_t b14, int8_t b15) {
  return _mm_setr_epi8(b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15);
}
inline V bit_and(V a, V b) {
  return _mm_and_si128(a, b);
}
inline V bit_or(V a, V b) {
  return _mm_or_si128(a, b);
}
inline V sub_i8(V a, V b) {
  return _mm_sub_epi8(a, b);
}
// SSE has no byte shifts: shift 16-bit lanes and mask off what crossed from the neighbour.
template <int n>
inline V shr_u8(V v) {
  return _mm_and_si128(_mm_srli_epi16(v, n), _mm_set1_epi8(static_cast<char>(0xFF >> n)));
}
template <int n>
inline V shl_u16(V v) {
  return _mm_slli_epi16(v, n);
}
template <int n>
inline V shr_u16(V v) {
  return _mm_srli_epi16(v, n);
}
inline V shuffle_bytes(V v, V idx) {
  return _mm_shuffle_epi8(v, idx);
}
inline V has_bits(V v, V bits) {
  return _mm_cmpeq_epi8(_mm_and_si128(v, bits), bits);
}
inline V add_i32(V a, V b) {
  return _mm_add_epi32(a, b);
}
inline V mul_i32(V a, V b) {
  return _mm_mullo_epi32(a, b);
}
inline F to_f32(V v) {
  return _mm_cvtepi32_ps(v);
}
inline V load64(const void* p) {
  return _mm_loadl_epi64(static_cast<const __m128i*>(p));
}
inline V load4_splat(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm_set1_epi32(v);
}
inline void store_f32(float* p, F v) {
  _mm_storeu_ps(p, v);
}
inline V reduce4(V s0, V s1, V s2, V s3) {
  return _mm_hadd_epi32(_mm_hadd_epi32(s0, s1), _mm_hadd_epi32(s2, s3));
}
inline F load_f32(const float* p) {
  return _mm_loadu_ps(p);
}
inline F mul_f32(F a, F b) {
  return _mm_mul_ps(a, b);
}
inline F bits_as_f32(V v) {
  return _mm_castsi128_ps(v);
}
inline V f32_as_bits(F v) {
  return _mm_castps_si128(v);
}
template <int n>
inline V shl_i32(V v) {
  return _mm_slli_epi32(v, n);
}
inline V widen_low_u16(V v) {
  return _mm_cvtepu16_epi32(v);
}
inline V widen_high_u16(V v) {
  return _mm_unpackhi_epi16(v, _mm_setzero_si128());
}
inline F add_f32(F a, F b) {
  return _mm_add_ps(a, b);
}
inline F mul_add_f32(F a, F b, F acc) {
  return _mm_add_ps(acc, _mm_mul_ps(a, b));
}
inline float sum_f32(F v) {
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, v);
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}
// maddubs wants its first operand unsigned: move a's sign onto b.
inline V dot_i8(V a, V b) {
  const V products = _mm_maddubs_epi16(_mm_abs_epi8(a), _mm_sign_epi8(b, a));
  return _mm_madd_epi16(products, _mm_set1_epi16(1));
}
inline V dot_u7_pairs(V u, V x) {
  return _mm_maddubs_epi16(u, x);
}
inline V madd_i16(V a, V b) {
  return _mm_madd_epi16(a, b);
}
inline V widen_pairs_i16(V v) {
  return _mm_madd_epi16(v, _mm_set1_epi16(1));
}
inline V add_i16(V a, V b) {
  return _mm_add_epi16(a, b);
}
inline V splat_i16(int16_t v) {
  return _mm_set1_epi16(v);
}
inline V sub_i32(V a, V b) {
  return _mm_sub_epi32(a, b);
}

#endif

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
#endif

}  // namespace pipit::simd
