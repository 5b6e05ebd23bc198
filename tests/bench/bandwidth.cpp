// Single-thread streaming read bandwidth: the roof that decoding (which streams every weight
// once per token) can reach. Built with the engine's own flags, so in WASM it runs on the
// same SIMD128 code generation as the kernels; the loop is the engine's style (xsimd,
// several independent accumulators), summing a buffer far larger than any cache.
//   WASM:   Module._pipit_read_bandwidth(megabytes, repeats) -> best GB/s (1e9 bytes/s)
//   native: pipit-bandwidth [megabytes] [repeats] [threads] -> prints {"gbps": ...}
#include <algorithm>
#ifndef __EMSCRIPTEN__
#include <atomic>
#include <barrier>
#include <thread>
#endif
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "bench_export.h"

namespace {

float sum(const float* p, size_t n) {
  using Batch = xsimd::batch<float>;
  constexpr size_t kW = Batch::size;
  Batch a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
  size_t i = 0;
  for (; i + 8 * kW <= n; i += 8 * kW) {
    a0 += Batch::load_aligned(p + i) + Batch::load_aligned(p + i + 4 * kW);
    a1 += Batch::load_aligned(p + i + kW) + Batch::load_aligned(p + i + 5 * kW);
    a2 += Batch::load_aligned(p + i + 2 * kW) + Batch::load_aligned(p + i + 6 * kW);
    a3 += Batch::load_aligned(p + i + 3 * kW) + Batch::load_aligned(p + i + 7 * kW);
  }
  float s = xsimd::hadd((a0 + a1) + (a2 + a3));
  for (; i < n; ++i) s += p[i];
  return s;
}

// Values that no pass can treat as a constant.
void fill(float* p, size_t n) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<float>(i & 1023) * 1e-3f;
}

}  // namespace

// Best of `repeats` passes over `megabytes` MB (the first pass also faults the pages in and
// is not counted). Returns 0 if the buffer cannot be allocated.
PIPIT_EXPORT double pipit_read_bandwidth(int megabytes, int repeats) {
  const size_t n = static_cast<size_t>(megabytes) * (1 << 20) / sizeof(float);
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (!buf) return 0.0;
  fill(buf, n);
  // The sums feed a volatile so the passes cannot be optimised away.
  volatile float sink = sum(buf, n);
  double best = 0.0;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    sink = sink + sum(buf, n);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(n * sizeof(float)) / s / 1e9);
  }
  std::free(buf);
  return best;
}

#ifndef __EMSCRIPTEN__
// The same with `threads` threads, each summing its own slice, all started together: what the
// memory system gives a decode step split over several cores (natively; the WASM engines'
// threads share the same memory).
double read_bandwidth_threads(int megabytes, int repeats, int threads) {
  const size_t n = static_cast<size_t>(megabytes) * (1 << 20) / sizeof(float);
  const size_t slice = n / threads / 64 * 64;
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (!buf) return 0.0;
  std::barrier sync(threads);
  std::vector<double> seconds(repeats);
  std::vector<std::thread> pool;
  std::atomic<float> sink{0.0f};
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      float* mine = buf + t * slice;
      fill(mine, slice);  // each thread's own pages, where it runs
      float local = sum(mine, slice);
      for (int r = 0; r < repeats; ++r) {
        sync.arrive_and_wait();
        const auto start = std::chrono::steady_clock::now();
        local += sum(mine, slice);
        sync.arrive_and_wait();
        if (t == 0) {
          seconds[r] =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
      }
      sink = sink + local;
    });
  }
  for (std::thread& th : pool) th.join();
  std::free(buf);
  const double best = *std::min_element(seconds.begin(), seconds.end());
  return static_cast<double>(slice * threads * sizeof(float)) / best / 1e9;
}

int main(int argc, char** argv) {
  const int megabytes = argc > 1 ? std::atoi(argv[1]) : 256;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  const int threads = argc > 3 ? std::max(1, std::atoi(argv[3])) : 1;
  const double gbps = threads == 1 ? pipit_read_bandwidth(megabytes, repeats)
                                   : read_bandwidth_threads(megabytes, repeats, threads);
  std::printf("{\"gbps\":%.3f,\"megabytes\":%d,\"threads\":%d}\n", gbps, megabytes, threads);
  return 0;
}
#endif
