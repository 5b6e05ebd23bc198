// Pre-tokenizers of byte-level BPE vocabularies: the regex-driven splitting of text into
// words that llama.cpp applies (by tokenizer.ggml.pre) before merging. Each pattern is a
// hand-written matcher over code points and Unicode classes (tokenizer/unicode.h) that
// reproduces what llama.cpp's regex evaluation yields, including its quirks.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace pipit::tokenizer_detail {

enum class PreTokenizer {
  kDefault,        // tokenizer.ggml.pre absent or "default"
  kGpt2,           // GPT-2's pattern alone
  kLlama3,         // cl100k-style: case-insensitive contractions, numbers in runs of 1-3
  kQwen2,          // as kLlama3, numbers one digit at a time
  kStarcoder,      // digits one at a time, then GPT-2's pattern
  kFalcon,         // punctuation runs, GPT-2's pattern, then digit triples
  kDeepseekLlm,    // line breaks, Latin/Greek/Cyrillic... letters, punctuation, CJK, numbers
  kDeepseekCoder,  // line breaks, letters, punctuation, CJK, single digits
};

// What llama.cpp derives from a tokenizer.ggml.pre name.
struct PreTokenizerSpec {
  PreTokenizer kind = PreTokenizer::kDefault;
  bool ignore_merges = false;  // a word that is itself a token is not merged (Llama 3)
  bool add_bos = false;        // the default when tokenizer.ggml.add_bos_token is absent
};

// Error(kUnsupported) for a name llama.cpp does not know or pipit does not implement.
PreTokenizerSpec pre_tokenizer_from_name(std::string_view name);

// Splits code points [0, cps.size()) into words, appending each word's end index to `ends`.
void pre_tokenize(PreTokenizer kind, std::span<const uint32_t> cps, std::vector<uint32_t>& ends);

}  // namespace pipit::tokenizer_detail
