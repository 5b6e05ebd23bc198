// UTF-8 helpers shared by the tokenizers and the detokenizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pipit::utf8 {

// Bytes a character takes judging by its first byte alone, the way llama.cpp splits text
// into characters before merging: continuation and invalid bytes count as 1. Callers clip
// it at the end of their text.
inline size_t sequence_length(uint8_t lead) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[lead >> 4];
}

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Appends `bytes` to `out` as well-formed UTF-8, each maximal ill-formed subpart replaced by
// one U+FFFD (Unicode's "substitution of maximal subparts", as browsers decode). When
// `final` is false, a well-formed but unfinished character at the end is left unconsumed so
// that more bytes can complete it. Returns how many bytes were consumed. Because every
// decision depends only on bytes already seen, feeding a string in pieces gives the same
// text as feeding it whole.
size_t decode_into(std::string_view bytes, bool final, std::string& out);

// The whole of `bytes` made well-formed.
inline std::string sanitize(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  decode_into(bytes, /*final=*/true, out);
  return out;
}

}  // namespace pipit::utf8
