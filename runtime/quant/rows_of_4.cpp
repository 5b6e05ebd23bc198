// Layout::kRowsOf4: four rows decoded in one pass. Per block position the group holds the four
// rows' f16 scales (8 bytes), then each row's quants. A decode step then loads each activation
// block once per four rows, converts four scales with one SIMD operation, and adds the four
// rows' integer sums across lanes so that one multiply-add scales all four.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/f16.h"
#include "quant/activations.h"
#include "quant/kernels.h"
#include "quant/legacy_quants.h"
#include "quant/rows_of_4.h"
#include "quant/simd128.h"

namespace pipit::kernels {
namespace {

struct BlockShape {
  int block_bytes;  // in the file: an f16 scale, then the quants
  int quant_bytes;
};

bool shape_of(TensorType type, BlockShape* shape) {
  switch (type) {
    case TensorType::Q8_0:
      *shape = {34, 32};
      return true;
    case TensorType::Q4_0:
      *shape = {18, 16};
      return true;
    case TensorType::Q5_0:  // the quants: 4 bytes of fifth bits, then 16 of nibbles
      *shape = {22, 20};
      return true;
    default:
      return false;
  }
}

template <typename Block>
const Block& block_of(const uint8_t* x, size_t stride, int k, int64_t b) {
  return reinterpret_cast<const Block*>(x + k * stride)[b];
}

// out[4k + r] = dot(row r of the group, activation row k), for the symmetric legacy types:
// each row's quants (kQuantBytes after the group's four scales) unpack once for all tokens.
template <int kQuantBytes, UnpackFn kUnpack, int N>
void rows4(const uint8_t* g, const uint8_t* x, size_t stride, int64_t n, float* out) {
  using namespace simd;
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  for (int64_t b = 0; b < n / 32; ++b, g += 8 + 4 * kQuantBytes) {
    const F dw = halves_to_f32(widen_low_u16(load64(g)));
    Quants32 q[4];
    for (int r = 0; r < 4; ++r) q[r] = kUnpack(g + 8 + r * kQuantBytes);
    for (int k = 0; k < N; ++k) {
      const auto& y = block_of<BlockQ8_0>(x, stride, k, b);
      const V x0 = load(y.qs), x1 = load(y.qs + 16);
      const V sums = reduce4(add_i32(dot_i8(q[0].lo, x0), dot_i8(q[0].hi, x1)),
                             add_i32(dot_i8(q[1].lo, x0), dot_i8(q[1].hi, x1)),
                             add_i32(dot_i8(q[2].lo, x0), dot_i8(q[2].hi, x1)),
                             add_i32(dot_i8(q[3].lo, x0), dot_i8(q[3].hi, x1)));
      acc[k] = mul_add_f32(to_f32(sums), mul_f32(dw, splat_f32(y.d)), acc[k]);
    }
  }
  for (int k = 0; k < N; ++k) store_f32(out + 4 * k, acc[k]);
}

template <void (*K1)(const uint8_t*, const uint8_t*, size_t, int64_t, float*),
          void (*K2)(const uint8_t*, const uint8_t*, size_t, int64_t, float*),
          void (*K3)(const uint8_t*, const uint8_t*, size_t, int64_t, float*),
          void (*K4)(const uint8_t*, const uint8_t*, size_t, int64_t, float*)>
void dispatch(const uint8_t* g, const uint8_t* x, size_t stride, int count, int64_t n, float* out) {
  switch (count) {
    case 1:
      K1(g, x, stride, n, out);
      return;
    case 2:
      K2(g, x, stride, n, out);
      return;
    case 3:
      K3(g, x, stride, n, out);
      return;
    default:
      K4(g, x, stride, n, out);
      return;
  }
}

template <int kQuantBytes, UnpackFn kUnpack>
constexpr Rows4Fn rows4_entry =
    dispatch<rows4<kQuantBytes, kUnpack, 1>, rows4<kQuantBytes, kUnpack, 2>,
             rows4<kQuantBytes, kUnpack, 3>, rows4<kQuantBytes, kUnpack, 4>>;

}  // namespace

Rows4Fn rows4_kernel(TensorType type) {
  switch (type) {
    case TensorType::Q8_0:
      return rows4_entry<32, unpack_q8_0>;
    case TensorType::Q4_0:
      return rows4_entry<16, unpack_q4_0>;
    case TensorType::Q5_0:
      return rows4_entry<20, unpack_q5_0>;
    default:
      return nullptr;
  }
}

void interleave_rows_of_4(Matrix& w, uint8_t* data) {
  BlockShape shape;
  if (w.layout != Layout::kRows || !shape_of(w.type, &shape) || w.rows % 4 != 0) return;
  const int64_t blocks = w.cols / 32;
  const size_t group_bytes = 4 * w.row_bytes;
  std::vector<uint8_t> original(group_bytes);
  for (int64_t g = 0; g < w.rows / 4; ++g) {
    uint8_t* group = data + g * group_bytes;
    std::memcpy(original.data(), group, group_bytes);
    uint8_t* out = group;
    for (int64_t b = 0; b < blocks; ++b) {
      for (int r = 0; r < 4; ++r) {
        std::memcpy(out + 2 * r, original.data() + r * w.row_bytes + b * shape.block_bytes, 2);
      }
      out += 8;
      for (int r = 0; r < 4; ++r, out += shape.quant_bytes) {
        std::memcpy(out, original.data() + r * w.row_bytes + b * shape.block_bytes + 2,
                    shape.quant_bytes);
      }
    }
  }
  w.layout = Layout::kRowsOf4;
}

void dequantize_matrix_row(const Matrix& w, int64_t r, float* dst) {
  BlockShape shape;
  if (w.layout == Layout::kRows || !shape_of(w.type, &shape)) {
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
    std::memcpy(out, in + 2 * lane, 2);
    std::memcpy(out + 2, in + 8 + lane * shape.quant_bytes, shape.quant_bytes);
  }
  dequantize_row(w.type, row.data(), dst, w.cols);
}

}  // namespace pipit::kernels
