// Grammar masking cost per generated token over a real vocabulary: builds the token trie,
// then plays a generation that at every step masks the whole vocabulary and advances with a
// random allowed token (seeded), reporting the mean and worst mask time.
//
//   build/native/pipit-grammar-bench [vocab.gguf] [steps]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "grammar/gbnf.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

uint64_t next(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void run(const char* name, const std::string& gbnf, const pipit::grammar::TokenTrie& trie,
         const std::vector<std::string>& bytes, int steps) {
  auto grammar = std::make_shared<const pipit::grammar::Grammar>(pipit::grammar::parse_gbnf(gbnf));
  std::vector<double> times;
  std::vector<uint8_t> allowed;
  size_t allowed_total = 0;
  uint64_t rng = 42;
  pipit::grammar::Matcher m(grammar);
  for (int i = 0; i < steps; ++i) {
    if (m.done()) m = pipit::grammar::Matcher(grammar);  // start another document
    const auto t = Clock::now();
    m.mask(trie, allowed);
    times.push_back(ms_since(t));
    std::vector<int32_t> ids;
    for (size_t id = 0; id < allowed.size(); ++id) {
      if (allowed[id]) ids.push_back(static_cast<int32_t>(id));
    }
    allowed_total += ids.size();
    if (ids.empty()) break;
    // Prefer short tokens one time in four, so that documents also close and nest.
    int32_t pick = ids[next(rng) % ids.size()];
    if (next(rng) % 4 == 0) {
      for (int32_t id : ids) {
        if (bytes[static_cast<size_t>(id)].size() == 1 && next(rng) % 3 == 0) {
          pick = id;
          break;
        }
      }
    }
    m.advance(bytes[static_cast<size_t>(pick)]);
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double x : times) sum += x;
  std::printf(
      "%-28s steps %4zu  mask mean %.3f ms  median %.3f ms  p95 %.3f ms  max %.3f ms  "
      "allowed/step %.0f  arena %zu\n",
      name, times.size(), sum / times.size(), sorted[sorted.size() / 2],
      sorted[sorted.size() * 95 / 100], sorted.back(), double(allowed_total) / times.size(),
      m.arena_size());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "../shared/models/vocab/ggml-vocab-llama-spm.gguf";
  const int steps = argc > 2 ? std::atoi(argv[2]) : 300;
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto tokenizer = pipit::Tokenizer::from_gguf(pipit::gguf::File::parse(file));
  std::vector<std::string> bytes;
  for (int32_t id = 0; id < tokenizer->vocab().size(); ++id) {
    bytes.push_back(tokenizer->vocab().is_end_of_generation(id) ? "" : tokenizer->token_bytes(id));
  }
  auto t = Clock::now();
  const pipit::grammar::TokenTrie trie(bytes);
  std::printf("vocabulary %zu tokens (%s); trie built in %.1f ms\n", bytes.size(), path.c_str(),
              ms_since(t));
  run("json_object", pipit::grammar::json_object_gbnf(), trie, bytes, steps);
  run("json_schema (person)",
      pipit::grammar::json_schema_to_gbnf(
          R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
          "tags":{"type":"array","items":{"type":"string"}},"email":{"type":"string"}},
          "required":["name","age"]})"),
      trie, bytes, steps);
  run("gbnf arithmetic",
      "root ::= expr\nexpr ::= term ([-+*/] term)*\nterm ::= [0-9]+ | \"(\" expr \")\"\n", trie,
      bytes, steps);
  run("gbnf free text [^\\n]*", "root ::= [^\\n]* \"\\n\"\n", trie, bytes, steps);
  return 0;
}
