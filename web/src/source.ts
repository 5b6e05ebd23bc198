// Copies a model file into WASM memory exactly once: _malloc the file's size, then write the
// bytes (in chunks while they stream in) straight into the heap. The C++ side takes ownership
// of the pointer. Downloads pass through the model cache (cache.ts) and, when a sha256 is
// known, an incremental hash of the same chunks.

import type { CacheWriter } from './cache.js';
import { cacheBackend } from './cache.js';
import { findCatalogEntry } from './catalog.js';
import type { RawModule } from './engine.js';
import { isNode } from './engine.js';
import {
  AbortError,
  IntegrityError,
  InvalidArgumentError,
  LoadError,
  OutOfMemoryError,
} from './errors.js';
import { resolveHfUrl } from './hf.js';

/**
 * Where a model comes from. A string is a catalog id (models/catalog.json), an
 * `hf://owner/repo[@revision]/file.gguf` name, a URL (http, https, relative in a page) or, in
 * Node, a path.
 */
export type ModelSource = string | URL | Blob | ArrayBuffer | ArrayBufferView;

export interface SourceOptions {
  onProgress?: ProgressCallback | undefined;
  signal?: AbortSignal | undefined;
  /** Expected SHA-256 of the file (hex); a catalog model brings its own. */
  sha256?: string | undefined;
  /** Keep downloads for the next load and load cached ones without network (default true). */
  cache?: boolean | undefined;
}

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
    private readonly hasher: Hasher | null = null,
    private readonly sink: CacheWriter | null = null,
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
    this.hasher?.update(chunk);
  }

  /** Also hands the chunk to the cache, waiting while the disk catches up. */
  async writeAndStore(chunk: Uint8Array): Promise<void> {
    this.write(chunk);
    await this.sink?.write(chunk);
  }

  free(): void {
    this.mod._free(this.ptr);
  }
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('loading was aborted');
}

interface Hasher {
  update(chunk: Uint8Array): void;
  hex(): string;
}

// Node's native SHA-256 where there is one; WebCrypto has no incremental digest, so browsers
// use @noble/hashes (loaded only when a hash is asked for).
async function createHasher(): Promise<Hasher> {
  if (isNode()) {
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256');
    return { update: (chunk) => hash.update(chunk), hex: () => hash.digest('hex') };
  }
  const [{ sha256 }, { bytesToHex }] = await Promise.all([
    import('@noble/hashes/sha2.js'),
    import('@noble/hashes/utils.js'),
  ]);
  const hash = sha256.create();
  return { update: (chunk) => hash.update(chunk), hex: () => bytesToHex(hash.digest()) };
}

/** What to check and store while filling: the expected hash, and where the download is kept. */
interface FillChecks {
  what: string;
  sha256: string | null;
  hasher: Hasher | null;
  sink: CacheWriter | null;
  /** Runs when the hash does not match (a cached copy deletes itself). */
  onMismatch?: () => Promise<void>;
}

async function newWriter(
  mod: RawModule,
  size: number,
  what: string,
  sha256: string | null,
  sink: CacheWriter | null = null,
): Promise<{ writer: HeapWriter; checks: FillChecks }> {
  try {
    const hasher = sha256 === null ? null : await createHasher();
    return {
      writer: new HeapWriter(mod, size, what, hasher, sink),
      checks: { what, sha256, hasher, sink },
    };
  } catch (e) {
    await sink?.abort().catch(() => undefined);
    throw e;
  }
}

async function fillFrom(
  writer: HeapWriter,
  checks: FillChecks,
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
    if (checks.hasher && checks.sha256 !== null) {
      const actual = checks.hasher.hex();
      if (actual !== checks.sha256) {
        await checks.onMismatch?.();
        throw new IntegrityError(
          `${checks.what} has SHA-256 ${actual}, but ${checks.sha256} was expected: the file ` +
            'is corrupt, was changed on the server, or the expected hash is wrong',
        );
      }
    }
    // A cache that cannot store the file (quota, read-only disk) does not fail the load.
    await checks.sink?.commit().catch(() => checks.sink?.abort().catch(() => undefined));
    return { ptr: writer.ptr, size: writer.size };
  } catch (e) {
    writer.free();
    await checks.sink?.abort().catch(() => undefined);
    throw e;
  }
}

function asBytes(source: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
}

/** The loader's settings once the source is known: the expected hash, normalized. */
interface Load {
  onProgress: ProgressCallback | undefined;
  signal: AbortSignal | undefined;
  sha256: string | null;
  cache: boolean;
}

async function fromBytes(mod: RawModule, bytes: Uint8Array, load: Load): Promise<WasmBytes> {
  const { writer, checks } = await newWriter(mod, bytes.byteLength, 'the model', load.sha256);
  return fillFrom(writer, checks, async (w) => {
    w.write(bytes);
    load.onProgress?.({ loaded: bytes.byteLength, total: bytes.byteLength });
  });
}

async function fromBlob(mod: RawModule, blob: Blob, load: Load): Promise<WasmBytes> {
  const { writer, checks } = await newWriter(mod, blob.size, describe(blob), load.sha256);
  return fillFrom(writer, checks, async (w) => {
    load.onProgress?.({ loaded: 0, total: blob.size });
    for (let offset = 0; offset < blob.size; offset += CHUNK) {
      checkAbort(load.signal);
      let chunk: ArrayBuffer;
      try {
        chunk = await blob.slice(offset, Math.min(offset + CHUNK, blob.size)).arrayBuffer();
      } catch (e) {
        throw new LoadError(`cannot read ${checks.what}: ${(e as Error).message}`, { cause: e });
      }
      w.write(new Uint8Array(chunk));
      load.onProgress?.({ loaded: w.written, total: blob.size });
    }
  });
}

async function fromPath(
  mod: RawModule,
  path: string,
  load: Load,
  onMismatch?: () => Promise<void>,
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
    const { writer, checks } = await newWriter(mod, size, path, load.sha256);
    if (onMismatch) checks.onMismatch = onMismatch;
    return await fillFrom(writer, checks, async (w) => {
      load.onProgress?.({ loaded: 0, total: size });
      const buffer = new Uint8Array(Math.min(CHUNK, Math.max(size, 1)));
      while (w.written < size) {
        checkAbort(load.signal);
        const want = Math.min(buffer.byteLength, size - w.written);
        let n: number;
        try {
          ({ bytesRead: n } = await handle.read(buffer, 0, want, w.written));
        } catch (e) {
          throw new LoadError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
        }
        if (n === 0) break;
        w.write(buffer.subarray(0, n));
        load.onProgress?.({ loaded: w.written, total: size });
      }
    });
  } finally {
    await handle.close();
  }
}

function absoluteUrl(url: string): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  try {
    return new URL(url, base).href;
  } catch {
    return url;
  }
}

async function fromUrl(mod: RawModule, url: string, load: Load): Promise<WasmBytes> {
  const key = absoluteUrl(url);
  const store = load.cache && /^https?:\/\//i.test(key) ? cacheBackend() : null;
  if (store) {
    const hit = await store.lookup(key).catch(() => null);
    if (hit) {
      const forget = async (): Promise<void> => {
        await store.delete(key);
      };
      if ('path' in hit) return fromPath(mod, hit.path, load, forget);
      return fromResponse(mod, hit.response, `${url} (cached)`, load, null, forget);
    }
  }
  let response: Response;
  try {
    response = load.signal ? await fetch(url, { signal: load.signal }) : await fetch(url);
  } catch (e) {
    if (load.signal?.aborted) throw new AbortError('loading was aborted', { cause: e });
    throw new LoadError(`cannot fetch ${url}: ${(e as Error).message}`, { cause: e });
  }
  if (!response.ok) {
    throw new LoadError(
      `fetching ${url} failed with HTTP ${response.status} ${response.statusText}`.trim(),
    );
  }
  return fromResponse(mod, response, url, load, store ? key : null);
}

async function fromResponse(
  mod: RawModule,
  response: Response,
  what: string,
  load: Load,
  cacheKey: string | null,
  onMismatch?: () => Promise<void>,
): Promise<WasmBytes> {
  const lengthHeader = response.headers.get('content-length');
  const encoding = response.headers.get('content-encoding');
  const declared = lengthHeader === null ? NaN : Number(lengthHeader);
  // With a content encoding, Content-Length counts compressed bytes, not the file's.
  const known =
    Number.isSafeInteger(declared) && declared >= 0 && (!encoding || encoding === 'identity');
  const body = response.body;
  const { signal, onProgress } = load;

  if (known && body) {
    const sink =
      cacheKey === null ? null : await cacheBackend().writer(cacheKey, declared).catch(() => null);
    const { writer, checks } = await newWriter(mod, declared, what, load.sha256, sink);
    if (onMismatch) checks.onMismatch = onMismatch;
    return fillFrom(writer, checks, async (w) => {
      onProgress?.({ loaded: 0, total: declared });
      await pump(body, signal, async (chunk) => {
        await w.writeAndStore(chunk);
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
  const sink =
    cacheKey === null ? null : await cacheBackend().writer(cacheKey, loaded).catch(() => null);
  const { writer, checks } = await newWriter(mod, loaded, what, load.sha256, sink);
  if (onMismatch) checks.onMismatch = onMismatch;
  return fillFrom(writer, checks, async (w) => {
    for (const c of chunks) await w.writeAndStore(c);
    onProgress?.({ loaded, total: loaded });
  });
}

async function pump(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
  onChunk: (chunk: Uint8Array) => Promise<void> | void,
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
      await onChunk(result.value);
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e;
  } finally {
    reader.releaseLock();
  }
}

function checkSha256(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{64}$/.test(value)) {
    throw new InvalidArgumentError(
      `Pipit.load: sha256 must be 64 hexadecimal digits, got ${JSON.stringify(value)}`,
    );
  }
  return value.toLowerCase();
}

/** Copies `source` into the WASM heap; the caller owns the returned allocation. */
export async function copyIntoWasm(
  mod: RawModule,
  source: ModelSource,
  options: SourceOptions = {},
): Promise<WasmBytes> {
  const load: Load = {
    onProgress: options.onProgress,
    signal: options.signal,
    sha256: checkSha256(options.sha256),
    cache: options.cache ?? true,
  };
  if (typeof load.cache !== 'boolean') {
    throw new InvalidArgumentError('Pipit.load: cache must be true or false');
  }
  checkAbort(load.signal);
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    return fromBytes(mod, asBytes(source), load);
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    return fromBlob(mod, source, load);
  }
  let text: string;
  if (source instanceof URL) text = source.href;
  else if (typeof source === 'string') text = source;
  else {
    throw new InvalidArgumentError(
      'Pipit.load(source): source must be a catalog id, hf:// name, URL string, URL, ' +
        'File/Blob, ArrayBuffer or Uint8Array',
    );
  }
  if (text.length === 0) throw new InvalidArgumentError('Pipit.load(source): empty source');
  const entry = findCatalogEntry(text);
  if (entry) {
    text = entry.url;
    load.sha256 ??= entry.sha256;
  }
  text = resolveHfUrl(text);
  if (/^https?:\/\//i.test(text)) return fromUrl(mod, text, load);
  if (isNode()) {
    if (/^file:/i.test(text)) {
      const { fileURLToPath } = await import('node:url');
      return fromPath(mod, fileURLToPath(text), load);
    }
    return fromPath(mod, text, load);
  }
  return fromUrl(mod, text, load);
}
