#include "tokenizer/spm.h"

#include <algorithm>
#include <array>
#include <limits>
#include <queue>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "core/utf8.h"
#include "tokenizer/vocab.h"

namespace pipit::tokenizer_detail {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

class SpmTokenizer final : public Tokenizer {
 public:
  SpmTokenizer(Vocab vocab, std::string_view model_name)
      : Tokenizer(std::move(vocab)), splitter_(vocab_, model_name) {
    ids_by_text_.reserve(vocab_.text.size());
    for (TokenId id = 0; id < vocab_.size(); ++id) {
      const std::string& t = vocab_.text[id];
      ids_by_text_[t] = id;  // a repeated text maps to its last id, as in llama.cpp
      max_token_bytes_ = std::max(max_token_bytes_, t.size());
    }
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const std::string byte_text = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
      auto it = ids_by_text_.find(byte_text);
      if (it == ids_by_text_.end()) it = ids_by_text_.find(std::string(1, static_cast<char>(b)));
      byte_tokens_[b] = it != ids_by_text_.end() ? it->second : vocab_.unk;
    }
  }

  std::vector<TokenId> encode(std::string_view text, bool add_bos,
                              bool parse_special) const override {
    std::vector<TokenId> out;
    out.reserve(text.size() / 3 + 2);
    if (add_bos) {
      if (vocab_.bos < 0) {
        fail(ErrorKind::kInvalidArgument, "cannot add BOS: this vocabulary has no BOS token");
      }
      out.push_back(vocab_.bos);
    }
    bool after_special = true;  // the start of the input counts as following a special token
    std::string escaped;
    for (const Fragment& f : splitter_.split(text, parse_special)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        after_special = true;
        continue;
      }
      escaped.clear();
      if (vocab_.add_space_prefix && after_special) escaped += kSpaceMark;
      for (char c : text.substr(f.begin, f.end - f.begin)) {
        if (c == ' ') {
          escaped += kSpaceMark;
        } else {
          escaped += c;
        }
      }
      merge(escaped, out);
      after_special = false;
    }
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
          if (t.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
            out += ' ';
            i += kSpaceMark.size();
          } else {
            out += t[i++];
          }
        }
        return out;
      }
      case TokenKind::kUserDefined:
        return t;  // llama.cpp shows these verbatim
      case TokenKind::kByte:
        return std::string(1, static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16)));
      case TokenKind::kControl:
      case TokenKind::kUnknown:
      case TokenKind::kUnused:
      case TokenKind::kUndefined:
        return {};
    }
    return {};
  }

 private:
  // The greedy merge: start from single UTF-8 characters and repeatedly join the adjacent
  // pair whose joined text is the highest-scoring token (the leftmost pair on a tie), until
  // no pair forms a token. A heap of candidate pairs keeps this O(n log n); a candidate is
  // stale once either side has changed, which its recorded length reveals.
  void merge(std::string_view text, std::vector<TokenId>& out) const {
    // 32-bit fields keep the heap entries small, which is most of the cost on long texts.
    if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
      fail(ErrorKind::kInvalidArgument, "text of " + std::to_string(text.size()) +
                                            " bytes is too long to tokenize (the limit is 2 GiB)");
    }
    struct Symbol {
      int32_t prev, next;
      uint32_t begin, len;  // len 0: merged into its left neighbour
    };
    std::vector<Symbol> symbols;
    symbols.reserve(text.size());
    for (size_t offset = 0; offset < text.size();) {
      const size_t len =
          std::min(utf8::sequence_length(static_cast<uint8_t>(text[offset])), text.size() - offset);
      const auto index = static_cast<int32_t>(symbols.size());
      symbols.push_back({index - 1, offset + len == text.size() ? -1 : index + 1,
                         static_cast<uint32_t>(offset), static_cast<uint32_t>(len)});
      offset += len;
    }

    struct Candidate {
      float score;
      int32_t left, right;
      uint32_t len;
    };
    auto worse = [](const Candidate& a, const Candidate& b) {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    };
    std::vector<Candidate> storage;
    storage.reserve(2 * symbols.size());  // the initial pairs plus about two per merge
    std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> queue(
        worse, std::move(storage));
    auto consider = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      const uint32_t len = symbols[left].len + symbols[right].len;
      if (len > max_token_bytes_) return;
      const auto it = ids_by_text_.find(text.substr(symbols[left].begin, len));
      if (it == ids_by_text_.end()) return;
      queue.push({vocab_.scores[it->second], left, right, len});
    };
    for (size_t i = 1; i < symbols.size(); ++i) {
      consider(static_cast<int32_t>(i) - 1, static_cast<int32_t>(i));
    }

    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Symbol& left = symbols[c.left];
      Symbol& right = symbols[c.right];
      if (left.len == 0 || right.len == 0 || left.len + right.len != c.len) continue;
      left.len += right.len;
      right.len = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = c.left;
      consider(left.prev, c.left);
      consider(c.left, left.next);
    }

    for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
      const std::string_view piece = text.substr(symbols[i].begin, symbols[i].len);
      const auto it = ids_by_text_.find(piece);
      if (it != ids_by_text_.end()) {
        out.push_back(it->second);
        continue;
      }
      for (char byte : piece) {
        const TokenId id = byte_tokens_[static_cast<uint8_t>(byte)];
        if (id < 0) {
          fail(ErrorKind::kFormat,
               "the vocabulary has neither a byte token nor an unknown token for byte " +
                   std::to_string(static_cast<uint8_t>(byte)));
        }
        out.push_back(id);
      }
    }
  }

  SpecialTokenSplitter splitter_;
  std::unordered_map<std::string_view, TokenId> ids_by_text_;  // views into vocab_.text
  size_t max_token_bytes_ = 0;
  std::array<TokenId, 256> byte_tokens_{};  // byte-fallback ids, unk when a byte has none
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(const gguf::File& file) {
  // llama.cpp's defaults for SentencePiece vocabularies that leave these keys out.
  VocabDefaults defaults;
  defaults.bos = 1;
  defaults.eos = 2;
  defaults.unk = 0;
  defaults.add_bos = true;
  defaults.add_eos = false;
  defaults.add_space_prefix = true;
  return std::make_unique<SpmTokenizer>(read_vocab(file, defaults),
                                        file.get_string("general.name", ""));
}

}  // namespace pipit::tokenizer_detail
