// pipit-kernel-bench: one thread's decode matmul (one token) per weight type, in nanoseconds
// per 1024 weights, with the weights in cache ("hot": one small matrix multiplied over and
// over) and streamed from memory ("cold": matrices of a real model's size in turn). The gap
// between the two says whether a kernel waits on memory or on its own instructions.
//   WASM:   Module._pipit_kernel_ns(type_id, rows, cols, megabytes) -> ns per 1024 weights
//   native: pipit-kernel-bench [cols] [megabytes]                  -> a table
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "quant/kernels.h"
#include "quant/quantize.h"
#include "quant/types.h"

#include "bench_export.h"

namespace {

using pipit::TensorType;
using pipit::kernels::Matrix;

struct Weights {
  std::vector<uint8_t> bytes;
  Matrix matrix;
};

Weights make_weights(TensorType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  Weights w;
  const auto traits = pipit::type_traits(type);
  const size_t row_bytes = pipit::row_bytes(traits, static_cast<uint64_t>(cols));
  w.bytes.resize(row_bytes * rows);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = normal(rng);
    pipit::quantize_row(type, row.data(), w.bytes.data() + r * row_bytes, cols);
  }
  w.matrix = {type, w.bytes.data(), cols, rows, row_bytes, pipit::kernels::Layout::kRows};
  pipit::kernels::interleave_rows_of_4(w.matrix, w.bytes.data());
  return w;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// Best of several passes over `megabytes` MB of weights (at least one matrix of rows x cols):
// ns per 1024 weights of one token's matmul. Small sizes stay in cache.
PIPIT_EXPORT double pipit_kernel_ns(int type_id, int rows, int cols, int megabytes) {
  const auto type = static_cast<TensorType>(type_id);
  std::mt19937 rng(7);
  const double matrix_bytes =
      static_cast<double>(pipit::row_bytes(pipit::type_traits(type), cols)) * rows;
  const int count = std::max(1, static_cast<int>(megabytes * 1048576.0 / matrix_bytes));
  std::vector<Weights> weights;
  for (int i = 0; i < count; ++i) weights.push_back(make_weights(type, rows, cols, rng));
  std::vector<float> x(cols), y(rows);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : x) v = normal(rng);
  // Enough passes for ~0.2 s per repeat, whatever the size.
  const int passes =
      std::max(1, static_cast<int>(2e8 / (static_cast<double>(rows) * cols * count)));
  double best = 1e30;
  for (int repeat = 0; repeat < 6; ++repeat) {
    const auto start = std::chrono::steady_clock::now();
    for (int p = 0; p < passes; ++p) {
      for (const Weights& w : weights) pipit::kernels::matmul(w.matrix, x.data(), 1, y.data());
    }
    if (repeat > 0) best = std::min(best, seconds_since(start));
  }
  return best * 1e9 / (static_cast<double>(passes) * count * rows * cols / 1024.0);
}

#ifndef __EMSCRIPTEN__
int main(int argc, char** argv) {
  const int cols = argc > 1 ? std::atoi(argv[1]) : 896;
  const int megabytes = argc > 2 ? std::atoi(argv[2]) : 256;
  const TensorType types[] = {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q5_0,
                              TensorType::Q4_K, TensorType::Q6_K};
  std::printf("type   hot ns/1024w  cold ns/1024w  (cols %d, cold %d MB)\n", cols, megabytes);
  for (TensorType type : types) {
    const int k_cols = pipit::type_traits(type).block_elems == 256 ? cols / 256 * 256 : cols;
    const double hot = pipit_kernel_ns(static_cast<int>(type), 1024, k_cols, 0);
    const double cold = pipit_kernel_ns(static_cast<int>(type), 4864, k_cols, megabytes);
    std::printf("%-6s %12.1f %14.1f\n", pipit::type_traits(type).name, hot, cold);
  }
  return 0;
}
#endif
