// Runs a test body once per family of byte products the four-row kernels have in this build
// (quant/rows_of_4.h), so that the relaxed-SIMD build tests both, whichever its engine picks.
#pragma once

#include <gtest/gtest.h>

#include <optional>

#include "quant/rows_of_4.h"

namespace pipit::testing {

template <typename Body>
void for_each_product_family(Body&& body) {
  using kernels::ProductFamily;
  for (ProductFamily family : {ProductFamily::kRowProducts, ProductFamily::kFused}) {
    if (!kernels::choose_product_family(family)) continue;
    SCOPED_TRACE(family == ProductFamily::kFused ? "fused row products" : "row products");
    body();
  }
  kernels::choose_product_family(std::nullopt);
}

}  // namespace pipit::testing
