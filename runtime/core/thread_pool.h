// A fixed set of worker threads that run one parallel loop at a time. Workers spin briefly
// between loops (a decode step issues a hundred small ones, and the gap between two tokens is
// short) and then sleep, so an idle engine costs no CPU.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
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

  // Runs body on ranges that together cover [0, n) exactly once, and returns when all have
  // returned. Threads claim ranges as they come, each a share of what is left (at least
  // `grain`, unless less is left), so one that starts late or runs slower takes less and all
  // finish together. A worker still waking up when the calling thread has claimed the last
  // range takes no part: the caller waits only for ranges already claimed, never for a wake-up.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

  // The pool the current computation should use (set by a Scope), or null for none.
  static ThreadPool* current();

  // parallel_for on the current pool, or body(0, n) on this thread when there is none.
  static void parallel_for_current(int64_t n, int64_t grain,
                                   const std::function<void(int64_t, int64_t)>& body);

  // Makes `pool` current on this thread for the lifetime of the scope.
  class Scope {
   public:
    explicit Scope(ThreadPool* pool);
    ~Scope();

   private:
    ThreadPool* previous_;
  };

 private:
  void worker_loop();
  void claim_and_run();

  std::vector<std::thread> workers_;

  // The loop being run. Written by the calling thread before it opens the door, read by
  // workers only after they enter.
  const std::function<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t n_ = 0;
  int64_t grain_ = 1;
  std::atomic<int64_t> next_{0};  // the first unclaimed index

  // The door to the current loop: its generation (high 32 bits), whether it is closed (bit
  // 31), and how many workers are inside (the low bits).
  std::atomic<uint64_t> door_{0};
  uint32_t generation_ = 0;

  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace pipit
