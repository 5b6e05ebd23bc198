// JSON text from anywhere into the JSON-schema compiler. What it accepts must compile to
// GBNF that the grammar parser accepts and that a matcher can start on: a schema that
// compiles to a broken grammar is a bug in the compiler, not the caller's fault.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "fuzz_support.h"
#include "grammar/gbnf.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view schema(reinterpret_cast<const char*>(data), size);
  std::string gbnf;
  try {
    gbnf = pipit::grammar::json_schema_to_gbnf(schema);
  } catch (const pipit::Error& e) {
    if (e.kind() == pipit::ErrorKind::kInternal) {
      pipit::fuzz::violated(std::string("internal error from the schema compiler: ") + e.what());
    }
    return 0;
  }
  try {
    auto grammar =
        std::make_shared<const pipit::grammar::Grammar>(pipit::grammar::parse_gbnf(gbnf));
    pipit::grammar::Matcher matcher(grammar);
    (void)matcher.accepts("{");
    (void)matcher.can_end();
  } catch (const pipit::Error& e) {
    pipit::fuzz::violated(std::string("the schema compiled to a grammar that fails: ") + e.what() +
                          "\n--- grammar ---\n" + gbnf);
  }
  return 0;
}
