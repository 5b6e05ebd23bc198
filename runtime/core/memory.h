// A budget for the memory pipit allocates, checked before the large allocations (KV cache,
// scratch) so that a model too large for its host fails with a clear OutOfMemory error that
// says how much it needs, instead of a failed allocation half-way (or, in WASM, a heap grown
// to the maximum and left there).
#pragma once

#include <cstdint>
#include <string>

namespace pipit {

// The most memory the process may hold in all, in bytes; 0 = no known limit (natively, by
// default). The WASM engine sets it to its heap's maximum size at start-up.
void set_memory_budget(uint64_t bytes);
uint64_t memory_budget();

// Bytes held now: in WASM, the heap's size minus what malloc holds free for reuse; natively
// 0 (not measured: the budget then bounds each request on its own).
uint64_t memory_in_use();

// Error(kOutOfMemory) when `needed` more bytes do not fit in the budget:
// "<what> needs N MB, but only M MB of the B MB memory budget are free (U MB in use); <advice>"
void check_memory(uint64_t needed, const std::string& what, const std::string& advice);

// Bytes still free in the budget (UINT64_MAX without one).
uint64_t memory_available();

// "12.3 MB"
std::string megabytes(uint64_t bytes);

}  // namespace pipit
