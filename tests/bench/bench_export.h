// PIPIT_EXPORT: a bench entry point that a WASM build exports to JavaScript (and keeps), and
// that a native build just declares with C linkage.
#pragma once

#ifdef __EMSCRIPTEN__
#include <emscripten/emscripten.h>
#define PIPIT_EXPORT extern "C" EMSCRIPTEN_KEEPALIVE
#else
#define PIPIT_EXPORT extern "C"
#endif
