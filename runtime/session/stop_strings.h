// Stop strings over streamed text: text that could be the start of a stop string is held
// back until the next piece shows it is not, so a stop string split across tokens is still
// found and none of it is ever shown.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pipit {

class StopStrings {
 public:
  // Error(kInvalidArgument) for an empty stop string.
  explicit StopStrings(std::vector<std::string> stops);

  // Adds a piece of text; returns what can be shown now. After a stop string was found, it
  // returns the text before it and stopped() is true; later calls return nothing.
  std::string push(std::string_view piece);
  // The text still held back, when generation ends for another reason.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace pipit
