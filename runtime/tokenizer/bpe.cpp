#include "tokenizer/bpe.h"

#include <algorithm>
#include <array>
#include <deque>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace pipit::tokenizer_detail {
namespace {

// GPT-2's byte alphabet: bytes that are printable Latin-1 stand for themselves, the others
// (controls, space, DEL, NBSP, soft hyphen) for U+0100 onwards, in byte order.
std::array<uint32_t, 256> byte_to_codepoint() {
  std::array<uint32_t, 256> map{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    map[b] = printable ? b : next++;
  }
  return map;
}

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(Vocab vocab, PreTokenizerSpec spec, const std::vector<std::string_view>& merges,
               std::string_view model_name)
      : Tokenizer(std::move(vocab)), spec_(spec), splitter_(vocab_, model_name) {
    const std::array<uint32_t, 256> alphabet = byte_to_codepoint();
    for (uint32_t b = 0; b < 256; ++b) {
      unicode::append_utf8(alphabet[b], byte_text_[b]);
      codepoint_byte_[alphabet[b]] = static_cast<uint8_t>(b);
    }
    ids_by_text_.reserve(vocab_.text.size());
    for (TokenId id = 0; id < vocab_.size(); ++id) {
      ids_by_text_[vocab_.text[id]] = id;  // a repeated text means its last id, as in llama.cpp
    }
    for (uint32_t b = 0; b < 256; ++b) {
      const auto it = ids_by_text_.find(byte_text_[b]);
      byte_piece_[b] = it != ids_by_text_.end() ? it->second : kNoPiece;
    }
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const std::string_view m = merges[rank];
      // llama.cpp splits at the first space after the first byte, so a merge may start with one.
      const size_t space = m.find(' ', 1);
      if (space == std::string_view::npos) continue;  // names no pair; llama.cpp ignores it too
      const std::string_view left = m.substr(0, space), right = m.substr(space + 1);
      const int32_t l = intern(left), r = intern(right);
      const int32_t joined = intern(std::string(left) + std::string(right));
      merges_.try_emplace(pair_key(l, r), Merge{static_cast<int32_t>(rank), joined});  // first wins
    }
  }

  std::vector<TokenId> encode(std::string_view text, bool add_bos,
                              bool parse_special) const override {
    std::vector<TokenId> out;
    out.reserve(text.size() / 4 + 2);
    if (add_bos) {
      if (vocab_.bos < 0) {
        fail(ErrorKind::kInvalidArgument, "cannot add BOS: this vocabulary has no BOS token");
      }
      out.push_back(vocab_.bos);
    }
    if (text.size() > std::numeric_limits<uint32_t>::max() / 4) {
      fail(ErrorKind::kInvalidArgument, "text of " + std::to_string(text.size()) +
                                            " bytes is too long to tokenize (the limit is 1 GiB)");
    }
    Scratch s;
    for (const Fragment& f : splitter_.split(text, parse_special)) {
      if (f.token >= 0) {
        out.push_back(f.token);
      } else {
        encode_text(text.substr(f.begin, f.end - f.begin), s, out);
      }
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
        // Undo the byte alphabet. A character outside it (converters sometimes store added
        // tokens that way) stands for its own UTF-8.
        std::vector<uint32_t> cps, offsets;
        std::string clean;
        const bool valid = unicode::decode(t, cps, offsets, clean);
        const std::string_view src = valid ? std::string_view(t) : std::string_view(clean);
        std::string out;
        out.reserve(t.size());
        for (size_t i = 0; i < cps.size(); ++i) {
          const auto it = codepoint_byte_.find(cps[i]);
          if (it != codepoint_byte_.end()) {
            out += static_cast<char>(it->second);
          } else {
            out.append(src.substr(offsets[i], offsets[i + 1] - offsets[i]));
          }
        }
        return out;
      }
      case TokenKind::kUserDefined:
        return t;  // stored as plain text, shown verbatim (as llama.cpp does)
      case TokenKind::kControl:
      case TokenKind::kUnknown:
      case TokenKind::kUnused:
      case TokenKind::kUndefined:
      case TokenKind::kByte:
        return {};  // llama.cpp shows nothing for these in byte-level vocabularies
    }
    return {};
  }

 private:
  static constexpr int32_t kNoPiece = -1;

  struct Merge {
    int32_t rank;
    int32_t joined;  // the piece the pair becomes
  };

  // A piece of a word being merged; `piece` names its text (see intern), kNoPiece when the
  // text is neither a token nor part of any merge.
  struct Symbol {
    int32_t piece;
    int32_t prev, next;
    uint32_t begin, len;  // bytes of the word; len 0 once merged into its left neighbour
  };
  struct Candidate {
    int32_t rank;
    int32_t left, right;
    uint32_t len;  // both sides' bytes when queued: a changed side no longer adds up to it
    int32_t joined;
  };
  struct Worse {
    bool operator()(const Candidate& a, const Candidate& b) const {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
  };

  // Per-call working memory, reused from word to word so that words cost no allocations.
  struct Scratch {
    std::vector<uint32_t> cps, offsets, ends;
    std::string clean, spelled;
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
    // Words repeat (most of English is a few thousand words): their ids, as [begin, end) of
    // `cached_ids`, keyed by the word's bytes in the text being encoded.
    std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> cache;
    std::vector<TokenId> cached_ids;
  };

  static uint64_t pair_key(int32_t left, int32_t right) {
    return static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
  }

  // A number for every text merges can produce: its token id when it is a token, otherwise
  // one past the vocabulary (texts merged on the way to a token, or never forming one).
  int32_t intern(std::string_view text) {
    if (const auto it = ids_by_text_.find(text); it != ids_by_text_.end()) return it->second;
    if (const auto it = extra_pieces_.find(text); it != extra_pieces_.end()) return it->second;
    const auto piece = static_cast<int32_t>(vocab_.size() + extra_texts_.size());
    extra_texts_.emplace_back(text);
    extra_pieces_.emplace(extra_texts_.back(), piece);
    return piece;
  }

  void encode_text(std::string_view text, Scratch& s, std::vector<TokenId>& out) const {
    const bool valid = unicode::decode(text, s.cps, s.offsets, s.clean);
    const std::string_view src = valid ? text : std::string_view(s.clean);
    s.ends.clear();
    pre_tokenize(spec_.kind, s.cps, s.ends);
    uint32_t begin = 0;
    for (uint32_t end : s.ends) {
      const std::string_view word = src.substr(s.offsets[begin], s.offsets[end] - s.offsets[begin]);
      begin = end;
      if (const auto it = s.cache.find(word); it != s.cache.end()) {
        out.insert(out.end(), s.cached_ids.begin() + it->second.first,
                   s.cached_ids.begin() + it->second.second);
        continue;
      }
      const size_t first = out.size();
      encode_word(word, s, out);
      // The cache keys are views of the caller's text, which outlives the whole encode() call.
      // A word of `clean` is not cached: the next fragment with invalid UTF-8 rewrites
      // `clean`, which would leave the key dangling (found by fuzz_tokenizer_bpe).
      if (!valid) continue;
      const auto from = static_cast<uint32_t>(s.cached_ids.size());
      s.cached_ids.insert(s.cached_ids.end(), out.begin() + static_cast<ptrdiff_t>(first),
                          out.end());
      s.cache.emplace(word, std::make_pair(from, static_cast<uint32_t>(s.cached_ids.size())));
    }
  }

  void spell(std::string_view bytes, std::string& out) const {
    for (char c : bytes) out += byte_text_[static_cast<uint8_t>(c)];
  }

  void encode_word(std::string_view word, Scratch& s, std::vector<TokenId>& out) const {
    if (spec_.ignore_merges) {
      s.spelled.clear();
      spell(word, s.spelled);
      if (const auto it = ids_by_text_.find(s.spelled); it != ids_by_text_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    std::vector<Symbol>& symbols = s.symbols;
    symbols.clear();
    const auto n = static_cast<int32_t>(word.size());
    for (int32_t i = 0; i < n; ++i) {
      symbols.push_back({byte_piece_[static_cast<uint8_t>(word[i])], i - 1, i + 1 == n ? -1 : i + 1,
                         static_cast<uint32_t>(i), 1});
    }

    // A heap of candidate pairs, best (lowest rank, then leftmost) on top; stale entries are
    // skipped when they surface. Same order of merges as llama.cpp's queue.
    std::vector<Candidate>& heap = s.heap;
    heap.clear();
    const auto consider = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      const auto it = merges_.find(pair_key(symbols[left].piece, symbols[right].piece));
      if (it == merges_.end()) return;
      heap.push_back({it->second.rank, left, right, symbols[left].len + symbols[right].len,
                      it->second.joined});
      std::push_heap(heap.begin(), heap.end(), Worse{});
    };
    for (int32_t i = 1; i < n; ++i) consider(i - 1, i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), Worse{});
      const Candidate c = heap.back();
      heap.pop_back();
      Symbol& left = symbols[c.left];
      Symbol& right = symbols[c.right];
      if (left.len == 0 || right.len == 0 || left.len + right.len != c.len) continue;
      left.len += right.len;
      left.piece = c.joined;
      right.len = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = c.left;
      consider(left.prev, c.left);
      consider(c.left, left.next);
    }

    for (int32_t i = n == 0 ? -1 : 0; i >= 0; i = symbols[i].next) {
      const Symbol& sym = symbols[i];
      if (sym.piece >= 0 && sym.piece < vocab_.size()) {
        out.push_back(sym.piece);
        continue;
      }
      // Not a token: llama.cpp falls back to the single bytes of the spelled text that are
      // tokens themselves, dropping the rest.
      s.spelled.clear();
      spell(word.substr(sym.begin, sym.len), s.spelled);
      for (char c : s.spelled) {
        const auto it = ids_by_text_.find(std::string_view(&c, 1));
        if (it != ids_by_text_.end()) out.push_back(it->second);
      }
    }
  }

  PreTokenizerSpec spec_;
  SpecialTokenSplitter splitter_;
  std::unordered_map<std::string_view, TokenId> ids_by_text_;  // views into vocab_.text
  std::deque<std::string> extra_texts_;                        // stable addresses for the views
  std::unordered_map<std::string_view, int32_t> extra_pieces_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<std::string, 256> byte_text_;                // each byte spelled in the byte alphabet
  std::array<int32_t, 256> byte_piece_{};                 // and that character's piece
  std::unordered_map<uint32_t, uint8_t> codepoint_byte_;  // the alphabet read backwards
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(const gguf::File& file) {
  const PreTokenizerSpec spec = pre_tokenizer_from_name(file.get_string("tokenizer.ggml.pre", ""));
  // llama.cpp's defaults for byte-level BPE vocabularies that leave these keys out.
  VocabDefaults defaults;
  defaults.bos = 11;
  defaults.eos = 11;
  defaults.unk = -1;
  defaults.add_bos = spec.add_bos;
  defaults.add_eos = false;
  defaults.add_space_prefix = false;
  Vocab vocab = read_vocab(file, defaults);
  const gguf::Value* merges = file.find("tokenizer.ggml.merges");
  if (merges == nullptr) {
    fail(ErrorKind::kFormat,
         "tokenizer.ggml.merges is missing: a byte-level BPE vocabulary (tokenizer.ggml.model "
         "'gpt2') needs its merge list");
  }
  return std::make_unique<BpeTokenizer>(std::move(vocab), spec, merges->as_strings(),
                                        file.get_string("general.name", ""));
}

}  // namespace pipit::tokenizer_detail
