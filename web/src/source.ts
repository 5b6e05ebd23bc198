// Copies a model file into WASM memory exactly once: _malloc the file's size, then write the
// bytes (in chunks while they stream in) straight into the heap. The C++ side takes ownership
// of the pointer.

import type { RawModule } from './engine.js';
import { isNode } from './engine.js';
import { AbortError, InvalidArgumentError, LoadError, OutOfMemoryError } from './errors.js';

/** Where a model comes from. A string is a URL (http, https, relative in a page) or, in Node, a path. */
export type ModelSource = string | URL | Blob | ArrayBuffer | ArrayBufferView;

/** `total` is 0 while the size is unknown (a response without Content-Length). */
export interface LoadProgress {
  loaded: number;
  total: number;
}

export type ProgressCallback = (progress: LoadProgress) => void;

export interface WasmBytes {
  ptr: number;
  size: number;
}

const CHUNK = 8 << 20;
// wasm32 addresses 4 GiB, and the engine needs room besides the file.
const MAX_FILE_BYTES = 4 * 1024 * 1024 * 1024 - (256 << 20);

function describe(source: ModelSource): string {
  if (typeof source === 'string') return source;
  if (source instanceof URL) return source.href;
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    const name = (source as Blob & { name?: unknown }).name;
    return typeof name === 'string' ? name : 'the Blob';
  }
  return 'the given bytes';
}

/** One allocation in the WASM heap, filled front to back. */
class HeapWriter {
  readonly ptr: number;
  written = 0;
  constructor(
    private readonly mod: RawModule,
    readonly size: number,
    what: string,
  ) {
    if (size > MAX_FILE_BYTES) {
      throw new OutOfMemoryError(
        `${what} is ${size} bytes; WASM memory (4 GB at most) cannot hold it. Use a smaller ` +
          'or more strongly quantized model',
      );
    }
    const ptr = mod._malloc(Math.max(size, 1));
    if (ptr === 0) {
      throw new OutOfMemoryError(
        `could not allocate ${size} bytes of WASM memory for ${what}; the browser or Node ` +
          'refused to grow the heap. Close other models (dispose()) or use a smaller model',
      );
    }
    this.ptr = ptr;
  }

  write(chunk: Uint8Array): void {
    if (this.written + chunk.byteLength > this.size) {
      throw new LoadError(
        `received more bytes than announced (${this.size}); the file changed while loading ` +
          'or the server sent a wrong Content-Length',
      );
    }
    // HEAPU8 is re-read every time: the heap may have grown (and the old view detached).
    this.mod.HEAPU8.set(chunk, this.ptr + this.written);
    this.written += chunk.byteLength;
  }

  free(): void {
    this.mod._free(this.ptr);
  }
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('loading was aborted');
}

async function fillFrom(
  writer: HeapWriter,
  fill: (w: HeapWriter) => Promise<void>,
): Promise<WasmBytes> {
  try {
    await fill(writer);
    if (writer.written !== writer.size) {
      throw new LoadError(
        `the source ended after ${writer.written} of ${writer.size} bytes; the download or ` +
          'read was cut short',
      );
    }
    return { ptr: writer.ptr, size: writer.size };
  } catch (e) {
    writer.free();
    throw e;
  }
}

function asBytes(source: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
}

async function fromBytes(
  mod: RawModule,
  bytes: Uint8Array,
  onProgress: ProgressCallback | undefined,
): Promise<WasmBytes> {
  const writer = new HeapWriter(mod, bytes.byteLength, 'the model');
  return fillFrom(writer, async (w) => {
    w.write(bytes);
    onProgress?.({ loaded: bytes.byteLength, total: bytes.byteLength });
  });
}

async function fromBlob(
  mod: RawModule,
  blob: Blob,
  onProgress: ProgressCallback | undefined,
  signal: AbortSignal | undefined,
): Promise<WasmBytes> {
  const what = describe(blob);
  const writer = new HeapWriter(mod, blob.size, what);
  return fillFrom(writer, async (w) => {
    onProgress?.({ loaded: 0, total: blob.size });
    for (let offset = 0; offset < blob.size; offset += CHUNK) {
      checkAbort(signal);
      let chunk: ArrayBuffer;
      try {
        chunk = await blob.slice(offset, Math.min(offset + CHUNK, blob.size)).arrayBuffer();
      } catch (e) {
        throw new LoadError(`cannot read ${what}: ${(e as Error).message}`, { cause: e });
      }
      w.write(new Uint8Array(chunk));
      onProgress?.({ loaded: w.written, total: blob.size });
    }
  });
}

async function fromPath(
  mod: RawModule,
  path: string,
  onProgress: ProgressCallback | undefined,
  signal: AbortSignal | undefined,
): Promise<WasmBytes> {
  const fs = await import('node:fs/promises');
  let handle: Awaited<ReturnType<typeof fs.open>>;
  try {
    handle = await fs.open(path, 'r');
  } catch (e) {
    const code = (e as { code?: string }).code;
    const hint = code === 'ENOENT' ? ' (no such file)' : code === 'EACCES' ? ' (permission)' : '';
    throw new LoadError(`cannot open model file ${path}${hint}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new LoadError(`${path} is not a regular file`);
    const size = stat.size;
    const writer = new HeapWriter(mod, size, path);
    return await fillFrom(writer, async (w) => {
      onProgress?.({ loaded: 0, total: size });
      const buffer = new Uint8Array(Math.min(CHUNK, Math.max(size, 1)));
      while (w.written < size) {
        checkAbort(signal);
        const want = Math.min(buffer.byteLength, size - w.written);
        let n: number;
        try {
          ({ bytesRead: n } = await handle.read(buffer, 0, want, w.written));
        } catch (e) {
          throw new LoadError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
        }
        if (n === 0) break;
        w.write(buffer.subarray(0, n));
        onProgress?.({ loaded: w.written, total: size });
      }
    });
  } finally {
    await handle.close();
  }
}

async function fromUrl(
  mod: RawModule,
  url: string,
  onProgress: ProgressCallback | undefined,
  signal: AbortSignal | undefined,
): Promise<WasmBytes> {
  let response: Response;
  try {
    response = signal ? await fetch(url, { signal }) : await fetch(url);
  } catch (e) {
    if (signal?.aborted) throw new AbortError('loading was aborted', { cause: e });
    throw new LoadError(`cannot fetch ${url}: ${(e as Error).message}`, { cause: e });
  }
  if (!response.ok) {
    throw new LoadError(
      `fetching ${url} failed with HTTP ${response.status} ${response.statusText}`.trim(),
    );
  }
  const lengthHeader = response.headers.get('content-length');
  const encoding = response.headers.get('content-encoding');
  const declared = lengthHeader === null ? NaN : Number(lengthHeader);
  // With a content encoding, Content-Length counts compressed bytes, not the file's.
  const known =
    Number.isSafeInteger(declared) && declared >= 0 && (!encoding || encoding === 'identity');
  const body = response.body;

  if (known && body) {
    const writer = new HeapWriter(mod, declared, url);
    return fillFrom(writer, async (w) => {
      onProgress?.({ loaded: 0, total: declared });
      await pump(body, signal, (chunk) => {
        w.write(chunk);
        onProgress?.({ loaded: w.written, total: declared });
      });
    });
  }

  // Unknown size: keep the chunks in JS until the end, then copy them into WASM once.
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  if (body) {
    await pump(body, signal, (chunk) => {
      chunks.push(chunk);
      loaded += chunk.byteLength;
      onProgress?.({ loaded, total: 0 });
    });
  } else {
    const all = new Uint8Array(await response.arrayBuffer());
    chunks.push(all);
    loaded = all.byteLength;
  }
  const writer = new HeapWriter(mod, loaded, url);
  return fillFrom(writer, async (w) => {
    for (const c of chunks) w.write(c);
    onProgress?.({ loaded, total: loaded });
  });
}

async function pump(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
  onChunk: (chunk: Uint8Array) => void,
): Promise<void> {
  const reader = body.getReader();
  try {
    for (;;) {
      checkAbort(signal);
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (e) {
        if (signal?.aborted) throw new AbortError('loading was aborted', { cause: e });
        throw new LoadError(`the download broke off: ${(e as Error).message}`, { cause: e });
      }
      if (result.done) return;
      onChunk(result.value);
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e;
  } finally {
    reader.releaseLock();
  }
}

/** Copies `source` into the WASM heap; the caller owns the returned allocation. */
export async function copyIntoWasm(
  mod: RawModule,
  source: ModelSource,
  onProgress: ProgressCallback | undefined,
  signal: AbortSignal | undefined,
): Promise<WasmBytes> {
  checkAbort(signal);
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    return fromBytes(mod, asBytes(source), onProgress);
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    return fromBlob(mod, source, onProgress, signal);
  }
  let text: string;
  if (source instanceof URL) text = source.href;
  else if (typeof source === 'string') text = source;
  else {
    throw new InvalidArgumentError(
      'Pipit.load(source): source must be a URL string, URL, File/Blob, ArrayBuffer or Uint8Array',
    );
  }
  if (text.length === 0) throw new InvalidArgumentError('Pipit.load(source): empty source');
  if (/^https?:\/\//i.test(text)) return fromUrl(mod, text, onProgress, signal);
  if (isNode()) {
    if (/^file:/i.test(text)) {
      const { fileURLToPath } = await import('node:url');
      return fromPath(mod, fileURLToPath(text), onProgress, signal);
    }
    return fromPath(mod, text, onProgress, signal);
  }
  return fromUrl(mod, text, onProgress, signal);
}
