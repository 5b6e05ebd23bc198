#include "tokenizer/wordpiece.h"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace pipit::tokenizer_detail {
namespace {

constexpr std::string_view kWordMark = "\xE2\x96\x81";  // U+2581, how converters mark word starts

// The CJK ideograph blocks BERT splits into single characters (the ranges of HF tokenizers'
// BasicTokenizer, including its 0x2B920 for the start of extension E).
bool is_cjk_ideograph(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

class WordPieceTokenizer final : public Tokenizer {
 public:
  WordPieceTokenizer(Vocab vocab, TokenId sep, std::string_view model_name)
      : Tokenizer(std::move(vocab)), sep_(sep), splitter_(vocab_, model_name) {
    ids_by_text_.reserve(vocab_.text.size());
    for (TokenId id = 0; id < vocab_.size(); ++id) {
      const std::string& t = vocab_.text[id];
      ids_by_text_[t] = id;  // a repeated text means its last id, as in llama.cpp
      max_token_bytes_ = std::max(max_token_bytes_, t.size());
    }
  }

  // add_bos wraps the text as BERT expects, in [CLS] (the BOS) ... [SEP].
  std::vector<TokenId> encode(std::string_view text, bool add_bos,
                              bool parse_special) const override {
    std::vector<TokenId> out;
    if (add_bos) {
      if (vocab_.bos < 0) {
        fail(ErrorKind::kInvalidArgument, "cannot add BOS: this vocabulary has no BOS token");
      }
      out.push_back(vocab_.bos);
    }
    std::vector<std::string> words;
    for (const Fragment& f : splitter_.split(text, parse_special)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        continue;
      }
      split_words(text.substr(f.begin, f.end - f.begin), words);
      for (const std::string& w : words) encode_word(w, out);
    }
    if (add_bos && sep_ >= 0) out.push_back(sep_);
    return out;
  }

  std::string token_bytes(TokenId id) const override {
    if (id < 0 || id >= vocab_.size()) {
      fail(ErrorKind::kInvalidArgument, "token id " + std::to_string(id) +
                                            " is outside the vocabulary of " +
                                            std::to_string(vocab_.size()) + " tokens");
    }
    const std::string& t = vocab_.text[id];
    switch (vocab_.kinds[id]) {
      case TokenKind::kNormal: {
        std::string out;
        out.reserve(t.size());
        for (size_t i = 0; i < t.size();) {
          if (t.compare(i, kWordMark.size(), kWordMark) == 0) {
            out += ' ';
            i += kWordMark.size();
          } else {
            out += t[i++];
          }
        }
        return out;
      }
      case TokenKind::kUserDefined:
        return t;
      case TokenKind::kControl:
      case TokenKind::kUnknown:
      case TokenKind::kUnused:
      case TokenKind::kUndefined:
      case TokenKind::kByte:
        return {};
    }
    return {};
  }

 private:
  // BERT's basic tokenization as llama.cpp does it: decompose and lowercase, drop controls
  // and U+FFFD (so malformed UTF-8 vanishes), split at whitespace, and make punctuation,
  // ASCII symbols and CJK ideographs words of their own.
  static void split_words(std::string_view text, std::vector<std::string>& words) {
    words.clear();
    std::vector<uint32_t> cps, offsets;
    std::string clean;
    unicode::decode(text, cps, offsets, clean);
    std::string word;
    const auto finish = [&] {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    };
    for (uint32_t raw : cps) {
      const uint32_t cp = unicode::decomposition_first(raw);
      const uint8_t flags = unicode::flags(cp);
      if (flags & unicode::kWhitespace) {
        finish();
        continue;
      }
      if (cp == 0 || cp == unicode::kReplacementCharacter || (flags & unicode::kControl)) continue;
      const bool alone = (flags & unicode::kPunctuation) ||
                         (cp < 0x7F && (flags & unicode::kSymbol)) || is_cjk_ideograph(cp);
      if (alone) finish();
      unicode::append_utf8(unicode::to_lower(cp), word);
      if (alone) finish();
    }
    finish();
  }

  // Longest match first, left to right; a word with any uncovered part becomes [UNK].
  void encode_word(const std::string& word, std::vector<TokenId>& out) const {
    const std::string marked = std::string(kWordMark) + word;
    const size_t n = marked.size();
    const size_t start = out.size();
    for (size_t i = 0; i < n;) {
      size_t j = std::min(n, i + max_token_bytes_);
      for (; j > i; --j) {
        const auto it = ids_by_text_.find(std::string_view(marked).substr(i, j - i));
        if (it != ids_by_text_.end()) {
          out.push_back(it->second);
          break;
        }
      }
      if (j == i) {
        out.resize(start);
        break;
      }
      i = j;
    }
    if (out.size() == start) {
      if (vocab_.unk < 0) {
        fail(ErrorKind::kFormat, "the word '" + word +
                                     "' has no WordPiece covering and the vocabulary has no "
                                     "unknown token (tokenizer.ggml.unknown_token_id)");
      }
      out.push_back(vocab_.unk);
    }
  }

  TokenId sep_;
  SpecialTokenSplitter splitter_;
  std::unordered_map<std::string_view, TokenId> ids_by_text_;  // views into vocab_.text
  size_t max_token_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> make_wordpiece_tokenizer(const gguf::File& file) {
  // llama.cpp's defaults for BERT vocabularies that leave these keys out.
  VocabDefaults defaults;
  defaults.bos = 101;  // [CLS]
  defaults.eos = -1;
  defaults.unk = 100;  // [UNK]
  defaults.add_bos = true;
  defaults.add_eos = false;
  Vocab vocab = read_vocab(file, defaults);
  // Every word gets the U+2581 mark, the first too, which decoding drops.
  vocab.add_space_prefix = true;
  TokenId sep = -1;
  // The key's spelling ("seperator") is llama.cpp's.
  if (const gguf::Value* v = file.find("tokenizer.ggml.seperator_token_id");
      v != nullptr && v->is_integer()) {
    const uint64_t id = v->as_u64();
    if (id < static_cast<uint64_t>(vocab.size())) sep = static_cast<TokenId>(id);
  } else if (vocab.size() > 102) {
    sep = 102;  // [SEP]
  }
  return std::make_unique<WordPieceTokenizer>(std::move(vocab), sep,
                                              file.get_string("general.name", ""));
}

}  // namespace pipit::tokenizer_detail
