#include "tokenizer/tokenizer.h"

#include <string>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizer/bpe.h"
#include "tokenizer/spm.h"
#include "tokenizer/wordpiece.h"

namespace pipit {
namespace {

// Tokenizer kinds llama.cpp knows that pipit does not implement yet, described for the
// error message.
std::string describe_unsupported(std::string_view model) {
  if (model == "t5") return "Unigram";
  if (model == "rwkv") return "RWKV";
  if (model == "plamo2") return "PLaMo 2";
  if (model == "no_vocab" || model == "none") return "no vocabulary";
  return "an unknown tokenizer";
}

// Drops the space that add_space_prefix put in front of the text, from the first piece only:
// llama.cpp strips it from the first token even when that token is BOS, whose piece is
// empty, so text decoded after a BOS keeps its leading space.
void strip_prefix_space(std::string& piece) {
  if (!piece.empty() && piece.front() == ' ') piece.erase(0, 1);
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  const std::string_view model = file.require("tokenizer.ggml.model").as_string();
  if (model == "llama") return tokenizer_detail::make_spm_tokenizer(file);
  if (model == "gpt2") return tokenizer_detail::make_bpe_tokenizer(file);
  if (model == "bert") return tokenizer_detail::make_wordpiece_tokenizer(file);
  fail(ErrorKind::kUnsupported, "tokenizer.ggml.model '" + std::string(model) + "' (" +
                                    describe_unsupported(model) +
                                    ") is not supported yet; pipit implements 'llama' "
                                    "(SentencePiece), 'gpt2' (byte-level BPE) and 'bert' "
                                    "(WordPiece)");
}

std::string Tokenizer::decode(std::span<const TokenId> ids, TextPosition position) const {
  std::string bytes;
  bool strip = position == TextPosition::kStart && vocab_.add_space_prefix;
  for (TokenId id : ids) {
    std::string piece = token_bytes(id);
    if (strip) strip_prefix_space(piece);
    strip = false;
    bytes += piece;
  }
  return utf8::sanitize(bytes);
}

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, TextPosition position)
    : tokenizer_(&tokenizer), position_(position) {
  reset();
}

void StreamingDetokenizer::reset() {
  pending_.clear();
  strip_next_space_ = position_ == TextPosition::kStart && tokenizer_->vocab().add_space_prefix;
}

std::string StreamingDetokenizer::push(TokenId id) {
  std::string piece = tokenizer_->token_bytes(id);
  if (strip_next_space_) strip_prefix_space(piece);
  strip_next_space_ = false;
  pending_ += piece;
  std::string out;
  pending_.erase(0, utf8::decode_into(pending_, /*final=*/false, out));
  return out;
}

std::string StreamingDetokenizer::flush() {
  std::string out;
  utf8::decode_into(pending_, /*final=*/true, out);
  pending_.clear();
  return out;
}

}  // namespace pipit
