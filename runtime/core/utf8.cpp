#include "core/utf8.h"

namespace pipit::utf8 {
namespace {

// Well-formed sequences (Unicode table 3-7): the lead byte fixes the length and the range
// of the second byte; later bytes are always 80..BF.
struct LeadRule {
  int length = 0;  // 0: the byte can never start a character
  uint8_t second_lo = 0x80, second_hi = 0xBF;
};

LeadRule rule_for(uint8_t lead) {
  if (lead < 0x80) return {1};
  if (lead < 0xC2) return {};
  if (lead < 0xE0) return {2};
  if (lead == 0xE0) return {3, 0xA0, 0xBF};
  if (lead == 0xED) return {3, 0x80, 0x9F};  // excludes the UTF-16 surrogates
  if (lead < 0xF0) return {3};
  if (lead == 0xF0) return {4, 0x90, 0xBF};
  if (lead < 0xF4) return {4};
  if (lead == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {};
}

}  // namespace

size_t decode_into(std::string_view bytes, bool final, std::string& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const LeadRule rule = rule_for(p[i]);
    if (rule.length == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    // Count how many bytes of the sequence are present and acceptable.
    size_t good = 1;
    while (good < static_cast<size_t>(rule.length) && i + good < n) {
      const uint8_t b = p[i + good];
      const bool ok =
          good == 1 ? (b >= rule.second_lo && b <= rule.second_hi) : (b >= 0x80 && b <= 0xBF);
      if (!ok) break;
      ++good;
    }
    if (good == static_cast<size_t>(rule.length)) {
      out.append(bytes.substr(i, good));
    } else if (i + good == n && !final) {
      break;  // a valid start that later bytes may finish
    } else {
      out += kReplacement;  // the maximal subpart, however many bytes it spans
    }
    i += good;
  }
  return i;
}

}  // namespace pipit::utf8
