// Every architecture pipit runs. Adding one: a file that defines its factory, and a row in
// kArchitectures (model.cpp).
#pragma once

#include <memory>

#include "model/model.h"

namespace pipit {

std::unique_ptr<Model> make_llama(ModelParts parts);
std::unique_ptr<Model> make_qwen2(ModelParts parts);
std::unique_ptr<Model> make_phi3(ModelParts parts);
std::unique_ptr<Model> make_gemma2(ModelParts parts);
std::unique_ptr<Model> make_gpt2(ModelParts parts);

}  // namespace pipit
