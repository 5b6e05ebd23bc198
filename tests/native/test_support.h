// Where the shared model files are, for every test that reads one.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "model/model.h"

// Skips the test, visibly, when a shared file is absent.
#define PIPIT_REQUIRE_FILE(path)                                                            \
  do {                                                                                      \
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "model file not found: " << (path); \
  } while (0)

namespace pipit::testing {

// PIPIT_MODELS_DIR, else ../shared/models seen from the working directory or its parents.
inline std::string models_dir() {
  if (const char* env = std::getenv("PIPIT_MODELS_DIR")) return env;
  std::filesystem::path dir = std::filesystem::current_path();
  for (int up = 0; up < 4; ++up) {
    std::filesystem::path candidate = dir / ".." / "shared" / "models";
    if (std::filesystem::exists(candidate)) return candidate.lexically_normal().string();
    dir = dir.parent_path();
  }
  return "../shared/models";
}

inline std::string model_path(const std::string& relative) {
  return models_dir() + "/" + relative;
}

// A test fixture holding stories260K, the one real model in ../shared; skips without it.
class StoriesModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = model_path("stories260K/stories260K.gguf");
    PIPIT_REQUIRE_FILE(path);
    size_t size = 0;
    OwnedBytes bytes = read_file(path, &size);
    model_ = Model::load(std::move(bytes), size, {});
  }
  std::unique_ptr<Model> model_;
};

}  // namespace pipit::testing
