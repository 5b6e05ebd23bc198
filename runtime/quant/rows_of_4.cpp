// Layout::kRowsOf4: four rows decoded in one pass. Per block position the group holds the four
// rows' f16 scales (8 bytes), for Q4_1 and Q5_1 then their four f16 minimums, then each row's
// quants. A decode step then loads each activation block once per four rows, converts four
// scales with one SIMD operation, and adds the four rows' integer sums across lanes so that one
// multiply-add scales all four.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/f16.h"
#include "quant/activations.h"
#include "quant/kernels.h"
#include "quant/legacy_quants.h"
#include "quant/rows_of_4.h"
#include "quant/rows_of_4_k.h"
#include "quant/simd128.h"

namespace pipit::kernels {
namespace {

// A legacy block in the file: `halves` f16 numbers (the scale, and the minimum if there is
// one), then the quants.
// Q5's fifth bits (4 bytes before the 16 of nibbles) go to a bit plane in the four-row layout.
struct BlockShape {
  int block_bytes;
  int halves;
  bool fifth_bit_plane;
  constexpr int quant_bytes() const { return block_bytes - 2 * halves; }
};

template <typename T>
constexpr BlockShape shape_of() {
  return {(T::kHasMin ? 4 : 2) + T::kQuantBytes, T::kHasMin ? 2 : 1, T::kFifthBitPlane};
}

// The plane legacy_quants.h describes, from the four rows' blocks as the file has them (the
// 32-bit mask of fifth bits, then the nibbles). In SIMD, since every Q5 matrix of a model goes
// through here at load: five_bits() puts each value's fifth bit at bit 4 of its byte, and a
// 16-bit shift moves it to its slot's bit (one bit per byte, so nothing crosses bytes).
template <int k>
simd::V bit4_to_slot(simd::V bit4) {
  if constexpr (k < 4) {
    return simd::shr_u16<4 - k>(bit4);
  } else if constexpr (k == 4) {
    return bit4;
  } else {
    return simd::shl_u16<k - 4>(bit4);
  }
}

template <int r>
simd::V plane_bits_of_row(const uint8_t* file_quants) {
  using namespace simd;
  const Quants32 q = five_bits(file_quants);
  const V fifth = splat_i8(0x10);
  return bit_or(bit4_to_slot<2 * r>(bit_and(q.lo, fifth)),
                bit4_to_slot<2 * r + 1>(bit_and(q.hi, fifth)));
}

void write_fifth_bit_plane(const uint8_t* const file_quants[4], uint8_t* plane) {
  using namespace simd;
  store(plane,
        bit_or(bit_or(plane_bits_of_row<0>(file_quants[0]), plane_bits_of_row<1>(file_quants[1])),
               bit_or(plane_bits_of_row<2>(file_quants[2]), plane_bits_of_row<3>(file_quants[3]))));
}

// Row `lane`'s 32-bit mask of fifth bits, back from the plane.
uint32_t read_fifth_bits(const uint8_t* plane, int lane) {
  uint32_t mask = 0;
  for (int i = 0; i < kFifthBitPlaneBytes; ++i) {
    for (int half = 0; half < 2; ++half) {
      mask |= static_cast<uint32_t>((plane[i] >> (2 * lane + half)) & 1) << (16 * half + i);
    }
  }
  return mask;
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

// out[k * out_stride + r] = dot(row r of the group, activation row k) for a legacy type: each row's
// quants unpack once for all tokens; the offset correction and the minimums are the same for the
// four rows of a token, so they apply once to all four lanes.
template <typename T, int N>
void rows4(const uint8_t* g, const uint8_t* x, size_t stride, int64_t n, float* out,
           size_t out_stride) {
  using namespace simd;
  constexpr int kHeader = T::kHasMin ? 16 : 8;
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  for (int64_t b = 0; b < n / 32; ++b, g += kHeader + 4 * T::kQuantBytes) {
    const F dw = halves_to_f32_unscaled(g);
    Quants32 q[4];
    unpack_rows<T>(g + kHeader, q);
    for (int k = 0; k < N; ++k) {
      const auto& y = block_of<typename T::Activations>(x, stride, k, b);
      const V x0 = load(y.qs), x1 = load(y.qs + 16);
      V sums;
      if constexpr (T::kUnsigned) {
        sums = reduce4_i16(dot_unsigned_i16(q[0], x0, x1), dot_unsigned_i16(q[1], x0, x1),
                           dot_unsigned_i16(q[2], x0, x1), dot_unsigned_i16(q[3], x0, x1));
      } else {
        sums = reduce4(T::dot(q[0], x0, x1), T::dot(q[1], x0, x1), T::dot(q[2], x0, x1),
                       T::dot(q[3], x0, x1));
      }
      if constexpr (T::kOffset != 0) sums = sub_i32(sums, splat_i32(T::kOffset * y.sum));
      acc[k] = mul_add_f32(to_f32(sums), mul_f32(dw, splat_f32(y.d * kHalvesUnscale)), acc[k]);
      if constexpr (T::kHasMin) {
        acc[k] =
            mul_add_f32(halves_to_f32_unscaled(g + 8), splat_f32(y.s * kHalvesUnscale), acc[k]);
      }
    }
  }
  for (int k = 0; k < N; ++k) store_f32(out + k * out_stride, acc[k]);
}

template <typename T>
constexpr Rows4Fn rows4_entry = for_groups<rows4<T, 1>, rows4<T, 2>, rows4<T, 3>, rows4<T, 4>>;

// Rewrites every group of four rows in place. The block shape is a constant so that each copy
// compiles to a few loads and stores: a WASM build without bulk memory would otherwise call
// memcpy for every 2-byte scale, which made this most of a model's load time.
template <BlockShape kShape>
void interleave_groups(const Matrix& w, uint8_t* data) {
  constexpr int kQuantBytes = kShape.quant_bytes();
  const int64_t blocks = w.cols / 32;
  rewrite_groups_of_4(w, data, [&](uint8_t* out, const uint8_t* original) {
    const uint8_t* row[4];
    for (int r = 0; r < 4; ++r) row[r] = original + r * w.row_bytes;
    for (int64_t b = 0; b < blocks; ++b) {
      for (int h = 0; h < kShape.halves; ++h) {
        for (int r = 0; r < 4; ++r, out += 2) std::memcpy(out, row[r] + 2 * h, 2);
      }
      const uint8_t* quants[4];
      for (int r = 0; r < 4; ++r) quants[r] = row[r] + 2 * kShape.halves;
      if constexpr (kShape.fifth_bit_plane) {
        write_fifth_bit_plane(quants, out);
        out += kFifthBitPlaneBytes;
        for (int r = 0; r < 4; ++r, out += 16) std::memcpy(out, quants[r] + 4, 16);
      } else {
        for (int r = 0; r < 4; ++r, out += kQuantBytes) std::memcpy(out, quants[r], kQuantBytes);
      }
      for (int r = 0; r < 4; ++r) row[r] += kShape.block_bytes;
    }
  });
}

}  // namespace

Rows4Fn rows4_kernel(TensorType type) {
  switch (type) {
    case TensorType::Q8_0:
      return rows4_entry<Q8_0Quants>;
    case TensorType::Q4_0:
      return rows4_entry<Q4_0Quants>;
    case TensorType::Q5_0:
      return rows4_entry<Q5_0Quants>;
    case TensorType::Q4_1:
      return rows4_entry<Q4_1Quants>;
    case TensorType::Q5_1:
      return rows4_entry<Q5_1Quants>;
    default:
      return rows4_k_kernel(type);
  }
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
    if (shape.fifth_bit_plane) {
      const uint32_t fifth_bits = read_fifth_bits(quants, lane);
      std::memcpy(out + 2 * shape.halves, &fifth_bits, 4);
      std::memcpy(out + 2 * shape.halves + 4, quants + kFifthBitPlaneBytes + lane * 16, 16);
    } else {
      std::memcpy(out + 2 * shape.halves, quants + lane * shape.quant_bytes(), shape.quant_bytes());
    }
  }
  dequantize_row(w.type, row.data(), dst, w.cols);
}

}  // namespace pipit::kernels
