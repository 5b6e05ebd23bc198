// The whole model against llama.cpp: greedy ids and logits from ../shared/reference.
//
// Teacher-forced: the reference prompt goes in as one batch, then each reference token one at
// a time, and the logits after every step are compared with llama.cpp's "as-is" run of the
// same file. Like llama.cpp, pipit quantizes activations before multiplying them with
// quantized weights (Q8_0/Q8_1/Q8_K, rounded the same way), rounds them to f16 for F16
// weights, and keeps them in f32 for F32 weights.
//
// Tolerances, on logits whose RMS is about 3 (synthetic) to 20 (stories260K):
// - F32 weights: 1e-4. Independent float32/float64 re-implementations land within ~1e-5 (seen
//   here: 1.5e-5); the slack covers summation order, FMA or not, and libm. A real bug (a
//   wrong RoPE pair, a missing norm weight) moves logits by 0.1 or more.
// - GELU models (gpt2, gemma2): 3e-3. llama.cpp evaluates GELU through an fp16 table; pipit
//   rounds the same way, but a tiny upstream difference can flip one fp16 rounding (the
//   reference README measures that floor at ~1e-3, gemma2 2.6e-3).
// - F16 weights: 1e-2, and quantized weights: 0.5 (still below the greedy-id margin). Here pipit agrees with llama.cpp to ~1e-6
//   until the first activation that lies within float noise of a rounding boundary flips to
//   the neighbouring integer; the flipped value then stays in the KV cache. The README
//   measures 0.18-0.34 between the as-is and the f32-activation runs, the size of that effect.
// - Quantized mixture-of-experts: 2.0, because one flipped activation can change which expert
//   the router picks (the README records 1.49 for synth-moe-Q8_0).
// Greedy ids must agree at every step whose reference top-1/top-2 margin exceeds 0.5.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/model.h"
#include "session/session.h"
#include "test_support.h"

namespace pipit {
namespace {

constexpr float kClearMargin = 0.5f;

float tolerance_for(const Model& model) {
  const std::string arch = model.config().architecture;
  const auto types = model.tensor_type_counts();
  const bool quantized = std::any_of(types.begin(), types.end(), [](const auto& entry) {
    return entry.first != "F32" && entry.first != "F16";
  });
  const bool mixture = model.file().get_u64(arch + ".expert_count", 0) > 0;
  float tolerance = arch == "gpt2" || arch == "gemma2" ? 3e-3f : 1e-4f;
  if (types.count("F16")) tolerance = std::max(tolerance, 1e-2f);
  if (quantized) tolerance = std::max(tolerance, mixture ? 2.0f : 0.5f);
  return tolerance;
}

struct ReferenceCase {
  std::string model;      // under models/
  std::string reference;  // under reference/
};

std::string reference_dir() {
  return testing::models_dir() + "/../reference";
}

void PrintTo(const ReferenceCase& c, std::ostream* os) {
  *os << c.model;
}

class ModelReference : public ::testing::TestWithParam<ReferenceCase> {};

TEST_P(ModelReference, TeacherForcedLogitsMatchLlamaCpp) {
  const ReferenceCase& rc = GetParam();
  const std::string model_path = testing::model_path(rc.model);
  const std::string ref_path = reference_dir() + "/" + rc.reference;
  PIPIT_REQUIRE_FILE(model_path);
  PIPIT_REQUIRE_FILE(ref_path);

  size_t size = 0;
  OwnedBytes bytes = read_file(model_path, &size);
  std::unique_ptr<Model> model;
  try {
    model = Model::load(std::move(bytes), size, {});
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kUnsupported) GTEST_SKIP() << "not implemented yet: " << e.what();
    throw;
  }
  std::ifstream in(ref_path);
  const nlohmann::json ref = nlohmann::json::parse(in);
  const float tolerance = tolerance_for(*model);
  ASSERT_EQ(ref["n_vocab"].get<int>(), model->config().n_vocab);

  float worst = 0.0f;
  int compared_ids = 0, close_steps = 0, total_steps = 0;
  for (const auto& run : ref["runs"]) {
    SCOPED_TRACE("prompt '" + run["prompt"].get<std::string>() + "'");
    Session session(*model, 512);
    const auto prompt = run["prompt_tokens"].get<std::vector<TokenId>>();
    const auto generated = run["generated_tokens"].get<std::vector<TokenId>>();
    session.eval(prompt);
    const auto& steps = run["steps"];
    for (size_t s = 0; s < steps.size(); ++s) {
      if (s > 0) session.eval(std::span<const TokenId>(&generated[s - 1], 1));
      const auto logits = session.logits();
      const auto& step = steps[s];
      float step_worst = 0.0f;
      for (const auto& pair : step["top"]) {
        const int id = pair[0].get<int>();
        const float diff = std::fabs(logits[id] - pair[1].get<float>());
        step_worst = std::max(step_worst, diff);
        ASSERT_LE(diff, tolerance) << "step " << s << " token " << id;
      }
      if (run.contains("full_logits") && s < run["full_logits"].size()) {
        const auto full = run["full_logits"][s].get<std::vector<float>>();
        for (size_t i = 0; i < full.size(); ++i) {
          const float diff = std::fabs(logits[i] - full[i]);
          step_worst = std::max(step_worst, diff);
          ASSERT_LE(diff, tolerance) << "step " << s << " full logit " << i;
        }
      }
      worst = std::max(worst, step_worst);
      close_steps += step_worst <= 1e-4f;
      ++total_steps;
      if (step["margin"].get<float>() > kClearMargin) {
        const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
        ASSERT_EQ(best, step["token"].get<int>()) << "greedy id differs at step " << s;
        ++compared_ids;
      }
    }
  }
  std::cout << "[ reference ] " << rc.model << ": max |logit diff| " << worst << " (tolerance "
            << tolerance << "), " << close_steps << "/" << total_steps << " steps within 1e-4, "
            << compared_ids << " greedy ids compared\n";
}

// Every model file in ../shared with a llama.cpp reference.
std::vector<ReferenceCase> all_reference_cases() {
  std::vector<ReferenceCase> cases = {
      {"stories260K/stories260K.gguf", "stories260K.json"},
      {"synthetic/stories260K-Q8_0.gguf", "stories260K-Q8_0.json"},
      {"synthetic/stories260K-Q4_0.gguf", "stories260K-Q4_0.json"},
  };
  const char* f32_files[] = {"synth-llama-F32", "synth-moe-F32", "synth-qwen2-F32",
                             "synth-phi3-F32"};
  for (const char* stem : f32_files) {
    cases.push_back({std::string("synthetic/") + stem + ".gguf", std::string(stem) + ".json"});
  }
  const char* quantized_files[] = {
      "synth-llama-Q8_0",   "synth-llama-Q6_K",   "synth-llama-Q5_K_M", "synth-llama-Q5_1",
      "synth-llama-Q5_0",   "synth-llama-Q4_K_M", "synth-llama-Q4_1",   "synth-llama-Q4_0",
      "synth-llama-Q3_K_M", "synth-llama-Q2_K",   "synth-moe-Q8_0",     "synth-moe-Q4_K_M",
      "synth-qwen2-F16",    "synth-qwen2-Q8_0",   "synth-qwen2-Q4_K_M", "synth-gpt2-Q8_0",
      "synth-phi3-Q8_0",    "synth-phi3-Q4_K_M",  "synth-gemma2-Q8_0"};
  for (const char* stem : quantized_files) {
    cases.push_back({std::string("synthetic/") + stem + ".gguf", std::string(stem) + ".json"});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllModels, ModelReference, ::testing::ValuesIn(all_reference_cases()),
                         [](const ::testing::TestParamInfo<ReferenceCase>& info) {
                           std::string name = info.param.model;
                           name = name.substr(name.find('/') + 1);
                           name = name.substr(0, name.size() - 5);
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// PROVENANCE.md: stories260K, empty prompt (BOS), greedy — the first 64 generated ids.
TEST(Golden, Stories260KGreedyStory) {
  const std::string path = testing::model_path("stories260K/stories260K.gguf");
  PIPIT_REQUIRE_FILE(path);
  const std::vector<TokenId> expected = {
      403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
      401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385,
      328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267,
      337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310};
  size_t size = 0;
  OwnedBytes bytes = read_file(path, &size);
  auto model = Model::load(std::move(bytes), size, {});
  Session session(*model, 0);
  GenerateOptions options;
  options.max_tokens = 64;
  options.sampling.temperature = 0.0f;
  session.begin({}, options);
  std::vector<TokenId> ids;
  std::string text;
  for (;;) {
    Step step = session.next();
    ids.push_back(step.token);
    text += step.text;
    if (step.finish != FinishReason::kNone) {
      EXPECT_EQ(step.finish, FinishReason::kLength);
      break;
    }
  }
  EXPECT_EQ(ids, expected);
  // Whether the first piece keeps SentencePiece's leading space is the detokenizer's business.
  EXPECT_LE(text.find("Once upon a time, there was a little girl named Lily."), 1u) << text;
}

}  // namespace
}  // namespace pipit
