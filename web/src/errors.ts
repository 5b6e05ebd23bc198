// Typed errors. The C++ runtime throws pipit::Error with a kind; the bindings turn it into a JS
// Error with `pipitKind`, and toPipitError() picks the subclass below, so callers can write
// `if (e instanceof ContextOverflowError)`.

export type PipitErrorKind =
  | 'InvalidArgument'
  | 'Format'
  | 'Unsupported'
  | 'ContextOverflow'
  | 'OutOfMemory'
  | 'Aborted'
  | 'Load'
  | 'Integrity'
  | 'Disposed'
  | 'Worker'
  | 'Internal';

export class PipitError extends Error {
  readonly kind: PipitErrorKind;
  constructor(message: string, kind: PipitErrorKind = 'Internal', options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = 'PipitError';
  }
}

/** The file is not a valid GGUF, or is truncated or internally inconsistent. */
export class FormatError extends PipitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'Format', options);
    this.name = 'FormatError';
  }
}

/** A valid file that uses something pipit does not implement (architecture, tensor type...). */
export class UnsupportedError extends PipitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'Unsupported', options);
    this.name = 'UnsupportedError';
  }
}

/** The tokens do not fit the context window. */
export class ContextOverflowError extends PipitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ContextOverflow', options);
    this.name = 'ContextOverflowError';
  }
}

/** A bad option or argument. */
export class InvalidArgumentError extends PipitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'InvalidArgument', options);
    this.name = 'InvalidArgumentError';
  }
}

/** WASM memory could not hold the model or its buffers. */
export class OutOfMemoryError extends PipitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'OutOfMemory', options);
    this.name = 'OutOfMemoryError';
  }
}

/** The caller cancelled (AbortSignal). */
export class AbortError extends PipitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'Aborted', options);
    this.name = 'AbortError';
  }
}

/** The model could not be read: network or file-system problem. */
export class LoadError extends PipitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'Load', options);
    this.name = 'LoadError';
  }
}

/** The model file's SHA-256 is not the one the caller or the catalog expected. */
export class IntegrityError extends PipitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'Integrity', options);
    this.name = 'IntegrityError';
  }
}

/** An engine's worker stopped (crashed, ran out of memory, or was killed); create a new engine. */
export class WorkerError extends PipitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'Worker', options);
    this.name = 'WorkerError';
  }
}

/** Converts whatever the WASM engine threw into a PipitError (subclass). */
export function toPipitError(e: unknown): PipitError {
  if (e instanceof PipitError) return e;
  if (e instanceof Error) {
    const kind = (e as Error & { pipitKind?: unknown }).pipitKind;
    const message = e.message;
    switch (kind) {
      case 'InvalidArgument':
        return new InvalidArgumentError(message);
      case 'Format':
        return new FormatError(message);
      case 'Unsupported':
        return new UnsupportedError(message);
      case 'ContextOverflow':
        return new ContextOverflowError(message);
      case 'OutOfMemory':
        return new OutOfMemoryError(message);
      case 'Aborted':
        return new AbortError(message);
      case 'Internal':
        return new PipitError(message, 'Internal');
      default:
        break;
    }
    // Emscripten reports a refused compile as an abort, which is no bug of ours: say what to fix.
    if (/Content Security [Pp]olicy/.test(message)) {
      return new LoadError(
        `the page's Content-Security-Policy does not allow WebAssembly: add 'wasm-unsafe-eval' ` +
          `to its script-src (see pipit's README, Security) (${message})`,
        { cause: e },
      );
    }
    if (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) {
      return new PipitError(
        `the WASM engine crashed (${message}); this is a bug in pipit, and this model ` +
          'instance should not be used any more',
        'Internal',
        { cause: e },
      );
    }
    return new PipitError(message, 'Internal', { cause: e });
  }
  return new PipitError(String(e), 'Internal', { cause: e });
}

/** Calls into the engine, converting its errors. */
export function native<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw toPipitError(e);
  }
}

/**
 * A caller's value as an error message shows it. Never throws, unlike String(), which does for
 * an object without a prototype or with a throwing toString (found by tests/fuzz/js).
 */
export function shown(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
