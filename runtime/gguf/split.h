// Split GGUF sets, as llama.cpp's gguf-split writes them: NAME-00001-of-0000N.gguf ... where
// every part is a complete GGUF file. Part 0 carries all the model's metadata; every part
// carries split.no (its 0-based index), split.count (N) and its own tensors, and part 0 also
// split.tensors.count (the tensors over all parts). File::join_split checks the set and
// presents it as one File whose tensors point into their own part's bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pipit::gguf {

inline constexpr std::string_view kSplitNo = "split.no";
inline constexpr std::string_view kSplitCount = "split.count";
inline constexpr std::string_view kSplitTensorsCount = "split.tensors.count";

// gguf-split's file name of part `index` (0-based) of `count`: PREFIX-00001-of-00003.gguf.
std::string split_path(const std::string& prefix, uint32_t index, uint32_t count);

}  // namespace pipit::gguf
