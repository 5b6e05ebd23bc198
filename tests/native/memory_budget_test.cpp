#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "core/error.h"
#include "core/memory.h"
#include "model/model.h"
#include "session/session.h"
#include "test_support.h"

namespace pipit {
namespace {

// Sets a memory budget for one test and removes it afterwards.
class BudgetScope {
 public:
  explicit BudgetScope(uint64_t bytes) { set_memory_budget(bytes); }
  ~BudgetScope() { set_memory_budget(0); }
};

using MemoryBudgetTest = testing::StoriesModelTest;

TEST_F(MemoryBudgetTest, ContextTooLargeFailsBeforeAllocatingAndSaysWhatFits) {
  // stories260K: 5 layers, 4 KV heads of 8 -> 1280 bytes of keys and values per position,
  // plus 4 bytes of attention score for the one worker.
  // In WASM the heap in use counts against the budget (natively nothing does): leave 8 MB free.
  const uint64_t limit = memory_in_use() + (8 << 20);
  BudgetScope budget(limit);
  std::string message;
  try {
    Session session(*model_, 1 << 20, 1);
    FAIL() << "a 1M-token context fit in an 8 MB budget";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kOutOfMemory);
    message = e.what();
  }
  EXPECT_NE(message.find("a context of 1048576 tokens (KV cache and attention 1284.0 MB"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("of the " + megabytes(limit) + " memory limit are free"),
            std::string::npos)
      << message;
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(message, m, std::regex(R"(contextLength \((\d+) tokens fit now\))")))
      << message;
  const int fits = std::stoi(m[1]);
  EXPECT_GT(fits, 5000);
  EXPECT_LT(fits, 6533);  // 8 MB / 1284 bytes: the scratch and a margin take their share

  // The advice holds: that context loads and generates, and the session stays usable.
  Session session(*model_, fits, 1);
  GenerateOptions options;
  options.max_tokens = 4;
  options.sampling.temperature = 0;
  session.begin({}, options);
  int generated = 0;
  while (session.next().finish == FinishReason::kNone) ++generated;
  EXPECT_EQ(generated, 3);
}

TEST_F(MemoryBudgetTest, NoContextFitsSaysToFreeMemory) {
  BudgetScope budget(1024);
  try {
    Session session(*model_, 16, 1);
    FAIL() << "a session fit in 1 KB";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kOutOfMemory);
    EXPECT_NE(std::string(e.what()).find("even a short context does not fit"), std::string::npos)
        << e.what();
  }
}

TEST(MemoryBudget, WithoutBudgetEverythingIsAvailable) {
  set_memory_budget(0);
  EXPECT_EQ(memory_available(), UINT64_MAX);
  EXPECT_NO_THROW(check_memory(uint64_t{1} << 60, "x", "y"));
  EXPECT_EQ(megabytes(3 << 20), "3.0 MB");
}

}  // namespace
}  // namespace pipit
