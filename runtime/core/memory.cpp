#include "core/memory.h"

#include <atomic>
#include <cstdio>
#include <limits>

#include "core/error.h"

#if defined(__wasm__)
#include <malloc.h>
#endif

namespace pipit {
namespace {

std::atomic<uint64_t> g_budget{0};

}  // namespace

void set_memory_budget(uint64_t bytes) {
  g_budget = bytes;
}

uint64_t memory_budget() {
  return g_budget;
}

uint64_t memory_in_use() {
#if defined(__wasm__)
  // The heap only grows: what malloc keeps free inside it can be handed out again.
  const uint64_t heap = static_cast<uint64_t>(__builtin_wasm_memory_size(0)) * 65536;
  const uint64_t free_in_heap = static_cast<uint64_t>(mallinfo().fordblks);
  return heap > free_in_heap ? heap - free_in_heap : 0;
#else
  return 0;
#endif
}

uint64_t memory_available() {
  const uint64_t budget = memory_budget();
  if (budget == 0) return std::numeric_limits<uint64_t>::max();
  const uint64_t used = memory_in_use();
  return budget > used ? budget - used : 0;
}

std::string megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

void check_memory(uint64_t needed, const std::string& what, const std::string& advice) {
  const uint64_t available = memory_available();
  if (needed <= available) return;
  const uint64_t budget = memory_budget();
  fail(ErrorKind::kOutOfMemory, what + " needs " + megabytes(needed) + ", but only " +
                                    megabytes(available) + " of the " + megabytes(budget) +
                                    " memory limit are free (" + megabytes(memory_in_use()) +
                                    " in use); " + advice);
}

}  // namespace pipit
