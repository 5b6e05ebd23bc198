#include "core/thread_pool.h"

#include <algorithm>

#include "core/error.h"

namespace pipit {
namespace {

// About 50-100 microseconds of polling: longer than the gap between the matmuls of one
// decode step, far shorter than the gap between user requests.
constexpr int kSpinIterations = 20000;

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
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::run(const std::function<void(int, int)>& task) {
  if (workers_.empty()) {
    task(0, 1);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &task;
    pending_.store(static_cast<int>(workers_.size()));
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  task(0, size());
  while (pending_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t now = generation_.load(std::memory_order_acquire);
    for (int spin = 0; now == seen && spin < kSpinIterations; ++spin) {
      now = generation_.load(std::memory_order_acquire);
    }
    if (now == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      now = generation_.load();
    }
    seen = now;
    if (stopping_.load()) return;
    (*task_)(index, size());
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  run([&](int i, int count) {
    const int64_t begin = n * i / count, end = n * (i + 1) / count;
    if (begin < end) body(begin, end);
  });
}

ThreadPool* ThreadPool::current() {
  return g_current;
}

ThreadPool::Scope::Scope(ThreadPool* pool) : previous_(g_current) {
  g_current = pool;
}
ThreadPool::Scope::~Scope() {
  g_current = previous_;
}

}  // namespace pipit
