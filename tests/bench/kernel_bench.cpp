// pipit-kernel-bench: one thread's decode matmul (one token) per weight type, in nanoseconds
// per 1024 weights, with the weights in cache ("hot": one small matrix multiplied over and
// over) and streamed from memory ("cold": matrices of a real model's size in turn). The gap
// between the two says whether a kernel waits on memory or on its own instructions. The same
// for one token's attention over the KV cache, in nanoseconds per query head and key.
//   WASM:   Module._pipit_kernel_ns(type_id, rows, cols, megabytes) -> ns per 1024 weights
//           Module._pipit_attention_ns(n_head, n_head_kv, head_dim, n_layer, positions,
//                                      stream_megabytes)  -> ns per query head and key
//   native: pipit-kernel-bench [cols] [megabytes]                  -> two tables
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "model/blocks.h"
#include "model/kv_cache.h"
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

// One token's attention at position `positions` in every layer of a cache of n_layer layers,
// best of several passes: ns per query head and key. Between two layers the loop reads
// `stream_megabytes` MB of other memory, as a decode step reads a layer's weights there, so
// each layer's keys and values come from memory as in a model. With 0, every step attends
// layer 0, whose keys and values then stay in cache.
PIPIT_EXPORT double pipit_attention_ns(int n_head, int n_head_kv, int head_dim, int n_layer,
                                       int positions, int stream_megabytes) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int kv_dim = n_head_kv * head_dim;
  pipit::KvCache kv(n_layer, positions + 1, n_head_kv, head_dim);
  std::vector<float> k(static_cast<size_t>(positions + 1) * kv_dim), v(k.size());
  for (int layer = 0; layer < n_layer; ++layer) {
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    pipit::blocks::store_kv(kv, layer, 0, positions + 1, k.data(), v.data());
  }
  std::vector<float> q(static_cast<size_t>(n_head) * head_dim), out(q.size());
  for (float& x : q) x = normal(rng);
  const pipit::blocks::Attention attention{.n_head = n_head,
                                           .n_head_kv = n_head_kv,
                                           .head_dim = head_dim,
                                           .scale = 1.0f / std::sqrt(static_cast<float>(head_dim))};
  // The streamed reads are timed on their own and taken off: what is left is attention's.
  const size_t per_layer = static_cast<size_t>(stream_megabytes) * 131072;  // uint64s in a MB
  std::vector<uint64_t> other(per_layer * n_layer);
  volatile uint64_t sink = 0;
  const auto pass = [&](bool attend) {
    const auto start = std::chrono::steady_clock::now();
    for (int layer = 0; layer < n_layer; ++layer) {
      uint64_t sum = 0;
      for (size_t i = layer * per_layer; i < (layer + 1) * per_layer; i += 8) sum += other[i];
      sink = sink + sum;
      if (attend) {
        pipit::blocks::causal_attention(attention, kv, stream_megabytes > 0 ? layer : 0, 1,
                                        positions, q.data(), out.data());
      }
    }
    return seconds_since(start);
  };
  const int passes = 20;
  double best = 1e30;
  for (int repeat = 0; repeat < 6; ++repeat) {
    double with = 0, without = 0;
    for (int p = 0; p < passes; ++p) {
      with += pass(true);
      without += pass(false);
    }
    if (repeat > 0) best = std::min(best, with - without);
  }
  return best * 1e9 / (static_cast<double>(passes) * n_layer * n_head * (positions + 1));
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
  struct Shape {
    const char* name;
    int n_head, n_head_kv, n_layer;
  };
  const Shape shapes[] = {{"smol", 9, 3, 30}, {"qwen", 14, 2, 24}};
  std::printf("\nattention  positions  hot ns/head/key  cold ns/head/key  (head size 64)\n");
  for (const Shape& s : shapes) {
    for (int positions : {160, 1024}) {
      const double hot = pipit_attention_ns(s.n_head, s.n_head_kv, 64, s.n_layer, positions, 0);
      const double cold = pipit_attention_ns(s.n_head, s.n_head_kv, 64, s.n_layer, positions, 2);
      std::printf("%-10s %9d %16.2f %17.2f\n", s.name, positions, hot, cold);
    }
  }
  return 0;
}
#endif
