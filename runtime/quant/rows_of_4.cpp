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

// out[4k + r] = dot(row r of the group, activation row k).
template <int N>
void q8_0_rows4(const uint8_t* g, const uint8_t* x, size_t stride, int64_t n, float* out) {
  using namespace simd;
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  for (int64_t b = 0; b < n / 32; ++b, g += 4 * 34) {
    const F dw = halves_to_f32(widen_low_u16(load64(g)));
    const uint8_t* q = g + 8;
    const V a0 = load(q), a1 = load(q + 16), b0 = load(q + 32), b1 = load(q + 48);
    const V c0 = load(q + 64), c1 = load(q + 80), d0 = load(q + 96), d1 = load(q + 112);
    for (int k = 0; k < N; ++k) {
      const auto& y = block_of<BlockQ8_0>(x, stride, k, b);
      const V x0 = load(y.qs), x1 = load(y.qs + 16);
      const V sums =
          reduce4(add_i32(dot_i8(a0, x0), dot_i8(a1, x1)), add_i32(dot_i8(b0, x0), dot_i8(b1, x1)),
                  add_i32(dot_i8(c0, x0), dot_i8(c1, x1)), add_i32(dot_i8(d0, x0), dot_i8(d1, x1)));
      acc[k] = mul_add_f32(to_f32(sums), mul_f32(dw, splat_f32(y.d)), acc[k]);
    }
  }
  for (int k = 0; k < N; ++k) store_f32(out + 4 * k, acc[k]);
}

template <int N>
void q4_0_rows4(const uint8_t* g, const uint8_t* x, size_t stride, int64_t n, float* out) {
  using namespace simd;
  const V low_nibbles = splat_i8(0x0F), eight = splat_i8(8);
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  for (int64_t b = 0; b < n / 32; ++b, g += 4 * 18) {
    const F dw = halves_to_f32(widen_low_u16(load64(g)));
    const uint8_t* q = g + 8;
    V lo[4], hi[4];
    for (int r = 0; r < 4; ++r) {
      const V packed = load(q + 16 * r);
      lo[r] = sub_i8(bit_and(packed, low_nibbles), eight);
      hi[r] = sub_i8(shr_u8<4>(packed), eight);
    }
    for (int k = 0; k < N; ++k) {
      const auto& y = block_of<BlockQ8_0>(x, stride, k, b);
      const V x0 = load(y.qs), x1 = load(y.qs + 16);
      const V sums = reduce4(add_i32(dot_i8(lo[0], x0), dot_i8(hi[0], x1)),
                             add_i32(dot_i8(lo[1], x0), dot_i8(hi[1], x1)),
                             add_i32(dot_i8(lo[2], x0), dot_i8(hi[2], x1)),
                             add_i32(dot_i8(lo[3], x0), dot_i8(hi[3], x1)));
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

template <int N>
void q5_0_rows4(const uint8_t* g, const uint8_t* x, size_t stride, int64_t n, float* out) {
  using namespace simd;
  const V low_nibbles = splat_i8(0x0F), sixteen = splat_i8(16);
  F acc[N];
  for (auto& a : acc) a = zero_f32();
  for (int64_t b = 0; b < n / 32; ++b, g += 4 * 22) {
    const F dw = halves_to_f32(widen_low_u16(load64(g)));
    const uint8_t* q = g + 8;
    V lo[4], hi[4];
    for (int r = 0; r < 4; ++r, q += 20) {
      uint32_t qh;
      std::memcpy(&qh, q, 4);
      const V packed = load(q + 4);
      lo[r] = sub_i8(bit_or(bit_and(packed, low_nibbles), fifth_bits(qh & 0xFFFF)), sixteen);
      hi[r] = sub_i8(bit_or(shr_u8<4>(packed), fifth_bits(qh >> 16)), sixteen);
    }
    for (int k = 0; k < N; ++k) {
      const auto& y = block_of<BlockQ8_0>(x, stride, k, b);
      const V x0 = load(y.qs), x1 = load(y.qs + 16);
      const V sums = reduce4(add_i32(dot_i8(lo[0], x0), dot_i8(hi[0], x1)),
                             add_i32(dot_i8(lo[1], x0), dot_i8(hi[1], x1)),
                             add_i32(dot_i8(lo[2], x0), dot_i8(hi[2], x1)),
                             add_i32(dot_i8(lo[3], x0), dot_i8(hi[3], x1)));
      acc[k] = mul_add_f32(to_f32(sums), mul_f32(dw, splat_f32(y.d)), acc[k]);
    }
  }
  for (int k = 0; k < N; ++k) store_f32(out + 4 * k, acc[k]);
}

}  // namespace

Rows4Fn rows4_kernel(TensorType type) {
  switch (type) {
    case TensorType::Q8_0:
      return dispatch<q8_0_rows4<1>, q8_0_rows4<2>, q8_0_rows4<3>, q8_0_rows4<4>>;
    case TensorType::Q4_0:
      return dispatch<q4_0_rows4<1>, q4_0_rows4<2>, q4_0_rows4<3>, q4_0_rows4<4>>;
    case TensorType::Q5_0:
      return dispatch<q5_0_rows4<1>, q5_0_rows4<2>, q5_0_rows4<3>, q5_0_rows4<4>>;
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
