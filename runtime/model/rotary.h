// The rotary position embedding a model file asks for: the pair layout is the architecture's,
// dimensions and base come from the config, and a scaling variant from the metadata and
// tensors llama.cpp's converter writes:
//   <arch>.rope.scaling.type           "none" | "linear" | "yarn" (LongRoPE and llama3 are
//                                       recognised by their tensors)
//   <arch>.rope.scaling.factor         context extension factor (older files: rope.scale_linear)
//   <arch>.rope.scaling.original_context_length   the context before extension
//   <arch>.rope.scaling.attn_factor    scales sine and cosine (LongRoPE's and YaRN's mscale)
//   <arch>.rope.scaling.yarn_beta_fast / yarn_beta_slow   YaRN's ramp (default 32 and 1)
//   rope_freqs.weight                  llama3: per-pair frequency divisors
//   rope_factors_long/short.weight     LongRoPE (phi3): divisors for contexts longer / not
//                                       longer than the original context
#pragma once

#include "gguf/gguf.h"
#include "model/model.h"
#include "model/weights.h"
#include "ops/ops.h"

namespace pipit {

class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  RotaryEmbedding(const gguf::File& file, const ModelConfig& config, ops::RopeStyle style,
                  const WeightLoader& weights);

  // The rotation for a session whose context holds context_length positions.
  const ops::Rope& for_context(int context_length) const {
    return context_length > original_context_ ? beyond_original_ : within_original_;
  }

 private:
  ops::Rope within_original_, beyond_original_;
  int original_context_ = 0;
};

}  // namespace pipit
