#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "session/session.h"
#include "test_support.h"

namespace pipit {
namespace {

#define PIPIT_REQUIRE_THREADS()                                                        \
  do {                                                                                 \
    if (!ThreadPool::threads_available()) GTEST_SKIP() << "this build has no threads"; \
  } while (0)

TEST(ThreadPool, ParallelForVisitsEveryIndexOnceAcrossManyLoops) {
  PIPIT_REQUIRE_THREADS();
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 5, 17, 1000, 4099}) {
      for (int64_t grain : {1, 16}) {
        for (int repeat = 0; repeat < 50; ++repeat) {
          std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
          pool.parallel_for(n, grain, [&](int64_t begin, int64_t end) {
            ASSERT_LT(begin, end);
            for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
          });
          for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " n " << n << " i " << i;
          }
        }
      }
    }
  }
}

// A thread that is busy elsewhere takes less: with the calling thread slowed down, the
// worker does most of the work.
TEST(ThreadPool, ParallelForGivesMoreToTheFasterThread) {
  PIPIT_REQUIRE_THREADS();
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int64_t> by_caller{0}, by_worker{0};
  pool.parallel_for(4000, 1, [&](int64_t begin, int64_t end) {
    if (std::this_thread::get_id() == caller) {
      std::this_thread::sleep_for(std::chrono::microseconds(20 * (end - begin)));
      by_caller.fetch_add(end - begin);
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(2 * (end - begin)));
      by_worker.fetch_add(end - begin);
    }
  });
  EXPECT_EQ(by_caller.load() + by_worker.load(), 4000);
  EXPECT_LT(by_caller.load(), 2000);
}

// Threads split rows and attention heads; each value is still computed by one thread in the
// same order, so the logits are identical, not merely close.
TEST(ThreadPool, ThreadedSessionsGiveIdenticalLogits) {
  PIPIT_REQUIRE_THREADS();
  for (const char* file : {"stories260K/stories260K.gguf", "synthetic/synth-llama-Q4_K_M.gguf"}) {
    const std::string path = testing::model_path(file);
    PIPIT_REQUIRE_FILE(path);
    size_t size = 0;
    OwnedBytes bytes = read_file(path, &size);
    auto model = Model::load(std::move(bytes), size, {});
    Session one(*model, 64, 1), three(*model, 64, 3);
    const std::vector<TokenId> prompt = {1, 403, 407, 261, 378};
    one.eval(prompt);
    three.eval(prompt);
    for (TokenId next : {300, 301, 302}) {
      const auto a = one.logits(), b = three.logits();
      ASSERT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << file;
      one.eval(std::span<const TokenId>(&next, 1));
      three.eval(std::span<const TokenId>(&next, 1));
    }
  }
}

TEST(ThreadPool, WithoutThreadsMoreThanOneIsAClearError) {
  if (ThreadPool::threads_available()) GTEST_SKIP() << "this build has threads";
  try {
    ThreadPool pool(2);
    FAIL() << "a pool of 2 was created without threads";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("threads: 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pipit
