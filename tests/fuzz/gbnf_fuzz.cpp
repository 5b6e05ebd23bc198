// GBNF text from anywhere, then (when it parses) a matcher driven over bytes that follow the
// grammar in the input after a NUL: advance, can_end/done, and a mask over a small vocabulary
// of single bytes and common multi-byte pieces.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "grammar/gbnf.h"
#include "grammar/matcher.h"

namespace {

const pipit::grammar::TokenTrie& trie() {
  static const pipit::grammar::TokenTrie t = [] {
    std::vector<std::string> pieces;
    for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
    for (const char* p : {"", "{\"", "\":", "true", "null", " the", "\xc3\xa9", "\xe2\x82", "12"}) {
      pieces.emplace_back(p);
    }
    return pipit::grammar::TokenTrie(pieces);
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string_view text = input.substr(0, split);
  const std::string_view feed = split == std::string_view::npos ? "" : input.substr(split + 1);
  std::shared_ptr<const pipit::grammar::Grammar> grammar;
  try {
    grammar = std::make_shared<const pipit::grammar::Grammar>(pipit::grammar::parse_gbnf(text));
  } catch (const pipit::Error&) {
    return 0;
  }
  try {
    pipit::grammar::Matcher matcher(grammar);
    std::vector<uint8_t> allowed;
    matcher.mask(trie(), allowed);
    // Feed in pieces of 1..4 bytes, the piece length taken from the byte itself.
    for (size_t i = 0; i < feed.size();) {
      const size_t n = 1 + (static_cast<uint8_t>(feed[i]) & 3);
      const std::string_view piece = feed.substr(i, n);
      const bool accepted = matcher.accepts(piece);
      if (matcher.advance(piece) != accepted) {
        std::abort();  // accepts() and advance() must agree
      }
      (void)matcher.can_end();
      (void)matcher.done();
      i += n;
    }
    matcher.mask(trie(), allowed);
  } catch (const pipit::Error&) {
    // e.g. a grammar whose expansion exceeds the matcher's limits
  }
  return 0;
}
