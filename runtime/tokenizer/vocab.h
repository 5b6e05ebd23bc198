// The parts of tokenizer.ggml.* every tokenizer kind shares: the token table with its
// special ids, and the splitting of input text around special tokens.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace pipit::tokenizer_detail {

// What a tokenizer kind assumes when its GGUF leaves a key out (llama.cpp's defaults).
struct VocabDefaults {
  TokenId bos = -1, eos = -1, unk = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
};

// Reads and validates the token table and special ids; Error(kFormat) names the key at
// fault (array lengths that disagree, ids outside the vocabulary, malformed byte tokens).
Vocab read_vocab(const gguf::File& file, const VocabDefaults& defaults);

// A piece of input: raw text [begin, end) still to be tokenized, or a special token.
struct Fragment {
  TokenId token = -1;  // -1: raw text
  size_t begin = 0, end = 0;
};

// Finds special tokens in input text the way llama.cpp's tokenizer_st_partition does:
// longer tokens first, each splitting every raw fragment at its occurrences, left to right.
class SpecialTokenSplitter {
 public:
  // `model_name` is general.name: llama.cpp keys some whitespace stripping on it.
  SpecialTokenSplitter(const Vocab& vocab, std::string_view model_name);

  std::vector<Fragment> split(std::string_view text, bool parse_special) const;

 private:
  struct Entry {
    TokenId id;
    bool needs_parse_special;  // control and unknown tokens; user-defined ones always match
    bool lstrip, rstrip;       // swallow whitespace before / after the token
  };
  const Vocab* vocab_;
  std::vector<Entry> entries_;  // longest text first
};

}  // namespace pipit::tokenizer_detail
