#include "quant/kernels.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/f16.h"
#include "core/thread_pool.h"
#include "quant/activations.h"
#include "quant/dot.h"
#include "quant/rows_of_4.h"

namespace pipit::kernels {
namespace {

// The input, one token after another, in the form a weight type multiplies with.
struct ConvertedActivations {
  const uint8_t* data = nullptr;
  size_t stride = 0;  // bytes per token
};

template <typename Block, int kValues, void (*kQuantize)(const float*, Block*, int64_t)>
ConvertedActivations quantize_tokens(const float* x, int64_t cols, int n_tokens,
                                     std::vector<uint8_t>& buffer) {
  const size_t stride = static_cast<size_t>(cols / kValues) * sizeof(Block);
  buffer.resize(stride * n_tokens);
  for (int t = 0; t < n_tokens; ++t) {
    kQuantize(x + t * cols, reinterpret_cast<Block*>(buffer.data() + t * stride), cols);
  }
  return {buffer.data(), stride};
}

// `buffer` holds the conversion (when one is needed) for as long as the result is used.
ConvertedActivations convert(ActivationFormat format, const float* x, int64_t cols, int n_tokens,
                             std::vector<uint8_t>& buffer) {
  switch (format) {
    case ActivationFormat::kF32:
      return {reinterpret_cast<const uint8_t*>(x), static_cast<size_t>(cols) * sizeof(float)};
    case ActivationFormat::kF16: {
      const size_t stride = static_cast<size_t>(cols) * sizeof(float);
      buffer.resize(stride * n_tokens);
      auto* h = reinterpret_cast<float*>(buffer.data());
      for (int64_t i = 0; i < cols * n_tokens; ++i) h[i] = f16_to_f32(f32_to_f16(x[i]));
      return {buffer.data(), stride};
    }
    case ActivationFormat::kQ8_0:
      return quantize_tokens<BlockQ8_0, 32, quantize_q8_0>(x, cols, n_tokens, buffer);
    case ActivationFormat::kQ8_1:
      return quantize_tokens<BlockQ8_1, 32, quantize_q8_1>(x, cols, n_tokens, buffer);
    case ActivationFormat::kQ8_K:
      return quantize_tokens<BlockQ8_K, 256, quantize_q8_K>(x, cols, n_tokens, buffer);
  }
  return {};
}

// Rows [begin, end) of w times every token (for Layout::kRowsOf4, begin and end are multiples
// of 4).
void multiply_rows(const Matrix& w, ConvertedActivations act, int n_tokens, float* y, int64_t begin,
                   int64_t end) {
  if (w.layout == Layout::kRowsOf4) {
    const size_t group_bytes = 4 * w.row_bytes;
    rows4_kernel(w.type)(w.data + begin / 4 * group_bytes, group_bytes, (end - begin) / 4, act.data,
                         act.stride, n_tokens, w.cols, y + begin, static_cast<size_t>(w.rows));
    return;
  }
  if (const MultiDotFn multi = simd_multi_dot(w.type)) {
    // Up to four tokens share each unpacked weight block.
    float out[4];
    for (int64_t r = begin; r < end; ++r) {
      for (int t = 0; t < n_tokens; t += 4) {
        const int count = std::min(4, n_tokens - t);
        multi(w.row(r), act.data + t * act.stride, act.stride, count, w.cols, out);
        for (int k = 0; k < count; ++k) y[(t + k) * w.rows + r] = out[k];
      }
    }
    return;
  }
  const DotFn dot = simd_dot(w.type);
  for (int64_t r = begin; r < end; ++r) {
    for (int t = 0; t < n_tokens; ++t)
      y[t * w.rows + r] = dot(w.row(r), act.data + t * act.stride, w.cols);
  }
}

// Threads take rows in units: groups of four for Layout::kRowsOf4, single rows otherwise.
int64_t rows_per_unit(const Matrix& w) {
  return w.layout == Layout::kRowsOf4 ? 4 : 1;
}

// The fewest units a thread takes at a time (64 rows of a four-row matrix): a few microseconds
// of decode work, against a fraction of a microsecond to pass the work counter between cores.
constexpr int64_t kGrainUnits = 16;

}  // namespace

void matmul_shared_input(std::span<const MatmulTarget> targets, const float* x, int n_tokens) {
  if (targets.empty()) return;
  const int64_t cols = targets[0].w->cols;
  constexpr size_t kMaxTargets = 8;
  if (targets.size() > kMaxTargets) {
    fail(ErrorKind::kInternal, "matmul_shared_input: more than 8 matrices on one input");
  }
  for (const MatmulTarget& t : targets) {
    if (t.w->cols != cols) {
      fail(ErrorKind::kInternal, "matmul_shared_input: matrices of one input differ in columns");
    }
  }
  // One conversion per activation format among the targets (at most two in practice: Q8_0
  // for the legacy types, Q8_K for the K-quants).
  constexpr int kFormats = 5;
  thread_local std::array<std::vector<uint8_t>, kFormats> buffers;
  std::array<ConvertedActivations, kFormats> converted{};
  std::array<bool, kFormats> done{};
  std::array<ConvertedActivations, kMaxTargets> acts;
  for (size_t m = 0; m < targets.size(); ++m) {
    const auto format = activation_format(targets[m].w->type);
    const auto f = static_cast<size_t>(format);
    if (!done[f]) {
      converted[f] = convert(format, x, cols, n_tokens, buffers[f]);
      done[f] = true;
    }
    acts[m] = converted[f];
  }
  // The units of all targets, numbered one matrix after another, shared out in one parallel
  // pass: threads meet once for all of them.
  std::array<int64_t, kMaxTargets + 1> first_unit{};
  for (size_t m = 0; m < targets.size(); ++m) {
    first_unit[m + 1] = first_unit[m] + targets[m].w->rows / rows_per_unit(*targets[m].w);
  }
  const auto work = [&](int64_t begin, int64_t end) {
    for (size_t m = 0; m < targets.size(); ++m) {
      const int64_t lo = std::max(begin, first_unit[m]), hi = std::min(end, first_unit[m + 1]);
      if (lo >= hi) continue;
      const Matrix& w = *targets[m].w;
      const int64_t unit = rows_per_unit(w);
      multiply_rows(w, acts[m], n_tokens, targets[m].y, (lo - first_unit[m]) * unit,
                    (hi - first_unit[m]) * unit);
    }
  };
  const int64_t units = first_unit[targets.size()];
  ThreadPool::parallel_for_current(units, kGrainUnits, work);
}

void matmul(const Matrix& w, const float* x, int n_tokens, float* y) {
  const MatmulTarget target{&w, y};
  matmul_shared_input({&target, 1}, x, n_tokens);
}

}  // namespace pipit::kernels
