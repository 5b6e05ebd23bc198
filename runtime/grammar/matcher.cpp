#include "grammar/matcher.h"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "core/error.h"

namespace pipit::grammar {
namespace {

// Past this many frames the arena is rebuilt around the live stacks, bounding the memory a
// long generation with deep or varied nesting can hold.
constexpr size_t kArenaLimit = size_t{1} << 20;
// Walk states cached with their 1 KB transition tables: at most 16 MB.
constexpr size_t kStateLimit = size_t{1} << 14;
// The most parses of the text so far that may be alive at once. An ambiguous grammar can
// double them with every character (`a ::= "(" a* a* ")"` after a run of "("), and each
// step costs what they number: past this bound the grammar is refused rather than let a
// step take seconds and the memory grow without end. Grammars written for output formats
// (JSON schemas, lists, choices) keep a few dozen.
constexpr size_t kParseLimit = size_t{1} << 12;

void sort_unique(std::vector<uint32_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

TokenTrie::TokenTrie(const std::vector<std::string>& token_bytes)
    : n_tokens_(static_cast<int32_t>(token_bytes.size())) {
  std::vector<int32_t> order;
  for (size_t i = 0; i < token_bytes.size(); ++i) {
    if (!token_bytes[i].empty()) order.push_back(static_cast<int32_t>(i));
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return token_bytes[static_cast<size_t>(a)] < token_bytes[static_cast<size_t>(b)];
  });
  // Built from sorted strings: children arrive in byte order, each node's subtree contiguous.
  struct Building {
    std::vector<std::pair<uint8_t, uint32_t>> children;
    std::vector<int32_t> tokens;
  };
  std::vector<Building> b(1);
  for (int32_t id : order) {
    uint32_t node = 0;
    for (char c : token_bytes[static_cast<size_t>(id)]) {
      const auto byte = static_cast<uint8_t>(c);
      auto& kids = b[node].children;
      if (kids.empty() || kids.back().first != byte) {
        kids.push_back({byte, static_cast<uint32_t>(b.size())});
        b.emplace_back();
      }
      node = b[node].children.back().second;
    }
    b[node].tokens.push_back(id);
  }
  nodes_.resize(b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    nodes_[i].first_child = static_cast<uint32_t>(edges_.size());
    nodes_[i].n_children = static_cast<uint32_t>(b[i].children.size());
    for (const auto& [byte, child] : b[i].children) edges_.push_back({byte, child});
    nodes_[i].first_token = static_cast<uint32_t>(tokens_.size());
    nodes_[i].n_tokens = static_cast<uint32_t>(b[i].tokens.size());
    tokens_.insert(tokens_.end(), b[i].tokens.begin(), b[i].tokens.end());
  }
  // Nodes are numbered in depth-first order (parents first, each subtree a contiguous run of
  // numbers), so one pass forwards decodes every path as UTF-8 and one pass backwards gathers
  // what lies below each node.
  std::vector<Matcher::Partial> decoded(nodes_.size());
  std::vector<uint8_t> valid(nodes_.size(), 0), valid_below(nodes_.size(), 1);
  valid[0] = 1;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    for (uint32_t e = nodes_[i].first_child; e < nodes_[i].first_child + nodes_[i].n_children;
         ++e) {
      const uint32_t child = edges_[e].node;
      if (!valid[i]) continue;
      Matcher::Partial partial = decoded[i];
      uint32_t cp = 0;
      valid[child] = Matcher::feed(partial, edges_[e].byte, cp) != Matcher::Step::kInvalid;
      decoded[child] = partial;
    }
  }
  std::vector<Below> below_all(nodes_.size());
  for (size_t i = nodes_.size(); i-- > 0;) {
    Node& n = nodes_[i];
    Below& below = below_all[i];
    n.end_token = n.first_token + n.n_tokens;
    for (uint32_t e = n.first_child; e < n.first_child + n.n_children; ++e) {
      const uint32_t child = edges_[e].node;
      const uint8_t byte = edges_[e].byte;
      n.end_token = std::max(n.end_token, nodes_[child].end_token);
      if (byte < 128) {
        below.ascii[byte >> 6] |= uint64_t{1} << (byte & 63);
      } else {
        below.non_ascii = true;
      }
      below.ascii[0] |= below_all[child].ascii[0];
      below.ascii[1] |= below_all[child].ascii[1];
      below.non_ascii = below.non_ascii || below_all[child].non_ascii;
      valid_below[i] = valid_below[i] && valid[child] && valid_below[child];
    }
    below.plain = valid[i] && decoded[i].remaining == 0 && valid_below[i];
  }
  std::map<std::tuple<uint64_t, uint64_t, bool, bool>, uint32_t> set_ids;
  below_of_.resize(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Below& b = below_all[i];
    const auto [it, added] = set_ids.try_emplace({b.ascii[0], b.ascii[1], b.non_ascii, b.plain},
                                                 static_cast<uint32_t>(below_sets_.size()));
    if (added) below_sets_.push_back(b);
    below_of_[i] = it->second;
  }
}

Matcher::Matcher(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) {
  for (uint32_t alt : grammar_->alternatives[grammar_->root]) leaves(frame(alt, kAccept), set_);
  sort_unique(set_);
}

Matcher::Step Matcher::feed(Partial& p, uint8_t b, uint32_t& cp) {
  if (p.remaining == 0) {
    if (b < 0x80) {
      cp = b;
      return Step::kComplete;
    }
    p.next_lo = 0x80;
    p.next_hi = 0xBF;
    if (b < 0xC2) return Step::kInvalid;
    if (b < 0xE0) {
      p.bits = b & 0x1Fu;
      p.remaining = 1;
    } else if (b < 0xF0) {
      p.bits = b & 0x0Fu;
      p.remaining = 2;
      if (b == 0xE0) p.next_lo = 0xA0;  // no overlong forms
      if (b == 0xED) p.next_hi = 0x9F;  // no UTF-16 surrogates
    } else if (b < 0xF5) {
      p.bits = b & 0x07u;
      p.remaining = 3;
      if (b == 0xF0) p.next_lo = 0x90;
      if (b == 0xF4) p.next_hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return Step::kInvalid;
    }
    return Step::kPending;
  }
  if (b < p.next_lo || b > p.next_hi) return Step::kInvalid;
  p.bits = (p.bits << 6) | (b & 0x3Fu);
  p.next_lo = 0x80;
  p.next_hi = 0xBF;
  if (--p.remaining > 0) return Step::kPending;
  cp = p.bits;
  return Step::kComplete;
}

uint32_t Matcher::frame(uint32_t pos, uint32_t parent) {
  if (grammar_->elements[pos].type == ElementType::kEnd) return parent;
  const uint64_t key = (uint64_t{pos} << 32) | parent;
  const auto [it, inserted] = interned_.try_emplace(key, static_cast<uint32_t>(nodes_.size()));
  if (inserted) nodes_.push_back({pos, parent});
  return it->second;
}

void Matcher::leaves(uint32_t f, std::vector<uint32_t>& out) {
  if (f == kAccept) {
    out.push_back(kAccept);
    return;
  }
  const Element e = grammar_->elements[nodes_[f].pos];
  if (e.type == ElementType::kChar) {
    out.push_back(f);
    return;
  }
  if (nodes_[f].cache_begin < 0) {
    if (nodes_[f].busy) {
      fail(ErrorKind::kInternal, "grammar rule '" + grammar_->rule_names[e.value] +
                                     "' expands into itself without consuming a character");
    }
    nodes_[f].busy = true;
    std::vector<uint32_t> found;
    const uint32_t ret = frame(nodes_[f].pos + 1, nodes_[f].parent);
    for (uint32_t alt : grammar_->alternatives[e.value]) leaves(frame(alt, ret), found);
    sort_unique(found);
    nodes_[f].busy = false;
    nodes_[f].cache_begin = static_cast<int32_t>(pool_.size());
    nodes_[f].cache_size = static_cast<uint32_t>(found.size());
    pool_.insert(pool_.end(), found.begin(), found.end());
  }
  const auto begin = pool_.begin() + nodes_[f].cache_begin;
  out.insert(out.end(), begin, begin + nodes_[f].cache_size);
}

void Matcher::successors(uint32_t leaf, std::vector<uint32_t>& out) {
  if (nodes_[leaf].cache_begin < 0) {
    std::vector<uint32_t> found;
    leaves(frame(nodes_[leaf].pos + 1, nodes_[leaf].parent), found);
    nodes_[leaf].cache_begin = static_cast<int32_t>(pool_.size());
    nodes_[leaf].cache_size = static_cast<uint32_t>(found.size());
    pool_.insert(pool_.end(), found.begin(), found.end());
  }
  const auto begin = pool_.begin() + nodes_[leaf].cache_begin;
  out.insert(out.end(), begin, begin + nodes_[leaf].cache_size);
}

bool Matcher::step(const std::vector<uint32_t>& set, const Partial& partial, uint8_t byte,
                   std::vector<uint32_t>& out, Partial& out_partial) {
  out.clear();
  out_partial = partial;
  uint32_t cp = 0;
  switch (feed(out_partial, byte, cp)) {
    case Step::kInvalid:
      return false;
    case Step::kPending: {
      // The code points the pending bytes can still become: the next byte's range, then
      // any continuation bytes.
      const unsigned rest = 6u * (out_partial.remaining - 1u);
      const uint32_t base = out_partial.bits << (rest + 6u);
      const uint32_t lo = base | (uint32_t{out_partial.next_lo & 0x3Fu} << rest);
      const uint32_t hi =
          base | (uint32_t{out_partial.next_hi & 0x3Fu} << rest) | ((1u << rest) - 1u);
      for (uint32_t leaf : set) {
        if (leaf == kAccept) continue;
        const Element e = grammar_->elements[nodes_[leaf].pos];
        if (grammar_->classes[e.value].matches_any(lo, hi)) out.push_back(leaf);
      }
      return !out.empty();
    }
    case Step::kComplete:
      break;
  }
  size_t contributors = 0;
  for (uint32_t leaf : set) {
    if (leaf == kAccept) continue;
    const Element e = grammar_->elements[nodes_[leaf].pos];
    if (grammar_->classes[e.value].matches(cp)) {
      successors(leaf, out);
      ++contributors;
    }
  }
  if (contributors > 1) sort_unique(out);
  if (out.size() > kParseLimit) {
    fail(ErrorKind::kInvalidArgument,
         "the grammar is too ambiguous: more than " + std::to_string(kParseLimit) +
             " ways to parse the text so far (for example repetitions inside repetitions that "
             "can split the same text many ways); write it so that the text decides the parse");
  }
  return !out.empty();
}

bool Matcher::can_end() const {
  return partial_.remaining == 0 && !set_.empty() && set_.back() == kAccept;
}

bool Matcher::done() const {
  return can_end() && set_.size() == 1;
}

bool Matcher::accepts(std::string_view bytes) {
  std::vector<uint32_t> a = set_, b;
  Partial pa = partial_, pb;
  for (char c : bytes) {
    if (!step(a, pa, static_cast<uint8_t>(c), b, pb)) return false;
    std::swap(a, b);
    pa = pb;
  }
  return true;
}

bool Matcher::advance(std::string_view bytes) {
  compact();
  std::vector<uint32_t> a = set_, b;
  Partial pa = partial_, pb;
  for (char c : bytes) {
    if (!step(a, pa, static_cast<uint8_t>(c), b, pb)) return false;
    std::swap(a, b);
    pa = pb;
  }
  set_ = std::move(a);
  partial_ = pa;
  return true;
}

void Matcher::mask(const TokenTrie& trie, std::vector<uint8_t>& allowed) {
  compact();
  allowed.assign(static_cast<size_t>(trie.n_tokens()), 0);
  walk(trie, 0, state_of(set_, partial_), allowed);
}

int32_t Matcher::state_of(const std::vector<uint32_t>& set, const Partial& partial) {
  std::string key(reinterpret_cast<const char*>(set.data()), set.size() * sizeof(uint32_t));
  key += std::string(reinterpret_cast<const char*>(&partial.bits), sizeof partial.bits);
  key += static_cast<char>(partial.remaining);
  key += static_cast<char>(partial.next_lo);
  key += static_cast<char>(partial.next_hi);
  const auto [it, inserted] = state_ids_.try_emplace(key, static_cast<int32_t>(states_.size()));
  if (inserted) {
    states_.push_back({set, partial});
    transitions_.resize(transitions_.size() + 256, kUnknown);
  }
  return it->second;
}

int32_t Matcher::transition(int32_t state, uint8_t byte) {
  int32_t& cached = transitions_[static_cast<size_t>(state) * 256 + byte];
  if (cached != kUnknown) return cached;
  Partial next_partial;
  const bool alive =
      step(states_[static_cast<size_t>(state)].set, states_[static_cast<size_t>(state)].partial,
           byte, scratch_, next_partial);
  // state_of may grow transitions_: store through a fresh index, not the reference.
  const int32_t next = alive ? state_of(scratch_, next_partial) : -1;
  transitions_[static_cast<size_t>(state) * 256 + byte] = next;
  return next;
}

void Matcher::walk(const TokenTrie& trie, uint32_t node, int32_t state,
                   std::vector<uint8_t>& allowed) {
  const TokenTrie::Node& n = trie.nodes_[node];
  for (uint32_t i = n.first_child; i < n.first_child + n.n_children; ++i) {
    const TokenTrie::Edge edge = trie.edges_[i];
    const int32_t next = transition(state, edge.byte);
    if (next < 0) continue;  // no token below this prefix can follow
    const TokenTrie::Node& child = trie.nodes_[edge.node];
    const bool whole =
        child.n_children > 0 && loops_over(next, trie.below_sets_[trie.below_of_[edge.node]]);
    const uint32_t end = whole ? child.end_token : child.first_token + child.n_tokens;
    for (uint32_t t = child.first_token; t < end; ++t) {
      allowed[static_cast<size_t>(trie.tokens_[t])] = 1;
    }
    if (!whole && child.n_children > 0) walk(trie, edge.node, next, allowed);
  }
}

bool Matcher::loops_over(int32_t state, const TokenTrie::Below& below) {
  if (!below.plain || states_[static_cast<size_t>(state)].partial.remaining != 0) return false;
  if (!states_[static_cast<size_t>(state)].loops_known) {
    // transition() may add states (and move states_): results go through the index.
    uint64_t ascii[2] = {0, 0};
    for (uint32_t byte = 0; byte < 128; ++byte) {
      if (transition(state, static_cast<uint8_t>(byte)) == state) {
        ascii[byte >> 6] |= uint64_t{1} << (byte & 63);
      }
    }
    // Every non-ASCII character loops when each stack either takes all of them or none,
    // and those that take them lead back to the same set.
    const std::vector<uint32_t>& set = states_[static_cast<size_t>(state)].set;
    bool non_ascii = true;
    std::vector<uint32_t> after;
    for (uint32_t leaf : set) {
      if (leaf == kAccept) continue;
      const CharClass& cls = grammar_->classes[grammar_->elements[nodes_[leaf].pos].value];
      if (cls.matches_all(0x80, 0x10FFFF)) {
        successors(leaf, after);
      } else if (cls.matches_any(0x80, 0x10FFFF)) {
        non_ascii = false;
        break;
      }
    }
    sort_unique(after);
    State& s = states_[static_cast<size_t>(state)];
    s.loops_known = true;
    s.loop_ascii[0] = ascii[0];
    s.loop_ascii[1] = ascii[1];
    s.loop_non_ascii = non_ascii && after == s.set;
  }
  const State& s = states_[static_cast<size_t>(state)];
  return (below.ascii[0] & ~s.loop_ascii[0]) == 0 && (below.ascii[1] & ~s.loop_ascii[1]) == 0 &&
         (!below.non_ascii || s.loop_non_ascii);
}

void Matcher::compact() {
  // The state cache only speeds things up: past its bound it starts afresh.
  if (states_.size() >= kStateLimit) {
    states_.clear();
    state_ids_.clear();
    transitions_.clear();
  }
  if (nodes_.size() < kArenaLimit) return;
  states_.clear();  // their sets name frames about to be renumbered
  state_ids_.clear();
  transitions_.clear();
  // Each live leaf as its positions from the bottom of the stack up, then re-interned.
  std::vector<std::vector<uint32_t>> stacks;
  bool accept = false;
  for (uint32_t leaf : set_) {
    if (leaf == kAccept) {
      accept = true;
      continue;
    }
    std::vector<uint32_t> positions;
    for (uint32_t f = leaf; f != kAccept; f = nodes_[f].parent) positions.push_back(nodes_[f].pos);
    std::reverse(positions.begin(), positions.end());
    stacks.push_back(std::move(positions));
  }
  nodes_.clear();
  interned_.clear();
  pool_.clear();
  set_.clear();
  for (const auto& positions : stacks) {
    uint32_t f = kAccept;
    for (uint32_t pos : positions) f = frame(pos, f);
    set_.push_back(f);
  }
  if (accept) set_.push_back(kAccept);
  sort_unique(set_);
}

}  // namespace pipit::grammar
