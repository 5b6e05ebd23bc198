// WordPiece (tokenizer.ggml.model == "bert"), matching llama.cpp's: text is lowercased, each
// character reduced to the first code point of its canonical decomposition (accents go),
// split at whitespace, punctuation and CJK ideographs, and every word is covered greedily by
// the longest vocabulary entries, its first piece carrying a U+2581 word mark.
//
// Normalising loses information, so decoding shows the normal form: "Hello, World!" comes
// back as "hello , world !" (words joined by spaces; llama.cpp's clean_spaces would then drop
// the spaces before the punctuation).
#pragma once

#include <memory>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace pipit::tokenizer_detail {

std::unique_ptr<Tokenizer> make_wordpiece_tokenizer(const gguf::File& file);

}  // namespace pipit::tokenizer_detail
