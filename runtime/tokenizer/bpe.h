// Byte-level BPE (tokenizer.ggml.model == "gpt2"), matching llama.cpp's: text is split into
// words by the vocabulary's pre-tokenizer (tokenizer.ggml.pre, see pretokenize.h), each
// word's UTF-8 bytes are spelled with GPT-2's printable byte alphabet, and adjacent pieces
// are merged by the rank of their pair in tokenizer.ggml.merges, lowest rank first.
//
// Decoding gives back exactly the bytes the tokens stand for, so decode(encode(s)) == s for
// all well-formed UTF-8 (malformed bytes were tokenized as U+FFFD, as llama.cpp does). It
// does not apply llama.cpp's clean_spaces pass of llama_detokenize (" ," -> ","): that pass
// changes text the model really produced, and streaming (token_to_piece) skips it there too.
#pragma once

#include <memory>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace pipit::tokenizer_detail {

std::unique_ptr<Tokenizer> make_bpe_tokenizer(const gguf::File& file);

}  // namespace pipit::tokenizer_detail
