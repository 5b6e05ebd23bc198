// What the fuzz targets share: where the shared vocab files are, how a target reports a broken
// invariant, and a tiny model written by pipit's own GGUF writer.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/gguf.h"
#include "gguf_writer.h"
#include "model/model.h"
#include "synthetic.h"
#include "tokenizer/tokenizer.h"

namespace pipit::fuzz {

// A broken invariant is a finding: abort so that libFuzzer saves the input as a crash.
[[noreturn]] inline void violated(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what.c_str());
  std::abort();
}

// PIPIT_MODELS_DIR (the test runner sets it), else ../shared/models from the working directory
// or one of its parents.
inline std::string models_dir() {
  if (const char* env = std::getenv("PIPIT_MODELS_DIR")) return env;
  std::filesystem::path dir = std::filesystem::current_path();
  for (int up = 0; up < 4; ++up) {
    const std::filesystem::path candidate = dir / ".." / "shared" / "models";
    if (std::filesystem::exists(candidate)) return candidate.lexically_normal().string();
    dir = dir.parent_path();
  }
  violated("no models directory: set PIPIT_MODELS_DIR (the fuzz tier does)");
}

// The tokenizer of a shared vocab file; the file's bytes are released once it is built.
inline std::unique_ptr<Tokenizer> load_vocab(const std::string& relative) {
  const std::string path = models_dir() + "/" + relative;
  const std::vector<uint8_t> bytes = gguf::read_file(path);
  const gguf::File file = gguf::File::parse(bytes, {.allow_duplicate_keys = true});
  return Tokenizer::from_gguf(file);
}

// A llama model small enough that a whole generation takes microseconds.
inline std::unique_ptr<Model> tiny_model() {
  gguf::SyntheticConfig c;
  c.n_vocab = 300;
  c.n_embd = 32;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_head_kv = 1;
  c.n_ff = 64;
  c.n_ctx = 64;
  const std::vector<uint8_t> bytes = gguf::synthetic_llama(c).bytes();
  OwnedBytes owned(static_cast<uint8_t*>(std::malloc(bytes.size())));
  std::copy(bytes.begin(), bytes.end(), owned.get());
  return Model::load(std::move(owned), bytes.size(), {});
}

}  // namespace pipit::fuzz
