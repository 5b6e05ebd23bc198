// The JS side of pipit_relaxed_dot_add (runtime/core/simd128.h): the relaxed-SIMD engines call
// it nowhere once web/scripts/relaxed-dot-add.mjs has rewritten the module after linking.
mergeInto(LibraryManager.library, {
  pipit_relaxed_dot_add: function () {
    throw new Error('pipit: this relaxed-SIMD module was not post-processed by web/scripts/relaxed-dot-add.mjs');
  },
});
