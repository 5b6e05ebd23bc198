// Text <-> token ids from the GGUF's tokenizer.ggml.* metadata.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"

namespace pipit {

using TokenId = int32_t;

// Token kinds as GGUF's tokenizer.ggml.token_type stores them.
enum class TokenKind : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct Vocab {
  std::vector<std::string> text;  // as stored (SentencePiece uses U+2581 for space)
  std::vector<float> scores;
  std::vector<TokenKind> kinds;
  TokenId bos = -1, eos = -1, eot = -1, unk = -1, pad = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;
  // Every token that ends generation: eos, eot and the end-of-turn markers llama.cpp
  // recognises by their text (<|end|>, <|im_end|>, ...), which GGUFs rarely list in a key.
  std::vector<TokenId> end_of_generation;

  int32_t size() const { return static_cast<int32_t>(text.size()); }
  bool is_end_of_generation(TokenId id) const;
};

// Where a run of ids sits in its text. At the start, the first token's leading space is the
// one add_space_prefix inserted when encoding, and decoding drops it (as llama.cpp's
// llama_detokenize does). A continuation, such as tokens generated after a prompt, keeps it:
// there the space separates the new word from the text already shown.
enum class TextPosition { kStart, kContinuation };

class Tokenizer {
 public:
  // Error(kUnsupported) naming tokenizer.ggml.model when it is not one pipit implements.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
  virtual ~Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  const Vocab& vocab() const { return vocab_; }

  // add_bos: prepend BOS (callers pass vocab().add_bos for the model's default). EOS is
  // never appended: a prompt is text to be continued; callers that want it add it.
  // (WordPiece, for BERT, wraps the text in [CLS] ... [SEP] instead, as llama.cpp does.)
  // parse_special: text of control tokens becomes those tokens. User-defined tokens are
  // matched either way, as llama.cpp does.
  virtual std::vector<TokenId> encode(std::string_view text, bool add_bos,
                                      bool parse_special) const = 0;

  // The bytes this token stands for in generated text (byte tokens give their byte,
  // control tokens give nothing). May be part of a UTF-8 sequence.
  // Error(kInvalidArgument) for an id outside the vocabulary.
  virtual std::string token_bytes(TokenId id) const = 0;

  // Whole-sequence decoding; invalid UTF-8 is replaced by U+FFFD.
  std::string decode(std::span<const TokenId> ids,
                     TextPosition position = TextPosition::kStart) const;

 protected:
  explicit Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
  Vocab vocab_;
};

// Turns a stream of token ids into text pieces that are always whole UTF-8 characters:
// bytes of an unfinished character wait for the next token, and bytes that can never form
// a character come out as U+FFFD at once. The pieces joined, plus flush(), equal
// decode(ids, position) of the same ids.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer,
                                TextPosition position = TextPosition::kStart);
  std::string push(TokenId id);
  std::string flush();  // what is still pending, an unfinished character as U+FFFD
  void reset();         // back to the state the constructor left

 private:
  const Tokenizer* tokenizer_;
  TextPosition position_;
  bool strip_next_space_ = false;
  std::string pending_;
};

}  // namespace pipit
