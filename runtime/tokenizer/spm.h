// SentencePiece-style tokenizer (tokenizer.ggml.model == "llama"), matching llama.cpp's:
// spaces become U+2581, a U+2581 is put before text that starts the input or follows a
// special token, and adjacent pieces are merged greedily by the score of the token they
// form. Characters no token covers fall back to <0xNN> byte tokens.
#pragma once

#include <memory>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace pipit::tokenizer_detail {

std::unique_ptr<Tokenizer> make_spm_tokenizer(const gguf::File& file);

}  // namespace pipit::tokenizer_detail
