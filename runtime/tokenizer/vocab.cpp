#include "tokenizer/vocab.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <string>

#include "core/error.h"

namespace pipit {

bool Vocab::is_end_of_generation(TokenId id) const {
  return id >= 0 && std::find(end_of_generation.begin(), end_of_generation.end(), id) !=
                        end_of_generation.end();
}

namespace tokenizer_detail {
namespace {

constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";

[[noreturn]] void format_error(const std::string& message) {
  fail(ErrorKind::kFormat, message);
}

// A special id: absent means the kind's default, -1 (or its unsigned spelling, which
// converters write for "none") means no such token.
TokenId read_special_id(const gguf::File& file, std::string_view key, TokenId fallback,
                        int32_t n_tokens) {
  const gguf::Value* v = file.find(key);
  if (v == nullptr) return fallback < n_tokens ? fallback : -1;
  if (!v->is_integer()) {
    format_error(std::string(key) + " must be an integer, not " + gguf::value_type_name(v->type()));
  }
  const bool is_signed =
      v->type() == gguf::ValueType::kInt8 || v->type() == gguf::ValueType::kInt16 ||
      v->type() == gguf::ValueType::kInt32 || v->type() == gguf::ValueType::kInt64;
  if (is_signed) {
    const int64_t id = v->as_i64();
    if (id == -1) return -1;
    if (id >= 0 && id < n_tokens) return static_cast<TokenId>(id);
    format_error(std::string(key) + " is " + std::to_string(id) + ", outside the vocabulary of " +
                 std::to_string(n_tokens) + " tokens");
  }
  const uint64_t id = v->as_u64();
  if (id == std::numeric_limits<uint32_t>::max() || id == std::numeric_limits<uint64_t>::max()) {
    return -1;
  }
  if (id < static_cast<uint64_t>(n_tokens)) return static_cast<TokenId>(id);
  format_error(std::string(key) + " is " + std::to_string(id) + ", outside the vocabulary of " +
               std::to_string(n_tokens) + " tokens");
}

bool is_byte_token_text(std::string_view s) {
  return s.size() == 6 && s.substr(0, 3) == "<0x" && s[5] == '>' &&
         std::isxdigit(static_cast<unsigned char>(s[3])) &&
         std::isxdigit(static_cast<unsigned char>(s[4]));
}

// End-of-turn markers that llama.cpp recognises by text, since few GGUFs name them in a key.
constexpr std::string_view kEndOfTurnTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>",         "<end_of_turn>",      "<|endoftext|>",
    "<EOT>",      "_<EOT>",     "<|end_of_text|>", "<end_of_utterance>",
};
constexpr std::string_view kEndOfMessageText = "<|eom_id|>";

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

}  // namespace

Vocab read_vocab(const gguf::File& file, const VocabDefaults& defaults) {
  Vocab vocab;
  const std::vector<std::string_view> texts = file.require(kTokensKey).as_strings();
  if (texts.empty()) format_error(std::string(kTokensKey) + " is empty");
  if (texts.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    format_error(std::string(kTokensKey) + " has more tokens than an int32 id can name");
  }
  const auto n = static_cast<int32_t>(texts.size());

  vocab.text.reserve(texts.size());
  for (int32_t i = 0; i < n; ++i) {
    // llama.cpp renames empty tokens so that they stay distinct; decoding shows the name.
    vocab.text.emplace_back(texts[i].empty() ? "[EMPTY_" + std::to_string(i) + "]"
                                             : std::string(texts[i]));
  }

  if (const gguf::Value* v = file.find("tokenizer.ggml.scores")) {
    vocab.scores = v->as_f32s();
    if (vocab.scores.size() != texts.size()) {
      format_error("tokenizer.ggml.scores has " + std::to_string(vocab.scores.size()) +
                   " entries but " + std::string(kTokensKey) + " has " + std::to_string(n));
    }
  } else {
    vocab.scores.assign(texts.size(), 0.0f);
  }

  vocab.kinds.assign(texts.size(), TokenKind::kNormal);
  if (const gguf::Value* v = file.find("tokenizer.ggml.token_type")) {
    const std::vector<int32_t> types = v->as_i32s();
    if (types.size() != texts.size()) {
      format_error("tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                   " entries but " + std::string(kTokensKey) + " has " + std::to_string(n));
    }
    for (int32_t i = 0; i < n; ++i) {
      const int32_t t = types[i];
      // Unknown type numbers act as undefined, which is what llama.cpp makes of them.
      vocab.kinds[i] = t >= 0 && t <= static_cast<int32_t>(TokenKind::kByte)
                           ? static_cast<TokenKind>(t)
                           : TokenKind::kUndefined;
      if (vocab.kinds[i] == TokenKind::kByte && !is_byte_token_text(vocab.text[i])) {
        format_error("tokenizer.ggml.token_type marks token " + std::to_string(i) + " '" +
                     vocab.text[i] + "' as a byte, but its text is not of the form <0xNN>");
      }
    }
  }

  vocab.bos = read_special_id(file, "tokenizer.ggml.bos_token_id", defaults.bos, n);
  vocab.eos = read_special_id(file, "tokenizer.ggml.eos_token_id", defaults.eos, n);
  vocab.unk = read_special_id(file, "tokenizer.ggml.unknown_token_id", defaults.unk, n);
  vocab.pad = read_special_id(file, "tokenizer.ggml.padding_token_id", -1, n);
  vocab.eot = read_special_id(file, "tokenizer.ggml.eot_token_id", -1, n);
  const TokenId eom = read_special_id(file, "tokenizer.ggml.eom_token_id", -1, n);
  vocab.add_bos = file.get_bool("tokenizer.ggml.add_bos_token", defaults.add_bos);
  vocab.add_eos = file.get_bool("tokenizer.ggml.add_eos_token", defaults.add_eos);
  vocab.add_space_prefix =
      file.get_bool("tokenizer.ggml.add_space_prefix", defaults.add_space_prefix);

  // Like llama.cpp, treat end-of-turn markers as control tokens whatever their stored type,
  // so that they end generation and never show up in decoded text.
  for (int32_t i = 0; i < n; ++i) {
    const std::string& t = vocab.text[i];
    const bool end_of_turn = std::find(std::begin(kEndOfTurnTexts), std::end(kEndOfTurnTexts), t) !=
                             std::end(kEndOfTurnTexts);
    if (!end_of_turn && t != kEndOfMessageText) continue;
    vocab.kinds[i] = TokenKind::kControl;
    vocab.end_of_generation.push_back(i);
    if (end_of_turn && vocab.eot < 0) vocab.eot = i;  // lowest id wins, to be deterministic
  }
  for (TokenId id : {vocab.eos, vocab.eot, eom}) {
    if (id >= 0 && !vocab.is_end_of_generation(id)) vocab.end_of_generation.push_back(id);
  }
  std::sort(vocab.end_of_generation.begin(), vocab.end_of_generation.end());
  return vocab;
}

SpecialTokenSplitter::SpecialTokenSplitter(const Vocab& vocab, std::string_view model_name)
    : vocab_(&vocab) {
  std::string name(model_name);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // llama.cpp's Phi-3 rule: whitespace after its chat markers belongs to the marker
  // (HF's rstrip), except after <unk>, <s> and <|endoftext|>.
  const bool phi3 =
      name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos;

  for (TokenId id = 0; id < vocab.size(); ++id) {
    const TokenKind kind = vocab.kinds[id];
    const bool control_like = kind == TokenKind::kControl || kind == TokenKind::kUnknown;
    if (!control_like && kind != TokenKind::kUserDefined) continue;
    const std::string& t = vocab.text[id];
    const bool rstrip = phi3 && t != "<unk>" && t != "<s>" && t != "<|endoftext|>";
    entries_.push_back({id, control_like, /*lstrip=*/false, rstrip});
  }
  std::stable_sort(entries_.begin(), entries_.end(), [&](const Entry& a, const Entry& b) {
    return vocab.text[a.id].size() > vocab.text[b.id].size();
  });
}

std::vector<Fragment> SpecialTokenSplitter::split(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (const Entry& entry : entries_) {
    if (entry.needs_parse_special && !parse_special) continue;
    const std::string_view special = vocab_->text[entry.id];
    next.clear();
    bool found_any = false;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t begin = f.begin;
      while (begin < f.end) {
        const size_t match = text.substr(0, f.end).find(special, begin);
        if (match == std::string_view::npos) break;
        found_any = true;
        size_t left_end = match;
        if (entry.lstrip) {
          while (left_end > begin && is_ascii_space(text[left_end - 1])) --left_end;
        }
        if (left_end > begin) next.push_back({-1, begin, left_end});
        next.push_back({entry.id, match, match + special.size()});
        begin = match + special.size();
        if (entry.rstrip) {
          while (begin < f.end && is_ascii_space(text[begin])) ++begin;
        }
      }
      if (begin < f.end) next.push_back({-1, begin, f.end});
    }
    if (found_any) fragments.swap(next);
  }
  return fragments;
}

}  // namespace tokenizer_detail
}  // namespace pipit
