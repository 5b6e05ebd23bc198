#include "model/rotary.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace pipit {

RotaryEmbedding::RotaryEmbedding(const gguf::File& file, const ModelConfig& c, ops::RopeStyle style,
                                 const WeightLoader& weights) {
  const std::string p = c.architecture + ".rope.";
  ops::Rope rope;
  rope.style = style;
  rope.dims = c.rope_dim;
  rope.base = c.rope_freq_base;
  rope.magnitude = static_cast<float>(file.get_f64(p + "scaling.attn_factor", 1.0));
  const double factor = file.get_f64(p + "scaling.factor", file.get_f64(p + "scale_linear", 1.0));
  if (!(factor > 0.0) || !(rope.magnitude > 0.0f)) {
    fail(ErrorKind::kFormat, "metadata " + p + "scaling.factor (" + std::to_string(factor) +
                                 ") and " + p + "scaling.attn_factor (" +
                                 std::to_string(rope.magnitude) + ") must be positive");
  }
  const uint64_t original = file.get_u64(p + "scaling.original_context_length", 0);
  original_context_ =
      original > 0 && original < (1u << 24) ? static_cast<int>(original) : c.n_ctx_train;
  const std::string type(file.get_string(p + "scaling.type", "none"));
  if (type == "linear" || type == "yarn") {
    rope.freq_scale = static_cast<float>(1.0 / factor);
  } else if (type != "none" && type != "longrope") {
    fail(ErrorKind::kUnsupported, "metadata " + p + "scaling.type is '" + type +
                                      "'; pipit supports none, linear, yarn and longrope");
  }
  if (type == "yarn") {
    ops::yarn_ramp(rope, original_context_,
                   static_cast<float>(file.get_f64(p + "scaling.yarn_beta_fast", 32.0)),
                   static_cast<float>(file.get_f64(p + "scaling.yarn_beta_slow", 1.0)));
    // YaRN's own attention temperature, on top of whatever the file asks for.
    rope.magnitude *= static_cast<float>(1.0 + 0.1 * std::log(factor));
  }
  if (weights.has("rope_freqs.weight")) {
    rope.freq_factors = weights.vector("rope_freqs.weight", c.rope_dim / 2);
  }
  within_original_ = beyond_original_ = rope;
  if (weights.has("rope_factors_long.weight") || weights.has("rope_factors_short.weight")) {
    within_original_.freq_factors = weights.vector("rope_factors_short.weight", c.rope_dim / 2);
    beyond_original_.freq_factors = weights.vector("rope_factors_long.weight", c.rope_dim / 2);
  }
}

}  // namespace pipit
