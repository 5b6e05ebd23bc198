// Every GenerateOptions field and the prompt ids from the input, into Session::begin and a
// few steps of generation on a tiny model: the same path the bindings take with the options
// object from JavaScript (the runtime re-checks what the TypeScript layer validated).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_support.h"
#include "session/session.h"

namespace {

const pipit::Model& model() {
  static const std::unique_ptr<pipit::Model> m = pipit::fuzz::tiny_model();
  return *m;
}

float any_float(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0:
      return in.ConsumeFloatingPoint<float>();  // anything, NaN and infinities included
    case 1:
      return in.ConsumeFloatingPointInRange(-2.0f, 2.0f);
    default:
      return in.ConsumeProbability<float>();
  }
}

int32_t token_id(FuzzedDataProvider& in, int32_t n_vocab) {
  return in.ConsumeBool() ? in.ConsumeIntegralInRange<int32_t>(-2, n_vocab + 1)
                          : in.ConsumeIntegral<int32_t>();
}

pipit::GenerateOptions options_from(FuzzedDataProvider& in, int32_t n_vocab) {
  pipit::GenerateOptions o;
  o.max_tokens = in.ConsumeIntegralInRange(-2, 12);
  pipit::SamplingOptions& s = o.sampling;
  s.temperature = any_float(in);
  s.top_k = in.ConsumeIntegralInRange(-2, n_vocab + 2);
  s.top_p = any_float(in);
  s.min_p = any_float(in);
  s.typical_p = any_float(in);
  s.repeat_penalty = any_float(in);
  s.frequency_penalty = any_float(in);
  s.presence_penalty = any_float(in);
  s.penalty_last_n = in.ConsumeIntegralInRange(-3, 100);
  const int n_bias = in.ConsumeIntegralInRange(0, 4);
  for (int i = 0; i < n_bias; ++i) s.logit_bias.emplace_back(token_id(in, n_vocab), any_float(in));
  s.seed = in.ConsumeIntegral<uint64_t>();
  o.ignore_eos = in.ConsumeBool();
  o.top_logits = in.ConsumeIntegralInRange(-1, n_vocab + 1);
  const int n_stop = in.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < n_stop; ++i) o.stop.push_back(in.ConsumeRandomLengthString(8));
  o.logprobs = in.ConsumeBool();
  o.top_logprobs = in.ConsumeIntegralInRange(-1, n_vocab + 1);
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0:
      break;
    case 1:
      o.grammar = in.ConsumeRandomLengthString(200);
      break;
    case 2:
      o.response_format = pipit::ResponseFormat::kJsonObject;
      break;
    default:
      o.response_format = pipit::ResponseFormat::kJsonSchema;
      o.json_schema = in.ConsumeRandomLengthString(200);
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)model();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const int32_t n_vocab = model().config().n_vocab;
  try {
    pipit::Session session(model(), in.ConsumeIntegralInRange(-1, 24), 1);
    for (int turn = 0; turn < 2 && in.remaining_bytes() > 0; ++turn) {
      const pipit::GenerateOptions options = options_from(in, n_vocab);
      std::vector<pipit::TokenId> prompt(in.ConsumeIntegralInRange(0, 6));
      for (pipit::TokenId& id : prompt) id = token_id(in, n_vocab);
      try {
        if (in.ConsumeBool()) {
          session.begin_reusing(prompt, options);
        } else {
          session.begin(prompt, options);
        }
        for (int step = 0; step < 16; ++step) {
          const pipit::Step s = session.next();
          if (s.token >= n_vocab) pipit::fuzz::violated("generated id outside the vocabulary");
          if (s.finish != pipit::FinishReason::kNone) break;
        }
      } catch (const pipit::Error& e) {
        if (e.kind() == pipit::ErrorKind::kInternal) {
          pipit::fuzz::violated(std::string("internal error: ") + e.what());
        }
      }
    }
  } catch (const pipit::Error&) {
    // a context length the session refuses
  }
  return 0;
}
