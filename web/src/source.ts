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

/**
 * A model, or the files of a split GGUF set in any order (e.g. several `File`s from a picker).
 * A URL or path naming the first file of a set (`name-00001-of-00003.gguf`) brings the others.
 */
export type ModelSources = ModelSource | readonly ModelSource[];

export interface SourceOptions {
  onProgress?: ProgressCallback | undefined;
  signal?: AbortSignal | undefined;
  /** Expected SHA-256 of the file (hex), one per file of a split set; a catalog model brings its own. */
  sha256?: string | readonly string[] | undefined;
  /** Keep downloads for the next load and load cached ones without network (default true). */
  cache?: boolean | undefined;
  /** Of a split set, load only the first file (all the metadata: enough for a tokenizer). */
  firstFileOnly?: boolean | undefined;
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

/** A source once catalog ids, hf:// names and file: URLs are resolved. */
type Part =
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'blob'; blob: Blob }
  | { kind: 'path'; path: string }
  | { kind: 'url'; url: string };

async function resolvePart(source: ModelSource, load: Load): Promise<Part> {
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    return { kind: 'bytes', bytes: asBytes(source) };
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) return { kind: 'blob', blob: source };
  let text: string;
  if (source instanceof URL) text = source.href;
  else if (typeof source === 'string') text = source;
  else {
    throw new InvalidArgumentError(
      'Pipit.load(source): source must be a catalog id, hf:// name, URL string, URL, ' +
        'File/Blob, ArrayBuffer or Uint8Array, or an array of them (the files of a split model)',
    );
  }
  if (text.length === 0) throw new InvalidArgumentError('Pipit.load(source): empty source');
  const entry = findCatalogEntry(text);
  if (entry) {
    text = entry.url;
    load.sha256 ??= entry.sha256;
  }
  text = resolveHfUrl(text);
  if (/^https?:\/\//i.test(text) || !isNode()) return { kind: 'url', url: text };
  if (/^file:/i.test(text)) {
    const { fileURLToPath } = await import('node:url');
    return { kind: 'path', path: fileURLToPath(text) };
  }
  return { kind: 'path', path: text };
}

function loadPart(mod: RawModule, part: Part, load: Load): Promise<WasmBytes> {
  switch (part.kind) {
    case 'bytes':
      return fromBytes(mod, part.bytes, load);
    case 'blob':
      return fromBlob(mod, part.blob, load);
    case 'path':
      return fromPath(mod, part.path, load);
    case 'url':
      return fromUrl(mod, part.url, load);
  }
}

// gguf-split names part k of n NAME-0000k-of-0000n.gguf (k from 1, five digits each).
const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})(\.gguf)$/i;

function nameOf(part: Part): string | null {
  if (part.kind === 'path') return part.path;
  if (part.kind === 'url') return part.url.split(/[?#]/)[0]!;
  if (part.kind === 'blob') {
    const name = (part.blob as Blob & { name?: unknown }).name;
    return typeof name === 'string' ? name : null;
  }
  return null;
}

/** Where `part` sits in a split set, by its name: index from 1. */
function splitPosition(part: Part): { index: number; count: number } | null {
  const m = SPLIT_NAME.exec(nameOf(part) ?? '');
  return m ? { index: Number(m[2]), count: Number(m[3]) } : null;
}

/** The URL or path of every file of the set whose first file `part` names; [part] if none. */
function expandSplitSet(part: Part): Part[] {
  if (part.kind !== 'path' && part.kind !== 'url') return [part];
  const where = part.kind === 'path' ? part.path : part.url;
  const cut = part.kind === 'url' ? where.search(/[?#]|$/) : where.length;
  const m = SPLIT_NAME.exec(where.slice(0, cut));
  if (!m || m[3] === '00001') return [part];
  if (m[2] !== '00001') {
    throw new InvalidArgumentError(
      `${where} is file ${Number(m[2])} of a model split into ${Number(m[3])}: load the first ` +
        `file (${m[1]}-00001-of-${m[3]}${m[4]}), which brings the others`,
    );
  }
  const count = Number(m[3]);
  return Array.from({ length: count }, (_, i) => {
    const name = `${m[1]}-${String(i + 1).padStart(5, '0')}-of-${m[3]}${m[4]}${where.slice(cut)}`;
    return part.kind === 'path' ? { kind: 'path', path: name } : { kind: 'url', url: name };
  });
}

/** Bytes of a part before loading it, for one progress total over a split set; null: unknown. */
async function sizeOf(part: Part, which: string, load: Load): Promise<number | null> {
  switch (part.kind) {
    case 'bytes':
      return part.bytes.byteLength;
    case 'blob':
      return part.blob.size;
    case 'path': {
      const fs = await import('node:fs/promises');
      try {
        return (await fs.stat(part.path)).size;
      } catch (e) {
        const reason = (e as Error).message;
        throw new LoadError(`${which} of the split model, ${part.path}, cannot be read: ${reason}`, {
          cause: e,
        });
      }
    }
    case 'url': {
      const key = absoluteUrl(part.url);
      if (load.cache && /^https?:\/\//i.test(key)) {
        const hit = await cacheBackend().lookup(key).catch(() => null);
        if (hit && hit.size > 0) return hit.size;
      }
      let response: Response;
      try {
        response = await fetch(part.url, {
          method: 'HEAD',
          ...(load.signal ? { signal: load.signal } : {}),
        });
      } catch {
        return null; // the download itself reports what is wrong
      }
      if (response.status === 404 || response.status === 410) {
        throw new LoadError(
          `${which} of the split model, ${part.url}, is missing (HTTP ${response.status})`,
        );
      }
      const length = Number(response.headers.get('content-length') ?? NaN);
      const encoded = (response.headers.get('content-encoding') ?? 'identity') !== 'identity';
      return response.ok && !encoded && Number.isSafeInteger(length) ? length : null;
    }
  }
}

function checkShas(value: unknown, count: number): (string | null)[] {
  if (Array.isArray(value)) {
    if (value.length !== count) {
      throw new InvalidArgumentError(
        `Pipit.load: sha256 has ${value.length} hashes but the model has ${count} files`,
      );
    }
    return value.map(checkSha256);
  }
  if (count > 1 && value !== undefined && value !== null) {
    throw new InvalidArgumentError(
      `Pipit.load: the model has ${count} files; give sha256 as an array of ${count} hashes`,
    );
  }
  return Array.from({ length: count }, () => checkSha256(value));
}

/**
 * Copies `sources` into the WASM heap, one allocation per file (several for a split set, in
 * order); the caller owns the returned allocations.
 */
export async function copyIntoWasm(
  mod: RawModule,
  sources: ModelSources,
  options: SourceOptions = {},
): Promise<WasmBytes[]> {
  const load: Load = {
    onProgress: options.onProgress,
    signal: options.signal,
    sha256: null,
    cache: options.cache ?? true,
  };
  if (typeof load.cache !== 'boolean') {
    throw new InvalidArgumentError('Pipit.load: cache must be true or false');
  }
  checkAbort(load.signal);
  const list: readonly ModelSource[] = Array.isArray(sources) ? sources : [sources as ModelSource];
  if (list.length === 0) throw new InvalidArgumentError('Pipit.load(source): empty array of sources');
  let parts: Part[] = [];
  for (const source of list) parts.push(await resolvePart(source, load));
  if (parts.length === 1) {
    parts = expandSplitSet(parts[0]!);
  } else {
    // Files picked together arrive in any order; their names say the right one.
    const positions = parts.map(splitPosition);
    if (positions.every((p) => p !== null)) {
      const order = parts.map((part, i) => ({ part, index: positions[i]!.index }));
      parts = order.sort((a, b) => a.index - b.index).map((o) => o.part);
    }
  }
  if (options.firstFileOnly) parts = parts.slice(0, 1);
  const catalogSha = load.sha256;
  const shas = checkShas(options.sha256 ?? catalogSha ?? undefined, parts.length);
  if (parts.length === 1) return [await loadPart(mod, parts[0]!, { ...load, sha256: shas[0]! })];

  const which = (i: number): string => `file ${i + 1} of ${parts.length}`;
  const sizes = await Promise.all(parts.map((part, i) => sizeOf(part, which(i), load)));
  const total = sizes.every((s) => s !== null) ? sizes.reduce((a, b) => a! + b!, 0)! : 0;
  const loaded: WasmBytes[] = [];
  try {
    let before = 0;
    for (let i = 0; i < parts.length; ++i) {
      checkAbort(load.signal);
      const bytes = await loadPart(mod, parts[i]!, {
        ...load,
        sha256: shas[i]!,
        onProgress: load.onProgress && ((p) => load.onProgress!({ loaded: before + p.loaded, total })),
      });
      loaded.push(bytes);
      before += bytes.size;
    }
  } catch (e) {
    for (const bytes of loaded) mod._free(bytes.ptr);
    throw e;
  }
  return loaded;
}
