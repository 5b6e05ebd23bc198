#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace pipit {
namespace {

// Longer than the gap between two tokens of a generation (sampling, detokenizing and handing
// the text to JavaScript), so that workers are awake when the next token's first matmul
// starts; waking a sleeping thread in a browser takes tens to hundreds of microseconds.
constexpr auto kSpinTime = std::chrono::milliseconds(2);

constexpr uint64_t kClosed = uint64_t{1} << 31;
constexpr uint64_t kInside = kClosed - 1;

uint32_t generation_of(uint64_t door) {
  return static_cast<uint32_t>(door >> 32);
}

thread_local ThreadPool* g_current = nullptr;

}  // namespace

bool ThreadPool::threads_available() {
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
  return false;
#else
  return true;
#endif
}

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads > 1 && !threads_available()) {
    fail(ErrorKind::kUnsupported,
         "this build of pipit has no threads; use threads: 1 (threads need the threaded engine, "
         "which browsers allow only on cross-origin isolated pages)");
  }
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_.store(true);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  if (workers_.empty()) {
    body(0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    body_ = &body;
    n_ = n;
    grain_ = std::max<int64_t>(1, grain);
    next_.store(0, std::memory_order_relaxed);
    ++generation_;
    door_.store(uint64_t{generation_} << 32, std::memory_order_release);
  }
  wake_.notify_all();
  claim_and_run();
  // Everything is claimed. Workers that have not come in by now will not; the ones inside are
  // finishing their last range.
  door_.fetch_or(kClosed, std::memory_order_acq_rel);
  while ((door_.load(std::memory_order_acquire) & kInside) != 0) std::this_thread::yield();
}

void ThreadPool::claim_and_run() {
  const int64_t threads = size();
  int64_t begin = next_.load(std::memory_order_relaxed);
  while (begin < n_) {
    const int64_t left = n_ - begin;
    const int64_t take = std::min(left, std::max(grain_, left / (threads + 1)));
    if (next_.compare_exchange_weak(begin, begin + take, std::memory_order_relaxed)) {
      (*body_)(begin, begin + take);
      begin = next_.load(std::memory_order_relaxed);
    }
  }
}

void ThreadPool::worker_loop() {
  uint32_t seen = 0;
  for (;;) {
    uint64_t door = door_.load(std::memory_order_acquire);
    if (generation_of(door) == seen && !stopping_.load(std::memory_order_relaxed)) {
      const auto spin_end = std::chrono::steady_clock::now() + kSpinTime;
      for (int spin = 1; generation_of(door) == seen; ++spin) {
        if (spin % 256 == 0 && (stopping_.load(std::memory_order_relaxed) ||
                                std::chrono::steady_clock::now() > spin_end)) {
          break;
        }
        door = door_.load(std::memory_order_acquire);
      }
    }
    if (generation_of(door) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_.load() || generation_of(door_.load()) != seen; });
      door = door_.load(std::memory_order_acquire);
    }
    if (stopping_.load()) return;
    seen = generation_of(door);
    // Come in unless the door has closed (or a newer loop has opened, which the next turn
    // of this loop takes up).
    while ((door & kClosed) == 0 && generation_of(door) == seen) {
      if (door_.compare_exchange_weak(door, door + 1, std::memory_order_acq_rel)) {
        claim_and_run();
        door_.fetch_sub(1, std::memory_order_release);
        break;
      }
    }
  }
}

ThreadPool* ThreadPool::current() {
  return g_current;
}

void ThreadPool::parallel_for_current(int64_t n, int64_t grain,
                                      const std::function<void(int64_t, int64_t)>& body) {
  if (ThreadPool* pool = current()) {
    pool->parallel_for(n, grain, body);
  } else if (n > 0) {
    body(0, n);
  }
}

ThreadPool::Scope::Scope(ThreadPool* pool) : previous_(g_current) {
  g_current = pool;
}
ThreadPool::Scope::~Scope() {
  g_current = previous_;
}

}  // namespace pipit
