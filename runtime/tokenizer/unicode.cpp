#include "tokenizer/unicode.h"

#include <algorithm>

namespace pipit::unicode {
namespace {

uint32_t lookup(const uint32_t (*pairs)[2], size_t count, uint32_t cp) {
  const auto* end = pairs + count;
  const auto* it =
      std::lower_bound(pairs, end, cp, [](const uint32_t(&p)[2], uint32_t c) { return p[0] < c; });
  return it != end && (*it)[0] == cp ? (*it)[1] : cp;
}

// Hangul syllables decompose by formula (Unicode chapter 3.12); the leading consonant is first.
constexpr uint32_t kHangulBase = 0xAC00, kHangulCount = 11172, kLeadBase = 0x1100;
constexpr uint32_t kSyllablesPerLead = 21 * 28;

}  // namespace

uint32_t to_lower(uint32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
  return lookup(detail::kLowercase, detail::kLowercaseCount, cp);
}

uint32_t decomposition_first(uint32_t cp) {
  if (cp < 0xC0) return cp;  // nothing below À decomposes
  if (cp >= kHangulBase && cp < kHangulBase + kHangulCount) {
    return kLeadBase + (cp - kHangulBase) / kSyllablesPerLead;
  }
  return lookup(detail::kDecompositionFirst, detail::kDecompositionFirstCount, cp);
}

namespace {

// Length and code point of the well-formed sequence at text[i], or 0 when there is none
// (Unicode's definition: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t sequence_at(std::string_view text, size_t i, uint32_t& cp) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[i + k]); };
  const uint8_t b0 = byte(0);
  const size_t left = text.size() - i;
  const auto cont = [&](size_t k) { return k < left && (byte(k) & 0xC0) == 0x80; };
  if (b0 < 0xC2) return 0;  // ASCII is handled by the caller; 0x80-0xC1 never start one
  if (b0 < 0xE0) {
    if (!cont(1)) return 0;
    cp = (b0 & 0x1Fu) << 6 | (byte(1) & 0x3Fu);
    return 2;
  }
  if (b0 < 0xF0) {
    if (!cont(1) || !cont(2)) return 0;
    cp = (b0 & 0x0Fu) << 12 | (byte(1) & 0x3Fu) << 6 | (byte(2) & 0x3Fu);
    return cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF) ? 3 : 0;
  }
  if (b0 < 0xF5) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    cp = (b0 & 0x07u) << 18 | (byte(1) & 0x3Fu) << 12 | (byte(2) & 0x3Fu) << 6 | (byte(3) & 0x3Fu);
    return cp >= 0x10000 && cp <= kMaxCodepoint ? 4 : 0;
  }
  return 0;
}

}  // namespace

bool decode(std::string_view text, std::vector<uint32_t>& cps, std::vector<uint32_t>& offsets,
            std::string& clean) {
  cps.clear();
  offsets.clear();
  bool valid = true;
  uint32_t out_offset = 0;  // where the character starts in the (possibly cleaned) text
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<uint8_t>(text[i]);
    uint32_t cp = b;
    size_t len = b < 0x80 ? 1 : sequence_at(text, i, cp);
    const bool bad = len == 0;
    if (bad) {
      if (valid) clean.assign(text.substr(0, i));  // everything before was well-formed
      valid = false;
      cp = kReplacementCharacter;
      len = 1;
    }
    cps.push_back(cp);
    offsets.push_back(out_offset);
    if (bad) {
      append_utf8(cp, clean);
      out_offset += 3;
    } else {
      if (!valid) clean.append(text.substr(i, len));
      out_offset += static_cast<uint32_t>(len);
    }
    i += len;
  }
  offsets.push_back(out_offset);
  return valid;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | cp >> 6);
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | cp >> 12);
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | cp >> 18);
    out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace pipit::unicode
