// Layout::kRowsOf4 for the legacy types: per block position the group holds the four rows'
// f16 scales (8 bytes), for Q4_1 and Q5_1 then their four f16 minimums, then the quants as row
// vectors (legacy_quants.h). A decode step converts four scales with one SIMD operation, and
// each product of a row vector with four activations lands in lanes of one row, so that one
// multiply-add scales all four rows' sums.
#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>
#include <vector>

#include "core/f16.h"
#include "core/simd128.h"
#include "quant/activations.h"
#include "quant/kernels.h"
#include "quant/legacy_quants.h"
#include "quant/quant_simd.h"
#include "quant/rows_of_4.h"
#include "quant/rows_of_4_k.h"

namespace pipit::kernels {
namespace {

// A legacy block in the file: `halves` f16 numbers (the scale, and the minimum if there is
// one), then the quants: for Q5 a 32-bit mask of fifth bits, then 16 bytes of nibbles.
struct BlockShape {
  int block_bytes;
  int halves;
  bool five_bits;
  constexpr int quant_bytes() const { return block_bytes - 2 * halves; }
  // The bytes that become row vectors: nibbles or Q8_0's quants.
  constexpr int vector_bytes() const { return quant_bytes() - (five_bits ? 4 : 0); }
};

template <typename T>
constexpr BlockShape shape_of() {
  return {(T::kHasMin ? 4 : 2) + T::kQuantBytes, T::kHasMin ? 2 : 1, T::kFiveBits};
}

// Row r's Q5 quants (the file's mask of fifth bits, then nibbles) written into a block
// position of the four-row layout: its four bytes of the low-bit vector and of each packed
// vector (legacy_quants.h). Whole values come from the row kernels' own five_bits(); each
// value of 16-31 gives its top three bits to the packed byte (hi << 3 puts bits 2-4 at 5-7,
// and values below 32 send nothing into the next byte) and its low two to the low bits.
void write_five_bit_row(const uint8_t* quants, const LegacyMasks& masks, int r, uint8_t* out) {
  using namespace simd;
  const Quants32 values = five_bits(quants, masks);
  alignas(16) uint8_t packed[16], low[16];
  store(packed,
        bit_or(values.lo, bit_and(shl_u16<3>(values.hi), splat_i8(static_cast<int8_t>(0xE0)))));
  store(low, bit_and(values.hi, splat_i8(0x03)));
  uint32_t low_bits = 0;
  for (int m = 0; m < 4; ++m) {
    std::memcpy(out + kLowBitsBytes + 16 * m + 4 * r, packed + 4 * m, 4);
    uint32_t pair_low_bits;
    std::memcpy(&pair_low_bits, low + 4 * m, 4);
    low_bits |= pair_low_bits << (2 * m);
  }
  std::memcpy(out + 4 * r, &low_bits, 4);
}

// Row `lane`'s Q5 quants as the file has them (a 32-bit mask of fifth bits, bit j for value
// j, then 16 bytes whose low nibbles are values 0-15 and high nibbles 16-31), back from the
// low bits and packed vectors.
void read_five_bit_quants(const uint8_t* quants, int lane, uint8_t* out) {
  const uint8_t* low_bits = quants;
  const uint8_t* packed = quants + kLowBitsBytes;
  uint32_t fifth_bits = 0;
  for (int m = 0; m < 4; ++m) {
    for (int j = 0; j < 4; ++j) {
      const int i = 4 * lane + j;
      const int byte = packed[16 * m + i];
      const int lo = byte & 0x1F;
      const int hi = ((byte >> 5) << 2) | ((low_bits[i] >> (2 * m)) & 3);
      out[4 + 4 * m + j] = static_cast<uint8_t>((lo & 0x0F) | (hi & 0x0F) << 4);
      fifth_bits |= static_cast<uint32_t>(lo >> 4) << (4 * m + j);
      fifth_bits |= static_cast<uint32_t>(hi >> 4) << (16 + 4 * m + j);
    }
  }
  std::memcpy(out, &fifth_bits, 4);
}

bool legacy_shape(TensorType type, BlockShape* shape) {
  switch (type) {
    case TensorType::Q8_0:
      *shape = shape_of<Q8_0Quants>();
      return true;
    case TensorType::Q4_0:
      *shape = shape_of<Q4_0Quants>();
      return true;
    case TensorType::Q5_0:
      *shape = shape_of<Q5_0Quants>();
      return true;
    case TensorType::Q4_1:
      *shape = shape_of<Q4_1Quants>();
      return true;
    case TensorType::Q5_1:
      *shape = shape_of<Q5_1Quants>();
      return true;
    default:
      return false;
  }
}

// Block b's share of the dot products of the group's rows with activation rows 0 to N - 1: the
// block's row vectors unpack once for all tokens; the offset correction and the minimums are
// the same for the four rows of a token, so they apply once to all four lanes.
template <typename P, typename T, int N>
PIPIT_ALWAYS_INLINE inline void block_terms(const uint8_t* gb, const uint8_t* x, size_t stride,
                                            int64_t b, const LegacyMasks& masks, simd::F terms[N]) {
  using namespace simd;
  constexpr int kHeader = T::kHasMin ? 16 : 8;
  // Scaled back once per block, for all tokens: a scalar multiply per token costs V8 four
  // instructions with the constant it builds.
  const auto halves = [&](int at) {
    return mul_f32(halves_to_f32_unscaled(gb + at, masks.sign_copies), masks.halves_unscale);
  };
  using Activations = typename T::Activations;
  const auto term = [&](V sums, const Activations& y, F dw, F min) {
    if constexpr (T::kOffset != 0) {
      static_assert(std::has_single_bit(unsigned{T::kOffset}));
      sums = sub_i32(sums, shl_i32<std::countr_zero(unsigned{T::kOffset})>(load4_splat(&y.sum)));
    }
    F t = mul_f32(to_f32(sums), mul_f32(dw, splat_f32(y.d)));
    if constexpr (T::kHasMin) t = mul_add_f32(min, splat_f32(y.s), t);
    return t;
  };
  const Activations* ys[N];
  for (int k = 0; k < N; ++k) ys[k] = &block_of<Activations>(x, stride, k, b);
  if constexpr (N == 1 || T::kQuantBytes != 32) {
    const int8_t* xs[N];
    for (int k = 0; k < N; ++k) xs[k] = ys[k]->qs;
    V sums[N];
    row_totals_streamed<P, T, N>(gb + kHeader, masks, xs, sums);
    // The scales are read after the quants, when the registers the products used are free.
    const F dw = halves(0);
    const F min = T::kHasMin ? halves(8) : zero_f32();
    for (int k = 0; k < N; ++k) terms[k] = term(sums[k], *ys[k], dw, min);
  } else {
    // Q8_0 for several tokens: each vector's RowWeights (magnitudes and signs) made at once
    // for the whole block ran 20% faster in Chromium than streamed.
    V quants[kRowVectors];
    for (int c = 0; c < kRowVectors; ++c) quants[c] = load(gb + kHeader + 16 * c);
    RowWeights w[kRowVectors];
    for (int c = 0; c < kRowVectors; ++c) w[c] = row_weights_of<T>(quants[c]);
    const F dw = halves(0);
    for (int k = 0; k < N; ++k)
      terms[k] = term(row_totals_of_block<P, T>(w, ys[k]->qs), *ys[k], dw, zero_f32());
  }
}

// out[k * out_stride + r] = dot(row r of the group, activation row k) for a legacy type. The
// accumulators are the loop's only carried values, and V8 may keep them in stack slots, where
// each update waits for a store to be forwarded to the next load: two blocks' terms are added
// before they meet the accumulators, which halves how often a block waits.
template <typename P, typename T, int N>
void rows4(const uint8_t* g, const uint8_t* x, size_t stride, int64_t n, float* out,
           size_t out_stride) {
  using namespace simd;
  constexpr size_t kBlockBytes = (T::kHasMin ? 16 : 8) + 4 * T::kQuantBytes;
  const LegacyMasks masks;
  const int64_t blocks = n / 32;
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    F first[N], second[N];
    block_terms<P, T, N>(g + b * kBlockBytes, x, stride, b, masks, first);
    block_terms<P, T, N>(g + (b + 1) * kBlockBytes, x, stride, b + 1, masks, second);
    for (int k = 0; k < N; ++k) acc[k] = add_f32(acc[k], add_f32(first[k], second[k]));
  }
  if (b < blocks) {
    F last[N];
    block_terms<P, T, N>(g + b * kBlockBytes, x, stride, b, masks, last);
    for (int k = 0; k < N; ++k) acc[k] = add_f32(acc[k], last[k]);
  }
  for (int k = 0; k < N; ++k) store_f32(out + k * out_stride, acc[k]);
}

template <typename P, typename T>
constexpr Rows4Fn rows4_entry =
    for_groups<rows4<P, T, 1>, rows4<P, T, 2>, rows4<P, T, 3>, rows4<P, T, 4>>;

// Rewrites every group of four rows in place. The block shape is a constant so that each copy
// compiles to a few loads and stores: a WASM build without bulk memory would otherwise call
// memcpy for every 2-byte scale, which made this most of a model's load time.
template <BlockShape kShape>
void interleave_groups(const Matrix& w, uint8_t* data) {
  const int64_t blocks = w.cols / 32;
  const LegacyMasks masks;
  rewrite_groups_of_4(w, data, [&](uint8_t* out, const uint8_t* original) {
    const uint8_t* row[4];
    for (int r = 0; r < 4; ++r) row[r] = original + r * w.row_bytes;
    for (int64_t b = 0; b < blocks; ++b) {
      for (int h = 0; h < kShape.halves; ++h) {
        for (int r = 0; r < 4; ++r, out += 2) std::memcpy(out, row[r] + 2 * h, 2);
      }
      const uint8_t* quants[4];
      for (int r = 0; r < 4; ++r) quants[r] = row[r] + 2 * kShape.halves;
      if constexpr (kShape.five_bits) {
        for (int r = 0; r < 4; ++r) write_five_bit_row(quants[r], masks, r, out);
        out += kLowBitsBytes + 4 * kShape.vector_bytes();
      } else {
        for (int m = 0; m < kShape.vector_bytes() / 4; ++m) {
          for (int r = 0; r < 4; ++r, out += 4) std::memcpy(out, quants[r] + 4 * m, 4);
        }
      }
      for (int r = 0; r < 4; ++r) row[r] += kShape.block_bytes;
    }
  });
}

template <typename P>
Rows4Fn rows4_kernel_of(TensorType type) {
  switch (type) {
    case TensorType::Q8_0:
      return rows4_entry<P, Q8_0Quants>;
    case TensorType::Q4_0:
      return rows4_entry<P, Q4_0Quants>;
    case TensorType::Q5_0:
      return rows4_entry<P, Q5_0Quants>;
    case TensorType::Q4_1:
      return rows4_entry<P, Q4_1Quants>;
    case TensorType::Q5_1:
      return rows4_entry<P, Q5_1Quants>;
    default:
      return rows4_k_kernel(type);
  }
}

#if defined(__wasm_relaxed_simd__)
// Relaxed SIMD leaves a dot-add of bytes above 127 to the engine, and the answer tells how the
// engine computes it: with 255 * 127 in every product, vpdpbusd (x64 with AVX-VNNI) gives
// 4 * 255 * 127 a lane and Arm's sdot 4 * -127, both one instruction. x64 without AVX-VNNI
// (pmaddubsw, pmaddwd) saturates each pair at 32767 and gives 65534. Any other answer keeps
// RowProducts too: Node 20's baseline compiler (behind --experimental-wasm-relaxed-simd)
// doubles every sum, and gives 131068.
bool engine_fuses_dot_add() {
  const simd::V sums =
      simd::pipit_relaxed_dot_add(simd::splat_i8(127), simd::splat_i8(-1), simd::zero());
  const int32_t lane = wasm_i32x4_extract_lane(sums, 0);
  return lane == 4 * 255 * 127 || lane == 4 * -127;
}
#endif

std::optional<ProductFamily> chosen_family;

}  // namespace

ProductFamily product_family() {
  if (chosen_family) return *chosen_family;
#if defined(__wasm_relaxed_simd__)
  static const ProductFamily engines_best =
      engine_fuses_dot_add() ? ProductFamily::kFused : ProductFamily::kRowProducts;
  return engines_best;
#else
  return ProductFamily::kRowProducts;
#endif
}

bool choose_product_family(std::optional<ProductFamily> family) {
#if !defined(__wasm_relaxed_simd__)
  if (family == ProductFamily::kFused) return false;
#endif
  chosen_family = family;
  return true;
}

Rows4Fn rows4_kernel(TensorType type) {
#if defined(__wasm_relaxed_simd__)
  if (product_family() == ProductFamily::kFused)
    return rows4_kernel_of<simd::FusedRowProducts>(type);
#endif
  return rows4_kernel_of<simd::RowProducts>(type);
}

void interleave_rows_of_4(Matrix& w, uint8_t* data) {
  if (interleave_k_rows_of_4(w, data)) return;
  if (w.layout != Layout::kRows || w.rows % 4 != 0) return;
  const auto interleave = [&]<typename T>() {
    interleave_groups<shape_of<T>()>(w, data);
    w.layout = Layout::kRowsOf4;
  };
  switch (w.type) {
    case TensorType::Q8_0:
      return interleave.operator()<Q8_0Quants>();
    case TensorType::Q4_0:
      return interleave.operator()<Q4_0Quants>();
    case TensorType::Q5_0:
      return interleave.operator()<Q5_0Quants>();
    case TensorType::Q4_1:
      return interleave.operator()<Q4_1Quants>();
    case TensorType::Q5_1:
      return interleave.operator()<Q5_1Quants>();
    default:
      return;
  }
}

void dequantize_matrix_row(const Matrix& w, int64_t r, float* dst) {
  if (w.layout == Layout::kRowsOf4 && dequantize_k_row_of_4(w, r, dst)) return;
  BlockShape shape;
  if (w.layout == Layout::kRows || !legacy_shape(w.type, &shape)) {
    dequantize_row(w.type, w.row(r), dst, w.cols);
    return;
  }
  // Reassemble the row in the file's block format, then decode it as usual.
  std::vector<uint8_t> row(w.row_bytes);
  const uint8_t* group = w.data + (r / 4) * 4 * w.row_bytes;
  const int lane = static_cast<int>(r % 4);
  const size_t group_block_bytes = 4 * static_cast<size_t>(shape.block_bytes);
  for (int64_t b = 0; b < w.cols / 32; ++b) {
    const uint8_t* in = group + b * group_block_bytes;
    uint8_t* out = row.data() + b * shape.block_bytes;
    for (int h = 0; h < shape.halves; ++h) std::memcpy(out + 2 * h, in + 8 * h + 2 * lane, 2);
    const uint8_t* quants = in + 8 * shape.halves;
    uint8_t* out_quants = out + 2 * shape.halves;
    if (shape.five_bits) {
      read_five_bit_quants(quants, lane, out_quants);
      continue;
    }
    for (int m = 0; m < shape.vector_bytes() / 4; ++m) {
      std::memcpy(out_quants + 4 * m, quants + 16 * m + 4 * lane, 4);
    }
  }
  dequantize_row(w.type, row.data(), dst, w.cols);
}

}  // namespace pipit::kernels
