// clang 15 and later name a `main(argc, argv)` __main_argc_argv on Emscripten too, and expect
// the C library to supply the `main` that calls it. Debian's Emscripten 3.1.6 predates that:
// its JS calls an exported `main`, which the relaxed-SIMD tree (clang-16) would otherwise lack,
// so the test runner would start and exit without running a test.
#if defined(__EMSCRIPTEN__) && __clang_major__ >= 15
#include <emscripten/version.h>
#if __EMSCRIPTEN_major__ == 3 && __EMSCRIPTEN_minor__ == 1 && __EMSCRIPTEN_tiny__ <= 6

extern "C" int __main_argc_argv(int argc, char** argv);

// The asm label names the symbol `main` without clang treating this function as main.
extern "C" int pipit_exported_main(int argc, char** argv) __asm__("main");
extern "C" int pipit_exported_main(int argc, char** argv) {
  return __main_argc_argv(argc, argv);
}

#endif
#endif
