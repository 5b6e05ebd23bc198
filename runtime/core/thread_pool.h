// A fixed set of worker threads that run one parallel loop at a time. Workers spin briefly
// between loops (a decode step issues hundreds of small ones) and then sleep, so an idle
// engine costs no CPU.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pipit {

class ThreadPool {
 public:
  // n_threads counts the calling thread: 1 means no workers at all. More than 1 in a build
  // without threads is Error(kUnsupported).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // False in a WebAssembly build without pthreads, where only 1 thread is possible.
  static bool threads_available();

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls task(i, size()) once for every i in [0, size()) — i = 0 on the calling thread —
  // and returns when all calls have returned.
  void run(const std::function<void(int, int)>& task);

  // Splits [0, n) into size() contiguous ranges and runs body(begin, end) on each.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& body);

  // The pool the current computation should use (set by a Scope), or null for none.
  static ThreadPool* current();

  // Makes `pool` current on this thread for the lifetime of the scope.
  class Scope {
   public:
    explicit Scope(ThreadPool* pool);
    ~Scope();

   private:
    ThreadPool* previous_;
  };

 private:
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* task_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace pipit
