// C++ exceptions in the threaded WebAssembly engine (Emscripten 3.1.6 with Debian's clang 14).
//
// With -fwasm-exceptions every landing pad the compiler emits stores its index and LSDA into
// the global `__wasm_lpad_context`, calls _Unwind_CallPersonality, and reads back the catch
// selector from it. Emscripten's libunwind declares that context thread_local, but clang 14
// still refers to it as a plain global; with -pthread the two name different addresses, so the
// personality routine never sees the landing pad, no catch clause matches, and every exception
// escapes to JavaScript as a bare WebAssembly.Exception (seen: a one-line try/catch test built
// with -pthread fails, without it passes). The bindings' error translation depends on catching.
//
// This file defines the whole wasm unwinding interface that libunwind's Unwind-wasm.c would
// provide, over a plain global context, so the linker takes these definitions and never pulls
// that member from libunwind. A plain global is shared by all threads: two threads unwinding at
// the very same moment would race. Only the thread that calls into the engine throws in
// practice (pool workers run arithmetic kernels), so the threaded engine accepts that.
#if defined(__EMSCRIPTEN__) && defined(__EMSCRIPTEN_PTHREADS__) && \
    defined(__wasm_exception_handling__)

#include <cstdint>

// The unwinder's types, declared here rather than taken from <unwind.h>: the compiler's own
// header (which em++ finds first) spells several signatures differently from the libunwind
// that libc++abi was built against, and the definitions below must match the latter.
extern "C" {

struct _Unwind_Context;
struct _Unwind_Exception {
  uint64_t exception_class;
  void (*exception_cleanup)(int reason, _Unwind_Exception* exception);
};
constexpr int kForeignExceptionCaught = 1;  // _URC_FOREIGN_EXCEPTION_CAUGHT
constexpr int kCleanupPhase = 2;            // _UA_CLEANUP_PHASE

int __gxx_personality_wasm0(int version, int actions, uint64_t exception_class,
                            _Unwind_Exception* exception, _Unwind_Context* context);

// The layout the compiler writes: inputs lpad_index and lsda, output selector.
struct WasmLandingPadContext {
  uintptr_t lpad_index;
  uintptr_t lsda;
  uintptr_t selector;
};

WasmLandingPadContext __wasm_lpad_context;

namespace {
WasmLandingPadContext* landing_pad(_Unwind_Context* context) {
  return reinterpret_cast<WasmLandingPadContext*>(context);
}
}  // namespace

// Wasm unwinds in one phase: the personality routine only runs the cleanup phase.
int _Unwind_CallPersonality(void* exception_ptr) {
  auto* exception = static_cast<_Unwind_Exception*>(exception_ptr);
  __wasm_lpad_context.selector = 0;
  return __gxx_personality_wasm0(1, kCleanupPhase, exception->exception_class, exception,
                                 reinterpret_cast<_Unwind_Context*>(&__wasm_lpad_context));
}

int _Unwind_RaiseException(_Unwind_Exception* exception) {
  __builtin_wasm_throw(0, exception);
}

void _Unwind_DeleteException(_Unwind_Exception* exception) {
  if (exception->exception_cleanup != nullptr) {
    exception->exception_cleanup(kForeignExceptionCaught, exception);
  }
}

// The personality routine reports the matching catch clause as register 1.
void _Unwind_SetGR(_Unwind_Context* context, int index, uintptr_t value) {
  if (index == 1) landing_pad(context)->selector = value;
}

// The personality routine subtracts one and reads the result as a 1-based call-site index.
uintptr_t _Unwind_GetIP(_Unwind_Context* context) {
  return landing_pad(context)->lpad_index + 2;
}

void _Unwind_SetIP(_Unwind_Context*, uintptr_t) {}

uintptr_t _Unwind_GetLanguageSpecificData(_Unwind_Context* context) {
  return landing_pad(context)->lsda;
}

uintptr_t _Unwind_GetRegionStart(_Unwind_Context*) {
  return 0;
}

}  // extern "C"

#endif
