// How positions enter the model: RoPE scaling variants, Mistral's sliding window, and the
// context shift that moves cached keys to new positions.
//
// Expectations come from two independent places:
// - angles written out by hand (or from closed formulas in double precision) for ops::Rope;
// - a plain double-precision forward pass of a small llama/qwen2 file written with the
//   project's GGUF writer (ReferenceForward below: one loop per equation, no kernels, no KV
//   cache, its own angle formula per variant), compared with pipit's logits.
// Tolerance 1e-4 on F32 models whose logits have an RMS of about 3: float32 accumulation
// against double lands near 1e-6 here; a wrong angle, pair or window moves logits by > 1e-2
// (each test also checks that the variant it tests changes the logits by more than that).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf_writer.h"
#include "model/model.h"
#include "ops/ops.h"
#include "session/session.h"
#include "synthetic.h"
#include "test_support.h"

namespace pipit {
namespace {

constexpr float kLogitTolerance = 1e-4f;
constexpr float kVisibleChange = 1e-2f;

// ---- ops::Rope against hand-computed angles ----

// The rotation of (1, 0) pairs: interleaved layout, so pair i reads back as (cos, sin).
std::vector<float> rotated_unit_pairs(const ops::Rope& rope, int pos) {
  std::vector<float> v(rope.dims, 0.0f);
  for (int i = 0; i < rope.dims; i += 2) v[i] = 1.0f;
  ops::rope(rope, v.data(), 1, rope.dims, pos);
  return v;
}

void expect_angles(const ops::Rope& rope, int pos, const std::vector<double>& theta,
                   double magnitude = 1.0) {
  const std::vector<float> v = rotated_unit_pairs(rope, pos);
  for (size_t i = 0; i < theta.size(); ++i) {
    SCOPED_TRACE("pair " + std::to_string(i) + " at position " + std::to_string(pos));
    EXPECT_NEAR(v[2 * i], magnitude * std::cos(theta[i]), 2e-6);
    EXPECT_NEAR(v[2 * i + 1], magnitude * std::sin(theta[i]), 2e-6);
  }
}

TEST(Rope, PlainAnglesAreBaseToTheMinusTwoIOverDims) {
  ops::Rope rope{.dims = 4, .base = 10000.0f};
  // 10000^(-2/4) = 0.01
  expect_angles(rope, 3, {3.0, 0.03});
  expect_angles(rope, 100, {100.0, 1.0});
}

TEST(Rope, NeoxTurnsPairsHalfAHeadApart) {
  ops::Rope rope{.style = ops::RopeStyle::kNeox, .dims = 4, .base = 10000.0f};
  std::vector<float> v = {1.0f, 1.0f, 0.0f, 0.0f};  // pairs (0, 2) and (1, 3)
  ops::rope(rope, v.data(), 1, 4, 3);
  EXPECT_NEAR(v[0], std::cos(3.0), 2e-6);
  EXPECT_NEAR(v[2], std::sin(3.0), 2e-6);
  EXPECT_NEAR(v[1], std::cos(0.03), 2e-6);
  EXPECT_NEAR(v[3], std::sin(0.03), 2e-6);
}

TEST(Rope, LinearScalingDividesEveryAngleByTheFactor) {
  ops::Rope rope{.dims = 4, .base = 10000.0f, .freq_scale = 0.25f};
  expect_angles(rope, 8, {2.0, 0.02});
}

TEST(Rope, FrequencyFactorsDivideTheirPairsAngle) {
  const float factors[] = {1.0f, 8.0f};  // llama3's rope_freqs: slow pairs slowed further
  ops::Rope rope{.dims = 4, .base = 10000.0f, .freq_factors = factors};
  expect_angles(rope, 40, {40.0, 0.4 / 8.0});
}

TEST(Rope, YarnKeepsFastPairsInterpolatesSlowOnesAndRampsBetween) {
  ops::Rope rope{.dims = 16, .base = 10000.0f, .freq_scale = 0.25f};
  // Pair i turns 64 * 10000^(-2i/16) / 2pi times over an original context of 64: 32 turns
  // would need i = 16 ln(64 / (32 * 2pi)) / (2 ln 10000) = -0.99 -> 0, one turn
  // i = 16 ln(64 / 2pi) / (2 ln 10000) = 2.016 -> 3.
  ops::yarn_ramp(rope, 64, 32.0f, 1.0f);
  EXPECT_EQ(rope.yarn_low, 0.0f);
  EXPECT_EQ(rope.yarn_high, 3.0f);
  // Share of the original angle per pair: 1, 2/3, 1/3, then 0 (fully divided by 4).
  const double keep[] = {1.0, 2.0 / 3.0, 1.0 / 3.0, 0, 0, 0, 0, 0};
  std::vector<double> theta;
  for (int i = 0; i < 8; ++i) {
    const double original = 50.0 * std::pow(10000.0, -2.0 * i / 16);
    theta.push_back(original * keep[i] + original / 4 * (1 - keep[i]));
  }
  rope.magnitude = 1.5f;
  expect_angles(rope, 50, theta, 1.5);
}

TEST(Rope, ShiftTurnsOnwardWithoutScalingAgain) {
  const float factors[] = {1.0f, 2.0f, 4.0f, 1.5f};
  ops::Rope rope{.style = ops::RopeStyle::kNeox,
                 .dims = 8,
                 .base = 500.0f,
                 .freq_scale = 0.5f,
                 .freq_factors = factors,
                 .magnitude = 1.25f};
  ops::yarn_ramp(rope, 32, 32.0f, 1.0f);
  std::vector<float> a = {0.3f, -1.0f, 0.5f, 2.0f, 1.0f, 0.25f, -0.7f, 0.1f};
  std::vector<float> b = a;
  ops::rope(rope, a.data(), 1, 8, 37);
  ops::rope_shift(rope, a.data(), 1, 8, -20);
  ops::rope(rope, b.data(), 1, 8, 17);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << i;
}

// ---- models written with the GGUF writer, against a plain forward pass ----

std::unique_ptr<Model> load(const std::vector<uint8_t>& bytes) {
  OwnedBytes owned(static_cast<uint8_t*>(std::malloc(bytes.size())));
  std::copy(bytes.begin(), bytes.end(), owned.get());
  return Model::load(std::move(owned), bytes.size(), {});
}

gguf::SyntheticConfig small_config(const std::string& arch, uint32_t n_layer) {
  gguf::SyntheticConfig c;
  c.architecture = arch;
  c.n_vocab = 300;
  c.n_embd = 64;
  c.n_layer = n_layer;
  c.n_head = 4;  // head_dim 16, all of it rotated
  c.n_head_kv = 2;
  c.n_ff = 128;
  c.n_ctx = 64;
  c.seed = 11;
  return c;
}

// The angle of pair i at position pos, and the length rotated pairs get.
struct Angles {
  std::function<double(int pos, int i)> theta;
  double magnitude = 1.0;
};

Angles plain_angles(double base = 10000.0, int dims = 16) {
  return {[=](int pos, int i) { return pos * std::pow(base, -2.0 * i / dims); }};
}

// logits after tokens, by the equations of llama (qwen2: with q/k/v biases, NeoX pairs), in
// double, straight from the file's F32 tensors.
class ReferenceForward {
 public:
  explicit ReferenceForward(const Model& model) : f_(model.file()), c_(model.config()) {}

  std::vector<double> logits(const std::vector<TokenId>& tokens, const Angles& angles,
                             int window = 0) const {
    const int n = static_cast<int>(tokens.size()), hd = c_.head_dim, q_dim = c_.n_head * hd;
    const bool neox = c_.architecture == "qwen2";
    std::vector<std::vector<double>> x(n);
    for (int t = 0; t < n; ++t) x[t] = row("token_embd.weight", tokens[t]);
    for (int l = 0; l < c_.n_layer; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      std::vector<std::vector<double>> q(n), k(n), v(n);
      for (int t = 0; t < n; ++t) {
        const auto h = rms_norm(x[t], p + "attn_norm.weight");
        q[t] = linear(p + "attn_q", h);
        k[t] = linear(p + "attn_k", h);
        v[t] = linear(p + "attn_v", h);
        for (int head = 0; head < c_.n_head; ++head) rotate(&q[t][head * hd], t, angles, neox);
        for (int head = 0; head < c_.n_head_kv; ++head) rotate(&k[t][head * hd], t, angles, neox);
      }
      for (int t = 0; t < n; ++t) {
        std::vector<double> attn(q_dim, 0.0);
        const int first = window > 0 ? std::max(0, t - window + 1) : 0;
        for (int head = 0; head < c_.n_head; ++head) {
          const int kv = head / (c_.n_head / c_.n_head_kv) * hd;
          std::vector<double> w;
          for (int s = first; s <= t; ++s) {
            double dot = 0;
            for (int i = 0; i < hd; ++i) dot += q[t][head * hd + i] * k[s][kv + i];
            w.push_back(dot / std::sqrt(static_cast<double>(hd)));
          }
          const double max = *std::max_element(w.begin(), w.end());
          double sum = 0;
          for (double& e : w) sum += (e = std::exp(e - max));
          for (int s = first; s <= t; ++s) {
            for (int i = 0; i < hd; ++i) attn[head * hd + i] += w[s - first] / sum * v[s][kv + i];
          }
        }
        add(x[t], linear(p + "attn_output", attn));
        const auto h = rms_norm(x[t], p + "ffn_norm.weight");
        auto gate = linear(p + "ffn_gate", h);
        const auto up = linear(p + "ffn_up", h);
        for (size_t i = 0; i < gate.size(); ++i)
          gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
        add(x[t], linear(p + "ffn_down", gate));
      }
    }
    const auto h = rms_norm(x[n - 1], "output_norm.weight");
    return linear(f_.find_tensor("output.weight") ? "output" : "token_embd", h);
  }

 private:
  const float* data(const std::string& name) const {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    EXPECT_EQ(t->type_id, static_cast<uint32_t>(TensorType::F32)) << name;
    return reinterpret_cast<const float*>(t->data);
  }
  std::vector<double> row(const std::string& name, int r) const {
    const int cols = static_cast<int>(f_.find_tensor(name)->dims[0]);
    const float* w = data(name) + static_cast<size_t>(r) * cols;
    return std::vector<double>(w, w + cols);
  }
  // name.weight times x, plus name.bias when the file has one.
  std::vector<double> linear(const std::string& name, const std::vector<double>& x) const {
    const gguf::TensorInfo* t = f_.find_tensor(name + ".weight");
    const size_t cols = t->dims[0], rows = t->dims[1];
    const float* w = data(name + ".weight");
    std::vector<double> y(rows, 0.0);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c = 0; c < cols; ++c) y[r] += w[r * cols + c] * x[c];
    }
    if (f_.find_tensor(name + ".bias")) add(y, row(name + ".bias", 0));
    return y;
  }
  std::vector<double> rms_norm(const std::vector<double>& x, const std::string& weight) const {
    double ss = 0;
    for (double e : x) ss += e * e;
    const double scale = 1.0 / std::sqrt(ss / x.size() + c_.norm_eps);
    const float* w = data(weight);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * w[i];
    return y;
  }
  void rotate(double* head, int pos, const Angles& angles, bool neox) const {
    const int half = c_.rope_dim / 2;
    for (int i = 0; i < half; ++i) {
      const double th = angles.theta(pos, i);
      const double cs = std::cos(th) * angles.magnitude, sn = std::sin(th) * angles.magnitude;
      double& a = head[neox ? i : 2 * i];
      double& b = head[neox ? i + half : 2 * i + 1];
      const double a0 = a, b0 = b;
      a = a0 * cs - b0 * sn;
      b = a0 * sn + b0 * cs;
    }
  }
  static void add(std::vector<double>& a, const std::vector<double>& b) {
    for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  }

  const gguf::File& f_;
  const ModelConfig& c_;
};

std::vector<float> pipit_logits(const Model& model, const std::vector<TokenId>& tokens,
                                int context_length = 64) {
  Session session(model, context_length);
  session.eval(tokens);
  return {session.logits().begin(), session.logits().end()};
}

float max_difference(const std::vector<float>& a, const std::vector<double>& b) {
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, static_cast<float>(std::abs(a[i] - b[i])));
  }
  return worst;
}

const std::vector<TokenId> kTokens = {1, 17, 260, 45, 99, 3, 288, 150, 61, 7, 200, 33};

TEST(ModelPositions, PlainLlamaAndQwen2MatchTheReferenceForward) {
  for (const char* arch : {"llama", "qwen2"}) {
    SCOPED_TRACE(arch);
    auto model = load(gguf::synthetic_llama(small_config(arch, 2)).bytes());
    const ReferenceForward reference(*model);
    EXPECT_LT(
        max_difference(pipit_logits(*model, kTokens), reference.logits(kTokens, plain_angles())),
        kLogitTolerance);
  }
}

TEST(ModelPositions, MistralSlidingWindowMasksKeysOutsideTheWindow) {
  gguf::Writer w = gguf::synthetic_llama(small_config("llama", 2));
  w.set("llama.attention.sliding_window", gguf::MetaValue::u32(4));
  auto model = load(w.bytes());
  EXPECT_EQ(model->config().sliding_window, 4);
  const ReferenceForward reference(*model);
  const std::vector<float> logits = pipit_logits(*model, kTokens);
  EXPECT_LT(max_difference(logits, reference.logits(kTokens, plain_angles(), 4)), kLogitTolerance);
  // The window is exactly 4 wide: 3 or 5 give other logits, and so does no window at all.
  for (int other : {0, 3, 5}) {
    EXPECT_GT(max_difference(logits, reference.logits(kTokens, plain_angles(), other)),
              kVisibleChange)
        << "window " << other;
  }
}

// A llama file with extra metadata and tensors, loaded.
std::unique_ptr<Model> llama_with(const std::function<void(gguf::Writer&)>& edit,
                                  const std::string& arch = "llama") {
  gguf::Writer w = gguf::synthetic_llama(small_config(arch, 2));
  edit(w);
  return load(w.bytes());
}

void expect_reference(const Model& model, const Angles& angles, int context_length = 64) {
  const ReferenceForward reference(model);
  const std::vector<float> logits = pipit_logits(model, kTokens, context_length);
  EXPECT_LT(max_difference(logits, reference.logits(kTokens, angles)), kLogitTolerance);
  EXPECT_GT(max_difference(logits, reference.logits(kTokens, plain_angles())), kVisibleChange)
      << "the scaling should change the logits";
}

TEST(ModelPositions, LinearRopeScalingDividesPositionsByTheFactor) {
  auto model = llama_with([](gguf::Writer& w) {
    w.set("llama.rope.scaling.type", gguf::MetaValue::string("linear"));
    w.set("llama.rope.scaling.factor", gguf::MetaValue::f32(4.0f));
  });
  expect_reference(*model, {[](int pos, int i) { return pos / 4.0 * std::pow(1e4, -i / 8.0); }});
}

TEST(ModelPositions, Llama3RopeFreqsDivideEachPairsFrequency) {
  const std::vector<float> factors = {1, 1, 1, 1.5f, 3, 6, 8, 8};
  auto model = llama_with([&](gguf::Writer& w) {
    w.add_tensor("rope_freqs.weight", TensorType::F32, {8}, std::span<const float>(factors));
  });
  expect_reference(*model,
                   {[&](int pos, int i) { return pos * std::pow(1e4, -i / 8.0) / factors[i]; }});
}

TEST(ModelPositions, YarnBlendsKeptAndInterpolatedAnglesAndScalesAttention) {
  auto model = llama_with(
      [](gguf::Writer& w) {
        w.set("qwen2.rope.scaling.type", gguf::MetaValue::string("yarn"));
        w.set("qwen2.rope.scaling.factor", gguf::MetaValue::f32(4.0f));
        w.set("qwen2.rope.scaling.original_context_length", gguf::MetaValue::u32(64));
      },
      "qwen2");
  // Ramp ends 0 and 3 for 16 rotated values, base 10000, 64 original positions (see
  // Rope.YarnKeepsFastPairsInterpolatesSlowOnesAndRampsBetween).
  const double keep[] = {1.0, 2.0 / 3.0, 1.0 / 3.0, 0, 0, 0, 0, 0};
  expect_reference(*model, {[&](int pos, int i) {
                              const double original = pos * std::pow(1e4, -i / 8.0);
                              return original * keep[i] + original / 4 * (1 - keep[i]);
                            },
                            1.0 + 0.1 * std::log(4.0)});
}

TEST(ModelPositions, LongRopePicksShortOrLongFactorsByTheSessionsContext) {
  const std::vector<float> short_factors = {1, 1, 1.2f, 1.5f, 2, 2.5f, 3, 3};
  const std::vector<float> long_factors = {1, 2, 4, 8, 16, 24, 32, 40};
  auto model = llama_with([&](gguf::Writer& w) {
    w.set("llama.rope.scaling.attn_factor", gguf::MetaValue::f32(1.2f));
    w.set("llama.rope.scaling.original_context_length", gguf::MetaValue::u32(32));
    w.add_tensor("rope_factors_short.weight", TensorType::F32, {8},
                 std::span<const float>(short_factors));
    w.add_tensor("rope_factors_long.weight", TensorType::F32, {8},
                 std::span<const float>(long_factors));
  });
  const auto with = [](const std::vector<float>& factors) {
    return Angles{[&factors](int pos, int i) { return pos * std::pow(1e4, -i / 8.0) / factors[i]; },
                  1.2};
  };
  SCOPED_TRACE("a context of 32 fits the original: short factors");
  expect_reference(*model, with(short_factors), 32);
  SCOPED_TRACE("a context of 64 is longer: long factors");
  expect_reference(*model, with(long_factors), 64);
}

TEST(ModelPositions, UnknownRopeScalingTypeIsRefusedByName) {
  try {
    llama_with([](gguf::Writer& w) {
      w.set("llama.rope.scaling.type", gguf::MetaValue::string("dynamic-ntk"));
    });
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("'dynamic-ntk'"), std::string::npos) << e.what();
  }
}

// ---- context shift ----

GenerateOptions shifting(int keep, int discard = 0) {
  GenerateOptions o;
  o.sampling.temperature = 0.0f;
  o.ignore_eos = true;
  o.max_tokens = 1000;
  o.context_shift = {ContextPolicy::kShift, keep, discard};
  return o;
}

// Logits now, against a fresh session that evaluates the tokens `session` holds.
float difference_from_fresh_prefill(const Model& model, const Session& session) {
  Session fresh(model, session.context_length());
  fresh.eval(session.tokens());
  float worst = 0.0f;
  for (size_t i = 0; i < fresh.logits().size(); ++i) {
    worst = std::max(worst, std::abs(fresh.logits()[i] - session.logits()[i]));
  }
  return worst;
}

// Generates after `prompt` until `shifts` context shifts have happened.
void generate_through_shifts(Session& session, const std::vector<TokenId>& prompt,
                             const GenerateOptions& options, int shifts) {
  session.begin(prompt, options);
  int dropped = 0;
  while (shifts > 0) {
    const Step step = session.next();
    ASSERT_EQ(step.finish, FinishReason::kNone);
    ASSERT_LE(session.position(), session.context_length());
    if (session.timings().dropped_tokens > dropped) {
      dropped = session.timings().dropped_tokens;
      --shifts;
    }
  }
}

const std::vector<TokenId> kPrompt = {1, 40, 41, 42};

// With one layer, every cached key and value depends on its token and position alone, so a
// shifted cache must equal the cache of a fresh prefill exactly (up to float rounding). Deeper
// layers keep what dropped tokens contributed, which no fresh prefill reproduces.
TEST(ContextShift, OneLayerShiftEqualsAFreshPrefillOfTheKeptTokens) {
  for (const char* arch : {"llama", "qwen2"}) {
    SCOPED_TRACE(arch);
    gguf::Writer w = gguf::synthetic_llama(small_config(arch, 1));
    // The shift must also turn scaled, factored rotations correctly.
    const std::vector<float> factors = {1, 1, 1.5f, 2, 3, 4, 6, 8};
    w.add_tensor("rope_freqs.weight", TensorType::F32, {8}, std::span<const float>(factors));
    w.set(std::string(arch) + ".rope.scaling.type", gguf::MetaValue::string("yarn"));
    w.set(std::string(arch) + ".rope.scaling.factor", gguf::MetaValue::f32(2.0f));
    w.set(std::string(arch) + ".rope.scaling.original_context_length", gguf::MetaValue::u32(16));
    auto model = load(w.bytes());
    Session session(*model, 16);
    generate_through_shifts(session, kPrompt, shifting(2), 3);
    // 16 full: keep 2, drop half of the other 14 -> 9 held, full again after 7 more tokens.
    EXPECT_EQ(session.timings().dropped_tokens, 3 * 7);
    EXPECT_EQ(std::vector<TokenId>(session.tokens().begin(), session.tokens().begin() + 2),
              (std::vector<TokenId>{1, 40}));
    EXPECT_LT(difference_from_fresh_prefill(*model, session), kLogitTolerance);
  }
}

TEST(ContextShift, APromptLongerThanTheContextIsShiftedWhileItIsRead) {
  auto model = load(gguf::synthetic_llama(small_config("llama", 1)).bytes());
  std::vector<TokenId> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back(5 + 7 * i);
  Session session(*model, 16);
  GenerateOptions options = shifting(-1, 4);  // keep: the prompt, up to half the context
  session.begin(prompt, options);
  EXPECT_LE(session.position(), 16);
  EXPECT_EQ(session.tokens().back(), prompt.back());
  EXPECT_EQ(std::vector<TokenId>(session.tokens().begin(), session.tokens().begin() + 8),
            std::vector<TokenId>(prompt.begin(), prompt.begin() + 8));
  EXPECT_EQ(session.timings().dropped_tokens, 40 - session.position());
  EXPECT_LT(difference_from_fresh_prefill(*model, session), kLogitTolerance);
}

// gpt2's positions are learned embeddings added at the input: no rotation moves them, so the
// shift evaluates the kept tokens again, which equals a fresh prefill at any depth.
TEST(ContextShift, LearnedPositionsAreEvaluatedAgainAndEqualAFreshPrefill) {
  const std::string path = testing::model_path("synthetic/synth-gpt2-Q8_0.gguf");
  PIPIT_REQUIRE_FILE(path);
  size_t size = 0;
  OwnedBytes bytes = read_file(path, &size);
  auto model = Model::load(std::move(bytes), size, {});
  ASSERT_EQ(model->key_rotation(12), nullptr);
  Session session(*model, 12);
  generate_through_shifts(session, {7454, 2402, 257, 640}, shifting(1), 2);
  EXPECT_EQ(session.tokens().front(), 7454);
  EXPECT_EQ(difference_from_fresh_prefill(*model, session), 0.0f);
}

// Deep models: the shift keeps generating for as long as asked, within the context.
TEST(ContextShift, GenerationGoesOnPastTheContextLength) {
  const std::string path = testing::model_path("stories260K/stories260K.gguf");
  PIPIT_REQUIRE_FILE(path);
  size_t size = 0;
  OwnedBytes bytes = read_file(path, &size);
  auto model = Model::load(std::move(bytes), size, {});
  Session session(*model, 24);
  GenerateOptions options = shifting(-1);
  options.max_tokens = 100;
  session.begin(kPrompt, options);
  int generated = 0;
  for (Step step;; ++generated) {
    step = session.next();
    if (step.finish != FinishReason::kNone) {
      EXPECT_EQ(step.finish, FinishReason::kLength);
      break;
    }
  }
  EXPECT_EQ(generated + 1, 100);
  EXPECT_GT(session.timings().dropped_tokens, 70);
  EXPECT_EQ(std::vector<TokenId>(session.tokens().begin(), session.tokens().begin() + 4), kPrompt);
}

TEST(ContextShift, KeepingEverythingOrOutOfRangeOptionsAreClearErrors) {
  auto model = load(gguf::synthetic_llama(small_config("llama", 1)).bytes());
  Session session(*model, 8);
  const auto kind_of = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::kInternal;
  };
  EXPECT_EQ(kind_of([&] { session.begin(kPrompt, shifting(8)); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { session.begin(kPrompt, shifting(-2)); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { session.begin(kPrompt, shifting(2, -1)); }), ErrorKind::kInvalidArgument);
  // keep 7 of 8 leaves one token to drop per shift: slow, but it goes on.
  generate_through_shifts(session, kPrompt, shifting(7), 3);
  EXPECT_EQ(session.timings().dropped_tokens, 3);
  // The default policy still ends generation at the full context.
  GenerateOptions plain = shifting(0);
  plain.context_shift = {};
  session.begin(kPrompt, plain);
  Step step;
  do step = session.next();
  while (step.finish == FinishReason::kNone);
  EXPECT_EQ(step.finish, FinishReason::kContextFull);
  EXPECT_EQ(kind_of([&] { session.eval(std::vector<TokenId>{5}); }), ErrorKind::kContextOverflow);
}

}  // namespace
}  // namespace pipit
