// Text -> ids -> text through one shared vocab file (PIPIT_FUZZ_VOCAB names it; one target per
// tokenizer kind), and arbitrary id sequences (out-of-range ones included) -> text.
// Invariants checked beyond "no crash": every id encode returns is in the vocabulary, and the
// streaming detokenizer's pieces equal whole-sequence decoding, as tokenizer.h promises.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "fuzz_support.h"
#include "tokenizer/tokenizer.h"

namespace {

const pipit::Tokenizer& tokenizer() {
  static const std::unique_ptr<pipit::Tokenizer> t = pipit::fuzz::load_vocab(PIPIT_FUZZ_VOCAB);
  return *t;
}

void check_streaming(const pipit::Tokenizer& tok, const std::vector<pipit::TokenId>& ids,
                     pipit::TextPosition position) {
  std::string whole;
  try {
    whole = tok.decode(ids, position);
  } catch (const pipit::Error& e) {
    if (e.kind() != pipit::ErrorKind::kInvalidArgument) throw;
    return;  // an id outside the vocabulary: refused, as documented
  }
  pipit::StreamingDetokenizer stream(tok, position);
  std::string pieces;
  for (pipit::TokenId id : ids) pieces += stream.push(id);
  pieces += stream.flush();
  if (pieces != whole) {
    pipit::fuzz::violated("streaming detokenization gave '" + pieces + "' but decode gave '" +
                          whole + "'");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const pipit::Tokenizer& tok = tokenizer();
  const uint8_t flags = data[0];
  const bool add_bos = flags & 1;
  const bool parse_special = flags & 2;
  const auto position =
      (flags & 8) ? pipit::TextPosition::kContinuation : pipit::TextPosition::kStart;
  ++data;
  --size;
  std::vector<pipit::TokenId> ids;
  if (flags & 4) {
    // Ids near the vocabulary (both edges, so -1 and n_vocab come up) or anywhere in int32.
    const int32_t n_vocab = tok.vocab().size();
    for (size_t i = 0; i + 4 <= size; i += 4) {
      int32_t raw;
      std::memcpy(&raw, data + i, 4);
      const bool near = (raw & 0x40000000) == 0;
      ids.push_back(near ? static_cast<int32_t>(static_cast<uint32_t>(raw) % (n_vocab + 8)) - 4
                         : raw);
    }
  } else {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    ids = tok.encode(text, add_bos, parse_special);
    for (pipit::TokenId id : ids) {
      if (id < 0 || id >= tok.vocab().size()) {
        pipit::fuzz::violated("encode returned id " + std::to_string(id) +
                              " outside the vocabulary");
      }
    }
  }
  check_streaming(tok, ids, position);
  return 0;
}
