#include "tokenizer/pretokenize.h"

#include <algorithm>
#include <initializer_list>
#include <string>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace pipit::tokenizer_detail {
namespace {

using unicode::Flag;

// A chunk of code points [.., end) being split; positions at or past `end` are outside it,
// where lookaheads see the end of the text (llama.cpp runs each pattern on each chunk the
// previous one produced, separately).
struct Chunk {
  const uint32_t* cp;
  uint32_t end;

  bool has(uint32_t i, uint8_t flag) const { return i < end && (unicode::flags(cp[i]) & flag); }
  bool letter(uint32_t i) const { return has(i, Flag::kLetter); }
  bool number(uint32_t i) const { return has(i, Flag::kNumber); }
  bool space(uint32_t i) const { return has(i, Flag::kWhitespace); }
  // [^\s\p{L}\p{N}]: anything else, unassigned code points included.
  bool other(uint32_t i) const {
    return i < end &&
           !(unicode::flags(cp[i]) & (Flag::kWhitespace | Flag::kLetter | Flag::kNumber));
  }
  bool line_break(uint32_t i) const { return i < end && (cp[i] == '\r' || cp[i] == '\n'); }
  template <typename Pred>
  uint32_t run(uint32_t i, Pred pred) const {
    while (i < end && pred(i)) ++i;
    return i;
  }
};

// A pattern tried at one position: the length of its match there, 0 for none.
using Matcher = uint32_t (*)(const Chunk&, uint32_t pos);

// The contraction alternatives 's|'t|'re|'ve|'m|'ll|'d; `fold` makes them case-insensitive.
uint32_t contraction(const Chunk& c, uint32_t pos, bool fold) {
  if (c.cp[pos] != '\'' || pos + 1 >= c.end) return 0;
  const auto at = [&](uint32_t i) { return fold ? unicode::to_lower(c.cp[i]) : c.cp[i]; };
  const uint32_t a = at(pos + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (pos + 2 >= c.end) return 0;
  const uint32_t b = at(pos + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// \s+(?!\S) then \s+ over the whitespace run at pos: a run followed by more text leaves its
// last character to start the next word (" word" keeps its space).
uint32_t whitespace(const Chunk& c, uint32_t pos) {
  const uint32_t n = c.run(pos, [&](uint32_t i) { return c.space(i); }) - pos;
  if (n > 1 && pos + n < c.end) return n - 1;
  return n;
}

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
// A lone whitespace character before text matches nothing and is a word by itself.
uint32_t gpt2(const Chunk& c, uint32_t pos) {
  if (const uint32_t n = contraction(c, pos, false)) return n;
  const uint32_t q = pos + (c.cp[pos] == ' ' ? 1 : 0);
  if (c.letter(q)) return c.run(q, [&](uint32_t i) { return c.letter(i); }) - pos;
  if (c.number(q)) return c.run(q, [&](uint32_t i) { return c.number(i); }) - pos;
  if (c.other(q)) return c.run(q, [&](uint32_t i) { return c.other(i); }) - pos;
  return std::max<uint32_t>(whitespace(c, pos), 1);
}

// Llama 3 (cl100k) and Qwen 2, differing in the longest number run:
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+
template <uint32_t kMaxDigits>
uint32_t llama3(const Chunk& c, uint32_t pos) {
  if (const uint32_t n = contraction(c, pos, true)) return n;
  if (!c.line_break(pos) && !c.number(pos) && (c.letter(pos) || c.letter(pos + 1))) {
    return c.run(pos + 1, [&](uint32_t i) { return c.letter(i); }) - pos;
  }
  if (c.number(pos)) {
    return c.run(pos, [&](uint32_t i) { return i - pos < kMaxDigits && c.number(i); }) - pos;
  }
  const uint32_t q = pos + (c.cp[pos] == ' ' ? 1 : 0);
  if (c.other(q)) {
    const uint32_t e = c.run(q, [&](uint32_t i) { return c.other(i); });
    return c.run(e, [&](uint32_t i) { return c.line_break(i); }) - pos;
  }
  // \s*[\r\n]+ reaches the last line break of the whitespace run.
  uint32_t after_break = 0;
  for (uint32_t i = pos; c.space(i); ++i) {
    if (c.line_break(i)) after_break = i + 1;
  }
  if (after_break > 0) return after_break - pos;
  return std::max<uint32_t>(whitespace(c, pos), 1);
}

// [\p{P}$+<=>^~|]+, with ` for Falcon.
template <bool kBacktick>
uint32_t punctuation_run(const Chunk& c, uint32_t pos) {
  const auto in = [&](uint32_t i) {
    const uint32_t ch = c.cp[i];
    return c.has(i, Flag::kPunctuation) || ch == '$' || ch == '+' || ch == '<' || ch == '=' ||
           ch == '>' || ch == '^' || ch == '~' || ch == '|' || (kBacktick && ch == '`');
  };
  return c.run(pos, in) - pos;
}

uint32_t ascii_digit_triple(const Chunk& c, uint32_t pos) {
  const auto digit = [&](uint32_t i) { return i < c.end && c.cp[i] >= '0' && c.cp[i] <= '9'; };
  return digit(pos) && digit(pos + 1) && digit(pos + 2) ? 3 : 0;
}

uint32_t number_run(const Chunk& c, uint32_t pos) {
  return c.run(pos, [&](uint32_t i) { return c.number(i); }) - pos;
}

uint32_t one_number(const Chunk& c, uint32_t pos) {
  return c.number(pos) ? 1 : 0;
}

uint32_t one_line_break(const Chunk& c, uint32_t pos) {
  return c.line_break(pos) ? 1 : 0;
}

struct Range {
  uint32_t first, last;
};

// llama.cpp evaluates patterns written with literal characters by std::wregex over text in
// which every non-ASCII whitespace character was replaced by U+000B, so such characters
// never fall inside these ranges (U+3000 and U+2000-U+200A lie in some of them).
bool in_ranges(const Chunk& c, uint32_t i, std::initializer_list<Range> ranges) {
  if (i >= c.end) return false;
  const uint32_t ch = c.cp[i];
  if (ch >= 0x80 && (unicode::flags(ch) & Flag::kWhitespace)) return false;
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const Range& r) { return ch >= r.first && ch <= r.last; });
}

// DeepSeek LLM's letters: the cased letters of Latin, Greek, Cyrillic, Armenian, Georgian,
// Cherokee, Glagolitic, Coptic, Deseret, Osage, Old Hungarian, Warang Citi and Adlam, as its
// tokenizer.json lists them.
bool deepseek_letter(const Chunk& c, uint32_t i) {
  return in_ranges(
      c, i, {{0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},
             {0xD8, 0xF6},       {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},
             {0x295, 0x2AF},     {0x370, 0x373},     {0x376, 0x377},     {0x37B, 0x37D},
             {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},     {0x38C, 0x38C},
             {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
             {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},
             {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},
             {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},   {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},
             {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
             {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
             {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},
             {0x1FD6, 0x1FDB},   {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
             {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},   {0x2115, 0x2115},
             {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},   {0x2128, 0x2128},
             {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
             {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},
             {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},
             {0xA680, 0xA69B},   {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},
             {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},   {0xFF21, 0xFF3A},
             {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
             {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943}});
}

// DeepSeek LLM's punctuation: ASCII !-/ and :-~ (which takes in the ASCII letters), their
// fullwidth forms, curly quotes and the ideographic space, comma and full stop.
bool deepseek_punctuation(const Chunk& c, uint32_t i) {
  return in_ranges(c, i,
                   {{0x21, 0x2F},
                    {0x3A, 0x7E},
                    {0xFF01, 0xFF0F},
                    {0xFF1A, 0xFF5E},
                    {0x2018, 0x201F},
                    {0x3000, 0x3002}});
}

// [一-龥ࠀ-一가-퟿]: U+0800-U+9FA5 and Hangul U+AC00-U+D7FF.
bool deepseek_cjk(const Chunk& c, uint32_t i) {
  return in_ranges(c, i, {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}});
}

// \s?X+
template <bool (*kClass)(const Chunk&, uint32_t)>
uint32_t space_then_run(const Chunk& c, uint32_t pos) {
  uint32_t q = pos;
  if (c.space(q) && kClass(c, q + 1)) ++q;
  if (!kClass(c, q)) return 0;
  return c.run(q, [&](uint32_t i) { return kClass(c, i); }) - pos;
}

bool category_letter(const Chunk& c, uint32_t i) {
  return c.letter(i);
}
bool category_punctuation(const Chunk& c, uint32_t i) {
  return c.has(i, Flag::kPunctuation);
}

template <bool (*kClass)(const Chunk&, uint32_t)>
uint32_t class_run(const Chunk& c, uint32_t pos) {
  return c.run(pos, [&](uint32_t i) { return kClass(c, i); }) - pos;
}

// One pattern over one chunk [begin, end): every match is a word, and so is every stretch
// between matches (llama.cpp keeps unmatched text rather than dropping it).
void split_chunk(Matcher match, const uint32_t* cps, uint32_t begin, uint32_t end,
                 std::vector<uint32_t>& ends) {
  const Chunk c{cps, end};
  uint32_t last = begin;
  for (uint32_t pos = begin; pos < end;) {
    const uint32_t n = match(c, pos);
    if (n == 0) {
      ++pos;
      continue;
    }
    if (pos > last) ends.push_back(pos);
    pos += n;
    ends.push_back(pos);
    last = pos;
  }
  if (last < end) ends.push_back(end);
}

// \s+$: the whitespace that ends the chunk.
void split_trailing_space(const uint32_t* cps, uint32_t begin, uint32_t end,
                          std::vector<uint32_t>& ends) {
  const Chunk c{cps, end};
  uint32_t start = end;
  while (start > begin && c.space(start - 1)) --start;
  if (start > begin && start < end) ends.push_back(start);
  ends.push_back(end);
}

// A step of a pre-tokenizer: a matcher, or null for the trailing-whitespace rule.
struct Step {
  Matcher match;
};

std::vector<Step> steps_for(PreTokenizer kind) {
  switch (kind) {
    case PreTokenizer::kDefault:
      return {{punctuation_run<false>}, {gpt2}, {number_run}, {ascii_digit_triple}};
    case PreTokenizer::kGpt2:
      return {{gpt2}};
    case PreTokenizer::kLlama3:
      return {{llama3<3>}};
    case PreTokenizer::kQwen2:
      return {{llama3<1>}};
    case PreTokenizer::kStarcoder:
      return {{one_number}, {gpt2}};
    case PreTokenizer::kFalcon:
      return {{punctuation_run<true>}, {gpt2}, {ascii_digit_triple}};
    case PreTokenizer::kDeepseekLlm:
      return {{one_line_break},
              {space_then_run<deepseek_letter>},
              {space_then_run<deepseek_punctuation>},
              {nullptr},
              {class_run<deepseek_cjk>},
              {number_run}};
    case PreTokenizer::kDeepseekCoder:
      return {{one_line_break},
              {space_then_run<category_letter>},
              {space_then_run<category_punctuation>},
              {class_run<deepseek_cjk>},
              {one_number}};
  }
  return {};
}

}  // namespace

PreTokenizerSpec pre_tokenizer_from_name(std::string_view name) {
  const auto is = [&](std::initializer_list<std::string_view> names) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  PreTokenizerSpec spec;
  if (name.empty() || name == "default") {
    spec.kind = PreTokenizer::kDefault;
  } else if (is({"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"})) {
    spec = {PreTokenizer::kLlama3, /*ignore_merges=*/true, /*add_bos=*/true};
  } else if (is({"dbrx", "smaug-bpe"})) {
    spec.kind = PreTokenizer::kLlama3;
  } else if (is({"gpt-2", "mpt", "phi-2", "olmo", "jais", "jina-es", "jina-de", "jina-v2-es",
                 "jina-v2-de", "jina-v1-en", "jina-v2-code", "roberta-bpe", "gigachat"})) {
    spec.kind = PreTokenizer::kGpt2;
  } else if (is({"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"})) {
    spec.kind = PreTokenizer::kQwen2;
  } else if (is({"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
                 "minerva-7b"})) {
    spec.kind = PreTokenizer::kStarcoder;
  } else if (name == "falcon") {
    spec.kind = PreTokenizer::kFalcon;
  } else if (name == "deepseek-llm") {
    spec.kind = PreTokenizer::kDeepseekLlm;
  } else if (name == "deepseek-coder") {
    spec.kind = PreTokenizer::kDeepseekCoder;
  } else {
    fail(ErrorKind::kUnsupported,
         "tokenizer.ggml.pre '" + std::string(name) +
             "' is a pre-tokenizer pipit does not implement; it knows default, gpt-2, llama3 "
             "(llama-bpe), dbrx, qwen2, deepseek-llm, deepseek-coder, falcon, mpt, starcoder, "
             "refact, command-r, smollm and their aliases");
  }
  return spec;
}

void pre_tokenize(PreTokenizer kind, std::span<const uint32_t> cps, std::vector<uint32_t>& ends) {
  if (cps.empty()) return;
  const auto n = static_cast<uint32_t>(cps.size());
  const std::vector<Step> steps = steps_for(kind);
  if (steps.size() == 1) {
    split_chunk(steps[0].match, cps.data(), 0, n, ends);
    return;
  }
  std::vector<uint32_t> chunks{n}, next;
  for (const Step& step : steps) {
    next.clear();
    next.reserve(chunks.size() * 2);
    uint32_t begin = 0;
    for (uint32_t end : chunks) {
      if (step.match != nullptr) {
        split_chunk(step.match, cps.data(), begin, end, next);
      } else {
        split_trailing_space(cps.data(), begin, end, next);
      }
      begin = end;
    }
    chunks.swap(next);
  }
  ends.insert(ends.end(), chunks.begin(), chunks.end());
}

}  // namespace pipit::tokenizer_detail
