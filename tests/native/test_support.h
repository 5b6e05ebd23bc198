// Where the shared model files are, for every test that reads one.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

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

}  // namespace pipit::testing

// Skips the test, visibly, when a shared file is absent.
#define PIPIT_REQUIRE_FILE(path)                                                            \
  do {                                                                                      \
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "model file not found: " << (path); \
  } while (0)
