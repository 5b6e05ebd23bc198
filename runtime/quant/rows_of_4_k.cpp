// Layout::kRowsOf4 for Q4_K, Q5_K and Q6_K. Per super-block position a group holds the four rows'
// scales together, so that one SIMD pass converts their f16 scales and unpacks their sub-block
// scales, then the quants. One pass over a group computes four rows while loading each
// activation block once, and scales the four rows' integer sums with one float operation.
//
// Q4_K group (4 x 144 bytes): the rows' d (f16), their dmin, their 12 packed scale bytes as
// three 16-byte vectors (vector i holds bytes 4i..4i+3 of rows 0, 1, 2, 3), then each row's 128
// quant bytes as in the file. Q5_K (4 x 176 bytes) has each row's 32 bytes of fifth bits
// between the scales and the quants.
//
// Q6_K group (4 x 210 bytes): the rows' d, their 16 scales each (scale s of row r at byte
// 4s + r, so that a sub-block's four scales are adjacent), then the quants as the legacy types
// keep them (legacy_quants.h): "row vectors" c of 16 bytes, holding values 4c to 4c + 3 of each
// row, row r in bytes 4r to 4r + 3, so that products with four activations repeated for every
// row land in lanes of one row (quant_simd.h) and each activation load serves four rows. The
// four row vectors of a 16-value sub-block take 48 bytes: vectors a, b, c hold row vectors
// 4s, 4s + 1, 4s + 2 in their low six bits and bits 0-1, 2-3, 4-5 of row vector 4s + 3 on top.
#include "quant/rows_of_4_k.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/simd128.h"
#include "quant/activations.h"
#include "quant/k_scales.h"
#include "quant/quant_simd.h"

// Compiling for WebAssembly, where registers are not its concern, clang unrolls the Q4_K and
// Q5_K kernels' loop over a group's four rows and loads all their quants and scales at the top;
// V8 then spills most of them to the stack. Kept rolled, the loop body fits x86's 16 vector
// registers (when Q6_K had such a loop, its relaxed-SIMD decoding ran 1.75x faster rolled).
#if defined(__wasm__)
#define PIPIT_ROLLED _Pragma("clang loop unroll(disable)")
#else
#define PIPIT_ROLLED
#endif

namespace pipit::kernels {
namespace {

constexpr int kQ4KBytes = 144;
constexpr int kQ5KBytes = 176;
constexpr int kQ6KBytes = 210;

// out[k * out_stride + r] = dot(row r of the group, activation row k). See dot_simd.cpp for how the
// K kernels keep quants unsigned and fold mins and offsets into the activation sums.
template <bool kFiveBits, int N>
void rows4_q45_k(const uint8_t* g, const uint8_t* x, size_t stride, int64_t n, float* out,
                 size_t out_stride) {
  using namespace simd;
  constexpr int kGroupBytes = 4 * (kFiveBits ? kQ5KBytes : kQ4KBytes);
  constexpr int kQuants = kFiveBits ? 192 : 64;  // where the rows' quants start in a group
  const V low_nibbles = splat_i8(0x0F), low6 = splat_i8(63), bits_4_5 = splat_i8(0x30);
  const V ones = splat_i16(1);
  // Sums of activation pairs 2t, 2t+1 (as int16, the low halves of madd_i16's int32 lanes) for
  // every row's two lanes.
  const V pairs_0_1 = bytes(0, 1, 4, 5, 0, 1, 4, 5, 0, 1, 4, 5, 0, 1, 4, 5);
  const V pairs_2_3 = bytes(8, 9, 12, 13, 8, 9, 12, 13, 8, 9, 12, 13, 8, 9, 12, 13);
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  for (int64_t b = 0; b < n / 256; ++b, g += kGroupBytes) {
    const V halves = load(g);
    const F d = halves_to_f32(widen_low_u16(halves)), dmin = halves_to_f32(widen_high_u16(halves));
    // Byte 4r + i: scale or min i (or 4 + i) of row r, as unpack_k4_scales decodes them.
    const V w0 = load(g + 16), w1 = load(g + 32), w2 = load(g + 48);
    const V scales_0_3 = bit_and(w0, low6);
    const V scales_4_7 = bit_or(bit_and(w2, low_nibbles), bit_and(shr_u8<2>(w0), bits_4_5));
    const V mins_0_3 = bit_and(w1, low6);
    const V mins_4_7 = bit_or(shr_u8<4>(w2), bit_and(shr_u8<2>(w1), bits_4_5));
    alignas(16) int16_t scale[32];  // row r's scale i at 4r + i, its scale 4 + i at 16 + 4r + i
    store_i16(scale, low_bytes_as_i16(scales_0_3));
    store_i16(scale + 8, high_bytes_as_i16(scales_0_3));
    store_i16(scale + 16, low_bytes_as_i16(scales_4_7));
    store_i16(scale + 24, high_bytes_as_i16(scales_4_7));
    // Mins 2t and 2t+1 of each row as int16 pairs: madd_i16 with the activation sums of
    // sub-blocks 2t, 2t+1 gives every row's lane of the min correction.
    const V first = bytes(0, -1, 1, -1, 4, -1, 5, -1, 8, -1, 9, -1, 12, -1, 13, -1);
    const V second = bytes(2, -1, 3, -1, 6, -1, 7, -1, 10, -1, 11, -1, 14, -1, 15, -1);
    const V min_pairs[4] = {shuffle_bytes(mins_0_3, first), shuffle_bytes(mins_0_3, second),
                            shuffle_bytes(mins_4_7, first), shuffle_bytes(mins_4_7, second)};
    V sumi[N][4];
    for (auto& row_sums : sumi) {
      for (auto& v : row_sums) v = zero();
    }
    for (int j = 0; j < 4; ++j) {
      PIPIT_ROLLED
      for (int r = 0; r < 4; ++r) {
        const uint8_t* q = g + kQuants + 128 * r + 32 * j;
        const V q0 = load(q), q1 = load(q + 16);
        V lo0 = bit_and(q0, low_nibbles), lo1 = bit_and(q1, low_nibbles);
        V hi0 = shr_u8<4>(q0), hi1 = shr_u8<4>(q1);
        if constexpr (kFiveBits) {
          const uint8_t* qh = g + 64 + 32 * r;
          const V qh0 = load(qh), qh1 = load(qh + 16);
          add_q5_k_fifth_bits(qh0, qh1, j, lo0, lo1, hi0, hi1);
        }
        const int16_t* s = scale + (j < 2 ? 0 : 16) + 4 * r + 2 * (j % 2);
        const V scale_lo = splat_i16(s[0]), scale_hi = splat_i16(s[1]);
        for (int k = 0; k < N; ++k) {
          const int8_t* xq = block_of<BlockQ8_K>(x, stride, k, b).qs + 64 * j;
          const V lo = add_i16(dot_u7_pairs(lo0, load(xq)), dot_u7_pairs(lo1, load(xq + 16)));
          const V hi = add_i16(dot_u7_pairs(hi0, load(xq + 32)), dot_u7_pairs(hi1, load(xq + 48)));
          sumi[k][r] = add_i32(sumi[k][r], add_i32(madd_i16(lo, scale_lo), madd_i16(hi, scale_hi)));
        }
      }
    }
    for (int k = 0; k < N; ++k) {
      const auto& y = block_of<BlockQ8_K>(x, stride, k, b);
      const V sums_lo = madd_i16(load(y.bsums), ones), sums_hi = madd_i16(load(y.bsums + 8), ones);
      const V mins = add_i32(add_i32(madd_i16(min_pairs[0], shuffle_bytes(sums_lo, pairs_0_1)),
                                     madd_i16(min_pairs[1], shuffle_bytes(sums_lo, pairs_2_3))),
                             add_i32(madd_i16(min_pairs[2], shuffle_bytes(sums_hi, pairs_0_1)),
                                     madd_i16(min_pairs[3], shuffle_bytes(sums_hi, pairs_2_3))));
      const V rows = reduce4(sumi[k][0], sumi[k][1], sumi[k][2], sumi[k][3]);
      acc[k] = mul_add_f32(to_f32(rows), mul_f32(d, splat_f32(y.d)), acc[k]);
      acc[k] = mul_add_f32(to_f32(mins), mul_f32(dmin, splat_f32(-y.d)), acc[k]);
    }
  }
  for (int k = 0; k < N; ++k) store_f32(out + k * out_stride, acc[k]);
}

// RowProducts in every build: FusedRowProducts scales each sub-block with an int32 multiply,
// and was 2% faster in decode and 5% slower in prefill (relaxed engine, Chromium, AVX-VNNI).
template <int N>
void rows4_q6_k(const uint8_t* g, const uint8_t* x, size_t stride, int64_t n, float* out,
                size_t out_stride) {
  using namespace simd;
  using P = RowProducts;
  // Held, or V8 builds each mask afresh at every use in the loop.
  const V low6 = held(splat_i8(63)), bits_0_1 = held(splat_i8(0x03));
  const V bits_2_3 = held(splat_i8(0x0C)), bits_4_5 = held(splat_i8(0x30));
  constexpr int kPerSum = std::min(4, P::per_sum(63));
  static_assert(4 % kPerSum == 0, "a sub-block's four row vectors split into whole sums");
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  for (int64_t b = 0; b < n / 256; ++b, g += 4 * kQ6KBytes) {
    const BlockQ8_K* ys[N];
    for (int k = 0; k < N; ++k) ys[k] = &block_of<BlockQ8_K>(x, stride, k, b);
    // sums: lane r = row r's scaled sum of quant * activation; offsets: twice its scaled sum of
    // activations, to take the quants' +32 back out.
    V sums[N], offsets[N];
    for (int k = 0; k < N; ++k) sums[k] = offsets[k] = zero();
    for (int q = 0; q < 4; ++q) {
      const V scales = load(g + 8 + 16 * q);
      const uint8_t* quants = g + 72 + 192 * q;
      const auto sub_block = [&]<int t>(std::integral_constant<int, t>) {
        const int s = 4 * q + t;
        const P::Scales row_scale = P::scales<t>(scales);
        const uint8_t* v = quants + 48 * t;
        const V va = load(v), vb = load(v + 16), vc = load(v + 32);
        // 16-bit shifts: what crosses in from the byte above lands outside each mask.
        const V w[4] = {
            bit_and(va, low6), bit_and(vb, low6), bit_and(vc, low6),
            bit_or(bit_or(bit_and(shr_u16<6>(va), bits_0_1), bit_and(shr_u16<4>(vb), bits_2_3)),
                   bit_and(shr_u16<2>(vc), bits_4_5))};
        RowWeights rw[4];
        for (int c = 0; c < 4; ++c) rw[c] = row_weights(w[c]);
        for (int k = 0; k < N; ++k) {
          const int8_t* xs = ys[k]->qs + 16 * s;
          for (int first = 0; first < 4; first += kPerSum) {
            P::Sums p = P::products(rw[first], load4_splat(xs + 4 * first));
            for (int c = first + 1; c < first + kPerSum; ++c) {
              p = P::add_products(p, rw[c], load4_splat(xs + 4 * c));
            }
            sums[k] = add_i32(sums[k], P::scaled_totals(p, row_scale));
          }
          offsets[k] = add_i32(offsets[k], P::twice_scaled(row_scale, ys[k]->bsums[s]));
          keep_order(sums[k]);
        }
      };
      sub_block(std::integral_constant<int, 0>{});
      sub_block(std::integral_constant<int, 1>{});
      sub_block(std::integral_constant<int, 2>{});
      sub_block(std::integral_constant<int, 3>{});
    }
    const F d = halves_to_f32(widen_low_u16(load64(g)));
    for (int k = 0; k < N; ++k) {
      const V rows = sub_i32(sums[k], shl_i32<4>(offsets[k]));
      acc[k] = mul_add_f32(to_f32(rows), mul_f32(d, splat_f32(ys[k]->d)), acc[k]);
    }
  }
  for (int k = 0; k < N; ++k) store_f32(out + k * out_stride, acc[k]);
}

// ---- the layouts ----

// Q6_K's 256 quants (0..63, before the -32 offset) from the file's ql and qh.
void q6_k_values_from_file(const uint8_t* block, uint8_t v[256]) {
  for (int chunk = 0; chunk < 2; ++chunk) {
    const uint8_t* ql = block + 64 * chunk;
    const uint8_t* qh = block + 128 + 32 * chunk;
    uint8_t* out = v + 128 * chunk;
    for (int l = 0; l < 32; ++l) {
      out[l] = (ql[l] & 0x0F) | ((qh[l] & 3) << 4);
      out[l + 32] = (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4);
      out[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
      out[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
    }
  }
}

void q6_k_values_to_file(const uint8_t v[256], uint8_t* block) {
  for (int chunk = 0; chunk < 2; ++chunk) {
    uint8_t* ql = block + 64 * chunk;
    uint8_t* qh = block + 128 + 32 * chunk;
    const uint8_t* in = v + 128 * chunk;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((in[l] & 0x0F) | ((in[l + 64] & 0x0F) << 4));
      ql[l + 32] = static_cast<uint8_t>((in[l + 32] & 0x0F) | ((in[l + 96] & 0x0F) << 4));
      qh[l] = static_cast<uint8_t>((in[l] >> 4) | ((in[l + 32] >> 4) << 2) |
                                   ((in[l + 64] >> 4) << 4) | ((in[l + 96] >> 4) << 6));
    }
  }
}

int block_bytes_of(TensorType type) {
  switch (type) {
    case TensorType::Q4_K:
      return kQ4KBytes;
    case TensorType::Q5_K:
      return kQ5KBytes;
    default:
      return kQ6KBytes;
  }
}

// Block position b of all four rows (`rows`, each in the file's layout) into the group's form.
void to_group(TensorType type, const uint8_t* const rows[4], uint8_t* out) {
  if (type != TensorType::Q6_K) {
    const int fifth_bits = type == TensorType::Q5_K ? 32 : 0;
    for (int r = 0; r < 4; ++r) {
      std::memcpy(out + 2 * r, rows[r], 2);
      std::memcpy(out + 8 + 2 * r, rows[r] + 2, 2);
      for (int i = 0; i < 3; ++i) std::memcpy(out + 16 + 16 * i + 4 * r, rows[r] + 4 + 4 * i, 4);
      std::memcpy(out + 64 + fifth_bits * r, rows[r] + 16, fifth_bits);
      std::memcpy(out + 64 + 4 * fifth_bits + 128 * r, rows[r] + 16 + fifth_bits, 128);
    }
    return;
  }
  uint8_t v[4][256];
  for (int r = 0; r < 4; ++r) {
    std::memcpy(out + 2 * r, rows[r] + 208, 2);
    for (int s = 0; s < 16; ++s) out[8 + 4 * s + r] = rows[r][192 + s];
    q6_k_values_from_file(rows[r], v[r]);
  }
  for (int s = 0; s < 16; ++s) {
    uint8_t* q = out + 72 + 48 * s;
    for (int r = 0; r < 4; ++r) {
      const uint8_t* sub_block = v[r] + 16 * s;
      for (int i = 0; i < 4; ++i) {
        const int top = sub_block[12 + i];
        q[4 * r + i] = static_cast<uint8_t>(sub_block[i] | (top & 3) << 6);
        q[16 + 4 * r + i] = static_cast<uint8_t>(sub_block[4 + i] | ((top >> 2) & 3) << 6);
        q[32 + 4 * r + i] = static_cast<uint8_t>(sub_block[8 + i] | (top >> 4) << 6);
      }
    }
  }
}

// Row r's block from a group's block position, in the file's layout.
void from_group(TensorType type, const uint8_t* in, int r, uint8_t* block) {
  if (type != TensorType::Q6_K) {
    const int fifth_bits = type == TensorType::Q5_K ? 32 : 0;
    std::memcpy(block, in + 2 * r, 2);
    std::memcpy(block + 2, in + 8 + 2 * r, 2);
    for (int i = 0; i < 3; ++i) std::memcpy(block + 4 + 4 * i, in + 16 + 16 * i + 4 * r, 4);
    std::memcpy(block + 16, in + 64 + fifth_bits * r, fifth_bits);
    std::memcpy(block + 16 + fifth_bits, in + 64 + 4 * fifth_bits + 128 * r, 128);
    return;
  }
  std::memcpy(block + 208, in + 2 * r, 2);
  uint8_t v[256];
  for (int s = 0; s < 16; ++s) {
    block[192 + s] = in[8 + 4 * s + r];
    const uint8_t* q = in + 72 + 48 * s;
    uint8_t* sub_block = v + 16 * s;
    for (int i = 0; i < 4; ++i) {
      const int a = q[4 * r + i], b = q[16 + 4 * r + i], c = q[32 + 4 * r + i];
      sub_block[i] = static_cast<uint8_t>(a & 63);
      sub_block[4 + i] = static_cast<uint8_t>(b & 63);
      sub_block[8 + i] = static_cast<uint8_t>(c & 63);
      sub_block[12 + i] = static_cast<uint8_t>((a >> 6) | (b >> 6) << 2 | (c >> 6) << 4);
    }
  }
  q6_k_values_to_file(v, block);
}

}  // namespace

Rows4Fn rows4_k_kernel(TensorType type) {
  switch (type) {
    case TensorType::Q4_K:
      return for_groups<rows4_q45_k<false, 1>, rows4_q45_k<false, 2>, rows4_q45_k<false, 3>,
                        rows4_q45_k<false, 4>>;
    case TensorType::Q5_K:
      return for_groups<rows4_q45_k<true, 1>, rows4_q45_k<true, 2>, rows4_q45_k<true, 3>,
                        rows4_q45_k<true, 4>>;
    case TensorType::Q6_K:
      return for_groups<rows4_q6_k<1>, rows4_q6_k<2>, rows4_q6_k<3>, rows4_q6_k<4>>;
    default:
      return nullptr;
  }
}

bool interleave_k_rows_of_4(Matrix& w, uint8_t* data) {
  if (!rows4_k_kernel(w.type)) return false;
  if (w.layout != Layout::kRows || w.rows % 4 != 0) return true;
  const int block_bytes = block_bytes_of(w.type);
  const int64_t blocks = w.cols / 256;
  rewrite_groups_of_4(w, data, [&](uint8_t* group, const uint8_t* original) {
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* rows[4];
      for (int r = 0; r < 4; ++r) rows[r] = original + r * w.row_bytes + b * block_bytes;
      to_group(w.type, rows, group + 4 * b * block_bytes);
    }
  });
  w.layout = Layout::kRowsOf4;
  return true;
}

bool dequantize_k_row_of_4(const Matrix& w, int64_t r, float* dst) {
  if (!rows4_k_kernel(w.type)) return false;
  const int block_bytes = block_bytes_of(w.type);
  std::vector<uint8_t> row(w.row_bytes);
  const uint8_t* group = w.data + (r / 4) * 4 * w.row_bytes;
  for (int64_t b = 0; b < w.cols / 256; ++b) {
    from_group(w.type, group + 4 * b * block_bytes, static_cast<int>(r % 4),
               row.data() + b * block_bytes);
  }
  dequantize_row(w.type, row.data(), dst, w.cols);
  return true;
}

}  // namespace pipit::kernels
