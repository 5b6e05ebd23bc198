// GGUF bytes from anywhere: the reader, every metadata accessor, the tokenizer built from the
// metadata, and a model load with one forward step when the bytes make a model. Anything but
// pipit::Error leaving the runtime (a crash, a sanitizer report, std::bad_alloc, an uncaught
// std:: exception) is a finding.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "core/error.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "session/session.h"
#include "tokenizer/tokenizer.h"

namespace {

using pipit::gguf::Value;
using pipit::gguf::ValueType;

template <typename F>
void tolerate_format_errors(F&& f) {
  try {
    f();
  } catch (const pipit::Error&) {
    // a typed refusal is the expected outcome for most inputs
  }
}

void read_every_accessor(const Value& v) {
  tolerate_format_errors([&] { (void)v.as_u64(); });
  tolerate_format_errors([&] { (void)v.as_i64(); });
  tolerate_format_errors([&] { (void)v.as_f64(); });
  tolerate_format_errors([&] { (void)v.as_bool(); });
  tolerate_format_errors([&] { (void)v.as_string(); });
  if (v.type() != ValueType::kArray) return;
  tolerate_format_errors([&] { (void)v.as_strings(); });
  tolerate_format_errors([&] { (void)v.as_f32s(); });
  tolerate_format_errors([&] { (void)v.as_i32s(); });
  const uint64_t n = v.size();
  for (uint64_t i = 0; i < n && i < 4; ++i) read_every_accessor(v.at(i));
  tolerate_format_errors([&] { (void)v.at(n); });
}

void parse_and_tokenize(std::span<const uint8_t> bytes) {
  const pipit::gguf::File file = pipit::gguf::File::parse(bytes, {.allow_duplicate_keys = true});
  for (const auto& [key, value] : file.metadata()) read_every_accessor(value);
  for (const pipit::gguf::TensorInfo& t : file.tensors()) {
    if (t.data < bytes.data() ||
        t.nbytes > static_cast<uint64_t>(bytes.data() + bytes.size() - t.data)) {
      std::abort();  // the reader promised every tensor lies inside the file
    }
  }
  const std::unique_ptr<pipit::Tokenizer> tokenizer = pipit::Tokenizer::from_gguf(file);
  const std::vector<pipit::TokenId> ids = tokenizer->encode("Hello world <s> 123", true, true);
  (void)tokenizer->decode(ids);
}

void load_and_step(std::span<const uint8_t> bytes) {
  pipit::OwnedBytes owned(static_cast<uint8_t*>(std::malloc(bytes.size() + 1)));
  if (!bytes.empty()) std::memcpy(owned.get(), bytes.data(), bytes.size());
  const std::unique_ptr<pipit::Model> model =
      pipit::Model::load(std::move(owned), bytes.size(), {.allow_duplicate_keys = true});
  pipit::Session session(*model, 4, 1);
  const pipit::TokenId first = model->config().n_vocab - 1;
  session.eval(std::span<const pipit::TokenId>(&first, 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  tolerate_format_errors([&] { parse_and_tokenize(bytes); });
  tolerate_format_errors([&] { load_and_step(bytes); });
  return 0;
}
