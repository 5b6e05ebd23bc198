// The 128-bit operations pipit's kernels need, spelled once for WebAssembly SIMD128 and once
// for x86 SSE4.1. xsimd 8.1 has no widening int8 product, and under Emscripten it reaches
// WebAssembly through SSE emulation headers that turn float-to-int conversions into scalar
// code. Lane order of dot_i8 differs between the two, which is fine: callers only ever add
// all four lanes together or scale them uniformly.
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
// Sign-extends the low eight of sixteen int8 lanes to int16.
inline V widen_low_i8(V v) {
  return wasm_i16x8_extend_low_i8x16(v);
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
#if defined(__wasm_relaxed_simd__)
// i32x4.relaxed_dot_i8x16_i7x16_add_s, which Emscripten 3.1.6's binaryen cannot carry (it
// reads the opcode by an early draft's meaning and breaks the module): the C++ calls this
// import, and web/scripts/relaxed-dot-add.mjs turns every call into the instruction after
// linking. The engines' JS side of it (bindings/relaxed_dot_add.js) is never called.
extern "C" __attribute__((import_module("env"), import_name("pipit_relaxed_dot_add"), const)) V
pipit_relaxed_dot_add(V x, V u, V acc);
#endif
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
inline void store(void* p, V v) {
  wasm_v128_store(p, v);
}
inline F abs_f32(F v) {
  return wasm_f32x4_abs(v);
}
// Lane by lane std::max(acc, v): acc where v is NaN.
inline F max_f32(F acc, F v) {
  return wasm_f32x4_pmax(acc, v);
}
inline float max_lane_f32(F v) {
  const F m = wasm_f32x4_pmax(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  return wasm_f32x4_extract_lane(wasm_f32x4_pmax(m, wasm_i32x4_shuffle(m, m, 1, 0, 3, 2)), 0);
}
// Bit i set where lane i of a equals lane i of b.
inline int equal_lanes_f32(F a, F b) {
  return wasm_i32x4_bitmask(wasm_f32x4_eq(a, b));
}
inline V equal_mask_f32(F a, F b) {
  return wasm_f32x4_eq(a, b);
}
inline int32_t sum_i32(V v) {
  const V s = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  return wasm_i32x4_extract_lane(wasm_i32x4_add(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2)), 0);
}
// Sixteen int32 lanes (four vectors) as int8, saturating.
inline V narrow_i32_to_i8(V a, V b, V c, V d) {
  return wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(a, b), wasm_i16x8_narrow_i32x4(c, d));
}
inline F sub_f32(F a, F b) {
  return wasm_f32x4_sub(a, b);
}
inline F div_f32(F a, F b) {
  return wasm_f32x4_div(a, b);
}
// Lanes limited to [lo, hi]; NaN stays NaN.
inline F clamp_f32(F v, F lo, F hi) {
  return wasm_f32x4_pmin(wasm_f32x4_pmax(v, lo), hi);
}
inline V less_mask_f32(F a, F b) {
  return wasm_f32x4_lt(a, b);
}
// a & ~b
inline V bit_and_not(V a, V b) {
  return wasm_v128_andnot(a, b);
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
inline V widen_low_i8(V v) {
  return _mm_cvtepi8_epi16(v);
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
inline void store(void* p, V v) {
  _mm_storeu_si128(static_cast<__m128i*>(p), v);
}
inline F abs_f32(F v) {
  return _mm_andnot_ps(_mm_set1_ps(-0.0f), v);
}
inline F max_f32(F acc, F v) {
  return _mm_max_ps(v, acc);  // the second operand where either is NaN
}
inline float max_lane_f32(F v) {
  const F m = _mm_max_ps(v, _mm_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtss_f32(_mm_max_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1))));
}
inline int equal_lanes_f32(F a, F b) {
  return _mm_movemask_ps(_mm_cmpeq_ps(a, b));
}
inline V equal_mask_f32(F a, F b) {
  return _mm_castps_si128(_mm_cmpeq_ps(a, b));
}
inline int32_t sum_i32(V v) {
  const V s = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1))));
}
inline V narrow_i32_to_i8(V a, V b, V c, V d) {
  return _mm_packs_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d));
}
inline F sub_f32(F a, F b) {
  return _mm_sub_ps(a, b);
}
inline F div_f32(F a, F b) {
  return _mm_div_ps(a, b);
}
inline F clamp_f32(F v, F lo, F hi) {
  return _mm_min_ps(hi, _mm_max_ps(lo, v));  // the second operand where either is NaN
}
inline V less_mask_f32(F a, F b) {
  return _mm_castps_si128(_mm_cmplt_ps(a, b));
}
inline V bit_and_not(V a, V b) {
  return _mm_andnot_si128(b, a);
}

#endif

// Each lane rounded to the nearest integer, ties to even, for lanes of magnitude below 2^22;
// NaN becomes 0. Adding 1.5 * 2^23 makes the float adder round away the fraction (as
// llama.cpp's nearest_int does), after which the integer is the low bits of the sum. Three
// operations where a float-to-int conversion with NaN handling costs V8 six or more.
// `magic` is splat_f32(kRoundingMagic), held() by the caller.
constexpr float kRoundingMagic = 12582912.0f;
inline V round_small_to_i32(F v, F magic) {
  const V shifted = f32_as_bits(add_f32(v, magic));
  return bit_and(sub_i32(shifted, f32_as_bits(magic)), equal_mask_f32(v, v));
}

// e^x lane by lane, as Cephes' expf computes it (relative error below 4e-8 there): x = n ln 2
// + r with |r| <= ln 2 / 2, e^r from a degree-5 polynomial, 2^n written into the exponent
// bits. Below -87.33654 (where e^x stops being a normal float) the result is 0, above 88 it is
// e^88, and NaN stays NaN. The constants are made once per loop (ExpConstants, held()).
struct ExpConstants {
  F lowest = held(splat_f32(-87.33654f));
  F highest = held(splat_f32(88.0f));
  F log2e = held(splat_f32(1.44269504088896341f));
  F magic = held(splat_f32(kRoundingMagic));
  F ln2_high = held(splat_f32(0.693359375f));
  F ln2_low = held(splat_f32(-2.12194440e-4f));
  F p0 = held(splat_f32(1.9875691500e-4f));
  F p1 = held(splat_f32(1.3981999507e-3f));
  F p2 = held(splat_f32(8.3334519073e-3f));
  F p3 = held(splat_f32(4.1665795894e-2f));
  F p4 = held(splat_f32(1.6666665459e-1f));
  F p5 = held(splat_f32(5.0000001201e-1f));
  F one = held(splat_f32(1.0f));
  V exponent_bias = held(splat_i32(127));
};
inline F exp_f32(F x, const ExpConstants& k) {
  const F c = clamp_f32(x, k.lowest, k.highest);
  const F shifted = add_f32(mul_f32(c, k.log2e), k.magic);  // n in the low mantissa bits
  const F n = sub_f32(shifted, k.magic);
  const F r = sub_f32(sub_f32(c, mul_f32(n, k.ln2_high)), mul_f32(n, k.ln2_low));
  F p = add_f32(mul_f32(k.p0, r), k.p1);
  p = add_f32(mul_f32(p, r), k.p2);
  p = add_f32(mul_f32(p, r), k.p3);
  p = add_f32(mul_f32(p, r), k.p4);
  p = add_f32(mul_f32(p, r), k.p5);
  const F e_r = add_f32(add_f32(mul_f32(p, mul_f32(r, r)), r), k.one);
  const V n_bits = sub_i32(f32_as_bits(shifted), f32_as_bits(k.magic));
  const F two_to_n = bits_as_f32(shl_i32<23>(add_i32(n_bits, k.exponent_bias)));
  return bits_as_f32(bit_and_not(f32_as_bits(mul_f32(e_r, two_to_n)), less_mask_f32(x, k.lowest)));
}

// A store of v that V8 must make after computing v and before any load that follows it.
// TurboFan puts a loop body's loads first, in program order, and the arithmetic after them, so
// a kernel that unpacks and multiplies vector after vector still holds every loaded vector at
// once and, past 16 registers, spills them to the stack; a store that needs the products so
// far keeps loads and arithmetic in turns. A store takes no vector ALU port. Native compilers
// schedule for their registers themselves.
inline void keep_order([[maybe_unused]] V v) {
#if defined(__wasm_simd128__)
  [[maybe_unused]] volatile V sink = v;
#endif
}

}  // namespace pipit::simd
