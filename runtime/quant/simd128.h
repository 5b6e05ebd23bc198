// The handful of 128-bit integer operations the quantized dot products need, spelled once
// for WebAssembly SIMD128 and once for x86 SSE4.1 (xsimd 8.1 has no widening int8 product).
// Lane order of dot_i8 differs between the two, which is fine: callers only ever add all
// four lanes together or scale them uniformly.
#pragma once

#include <cstdint>

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
inline V load(const void* p) {
  return wasm_v128_load(p);
}
inline V splat_i8(int8_t v) {
  return wasm_i8x16_splat(v);
}
inline V splat_i32(int32_t v) {
  return wasm_i32x4_splat(v);
}
inline V splat_f32(float v) {
  return wasm_f32x4_splat(v);
}
inline V zero_f32() {
  return wasm_f32x4_splat(0.0f);
}
inline V zero() {
  return wasm_i32x4_const(0, 0, 0, 0);
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
// Per byte: (v >> n) for unsigned bytes, and (v << 4) for values below 16.
template <int n>
inline V shr_u8(V v) {
  return wasm_u8x16_shr(v, n);
}
inline V shl4_small(V v) {
  return wasm_i8x16_shl(v, 4);
}
inline V add_i32(V a, V b) {
  return wasm_i32x4_add(a, b);
}
inline V mul_i32(V a, V b) {
  return wasm_i32x4_mul(a, b);
}
inline V to_f32(V v) {
  return wasm_f32x4_convert_i32x4(v);
}
inline V add_f32(V a, V b) {
  return wasm_f32x4_add(a, b);
}
inline V mul_add_f32(V a, V b, V acc) {
  return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b));
}
inline float sum_f32(V v) {
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

#else

using V = __m128i;
inline V load(const void* p) {
  return _mm_loadu_si128(static_cast<const __m128i*>(p));
}
inline V splat_i8(int8_t v) {
  return _mm_set1_epi8(v);
}
inline V splat_i32(int32_t v) {
  return _mm_set1_epi32(v);
}
inline __m128 splat_f32(float v) {
  return _mm_set1_ps(v);
}
inline __m128 zero_f32() {
  return _mm_setzero_ps();
}
inline V zero() {
  return _mm_setzero_si128();
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
  return _mm_and_si128(_mm_srli_epi16(v, n), _mm_set1_epi8(0xFF >> n));
}
inline V shl4_small(V v) {
  return _mm_slli_epi16(v, 4);
}
inline V add_i32(V a, V b) {
  return _mm_add_epi32(a, b);
}
inline V mul_i32(V a, V b) {
  return _mm_mullo_epi32(a, b);
}
inline __m128 to_f32(V v) {
  return _mm_cvtepi32_ps(v);
}
inline __m128 add_f32(__m128 a, __m128 b) {
  return _mm_add_ps(a, b);
}
inline __m128 mul_add_f32(__m128 a, __m128 b, __m128 acc) {
  return _mm_add_ps(acc, _mm_mul_ps(a, b));
}
inline float sum_f32(__m128 v) {
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, v);
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}
// maddubs wants its first operand unsigned: move a's sign onto b.
inline V dot_i8(V a, V b) {
  const V products = _mm_maddubs_epi16(_mm_abs_epi8(a), _mm_sign_epi8(b, a));
  return _mm_madd_epi16(products, _mm_set1_epi16(1));
}

#endif

}  // namespace pipit::simd
