// Downloaded models kept for the next load, which then needs no network at all: Cache Storage
// in browsers, a directory in Node ($PIPIT_CACHE_DIR, else $XDG_CACHE_HOME/pipit or
// ~/.cache/pipit). Entries are keyed by the exact URL the file was fetched from.

import { isNode } from './engine.js';
import { findCatalogEntry } from './catalog.js';
import { InvalidArgumentError } from './errors.js';
import { resolveHfUrl } from './hf.js';

/** One cached model file. */
export interface CachedModel {
  /** The URL it was downloaded from (the cache key). */
  url: string;
  size: number;
  /** When it was stored (milliseconds since 1970). */
  storedAt: number;
}

/** A cached file: a path to read in Node, a stored response in browsers. */
export type CacheHit = { path: string; size: number } | { response: Response; size: number };

/** Receives a download as it streams in; nothing is stored unless commit() is called. */
export interface CacheWriter {
  write(chunk: Uint8Array): Promise<void> | void;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

interface CacheBackend {
  lookup(url: string): Promise<CacheHit | null>;
  /** null when this environment cannot cache (no Cache Storage, e.g. an insecure page). */
  writer(url: string, size: number | null): Promise<CacheWriter | null>;
  list(): Promise<CachedModel[]>;
  delete(url: string): Promise<boolean>;
  clear(): Promise<void>;
}

const CACHE_NAME = 'pipit-models';
const STORED_AT_HEADER = 'x-pipit-stored-at';

type Fs = typeof import('node:fs/promises');

async function nodeModules(): Promise<{
  fs: Fs;
  path: typeof import('node:path');
  os: typeof import('node:os');
  crypto: typeof import('node:crypto');
}> {
  const [fs, path, os, crypto] = await Promise.all([
    import('node:fs/promises'),
    import('node:path'),
    import('node:os'),
    import('node:crypto'),
  ]);
  return { fs, path, os, crypto };
}

/** Node: `<dir>/<key>.gguf` holds the file, `<key>.json` its URL, size and date. */
class DirectoryCache implements CacheBackend {
  async #where(url: string): Promise<{ dir: string; file: string; meta: string; fs: Fs }> {
    const { fs, path, crypto } = await nodeModules();
    const dir = await cacheDirectory();
    // A hash of the URL: file names stay short and free of characters file systems reject.
    const key = crypto.createHash('sha256').update(url).digest('hex').slice(0, 40);
    return { dir, file: path.join(dir, `${key}.gguf`), meta: path.join(dir, `${key}.json`), fs };
  }

  async lookup(url: string): Promise<CacheHit | null> {
    const { file, meta, fs } = await this.#where(url);
    const entry = await readMeta(fs, meta);
    if (!entry || entry.url !== url) return null;
    try {
      const stat = await fs.stat(file);
      return stat.isFile() && stat.size === entry.size ? { path: file, size: stat.size } : null;
    } catch {
      return null;
    }
  }

  async writer(url: string): Promise<CacheWriter> {
    const { dir, file, meta, fs } = await this.#where(url);
    await fs.mkdir(dir, { recursive: true });
    // A partial name of its own: a crash or a concurrent download never leaves a torn .gguf.
    const partial = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.part`;
    const handle = await fs.open(partial, 'w');
    let size = 0;
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await handle.close();
    };
    return {
      write: async (chunk) => {
        await handle.write(chunk);
        size += chunk.byteLength;
      },
      commit: async () => {
        await close();
        await fs.rename(partial, file);
        const entry: CachedModel = { url, size, storedAt: Date.now() };
        await fs.writeFile(meta, JSON.stringify(entry));
      },
      abort: async () => {
        await close().catch(() => undefined);
        await fs.rm(partial, { force: true });
      },
    };
  }

  async list(): Promise<CachedModel[]> {
    const { fs, path } = await nodeModules();
    const dir = await cacheDirectory();
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    const found: CachedModel[] = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const entry = await readMeta(fs, path.join(dir, name));
      if (entry && (await this.lookup(entry.url))) found.push(entry);
    }
    return found;
  }

  async delete(url: string): Promise<boolean> {
    const { file, meta, fs } = await this.#where(url);
    const entry = await readMeta(fs, meta);
    if (!entry || entry.url !== url) return false;
    await fs.rm(meta, { force: true });
    await fs.rm(file, { force: true });
    return true;
  }

  async clear(): Promise<void> {
    const { fs, path } = await nodeModules();
    const dir = await cacheDirectory();
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    // Only pipit's own files: the directory may be one the user shares with other things.
    const ours = /^[0-9a-f]{40}\.(gguf|json|gguf\.\d+\.[0-9a-z]+\.part)$/;
    await Promise.all(
      names.filter((n) => ours.test(n)).map((n) => fs.rm(path.join(dir, n), { force: true })),
    );
  }
}

async function readMeta(fs: Fs, file: string): Promise<CachedModel | null> {
  try {
    const value = JSON.parse(await fs.readFile(file, 'utf8')) as Partial<CachedModel>;
    if (typeof value.url !== 'string' || !Number.isSafeInteger(value.size)) return null;
    return { url: value.url, size: value.size as number, storedAt: Number(value.storedAt) || 0 };
  } catch {
    // Missing or torn metadata: not an entry.
    return null;
  }
}

/** Browsers: one Cache Storage cache; the stored response streams into the cache as it downloads. */
class BrowserCache implements CacheBackend {
  #open(): Promise<Cache> | null {
    // Cache Storage exists only in secure contexts (https, localhost, 127.0.0.1).
    if (typeof caches === 'undefined') return null;
    return caches.open(CACHE_NAME);
  }

  async lookup(url: string): Promise<CacheHit | null> {
    const cache = await this.#open();
    const response = await cache?.match(url);
    if (!response || !response.body) return null;
    const size = Number(response.headers.get('content-length'));
    return { response, size: Number.isSafeInteger(size) ? size : 0 };
  }

  async writer(url: string, size: number | null): Promise<CacheWriter | null> {
    const cache = await this.#open();
    if (!cache) return null;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => (controller = c) });
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      [STORED_AT_HEADER]: String(Date.now()),
    };
    if (size !== null) headers['content-length'] = String(size);
    // put() stores nothing unless the body ends normally, so a failed load leaves no entry.
    const stored = cache.put(url, new Response(body, { headers }));
    stored.catch(() => undefined);
    return {
      // The chunk is the download's own buffer, already copied into WASM: no second copy.
      write: (chunk) => controller.enqueue(chunk),
      commit: async () => {
        controller.close();
        await stored;
      },
      abort: async () => {
        controller.error(new Error('the download did not complete'));
        await stored.catch(() => undefined);
      },
    };
  }

  async list(): Promise<CachedModel[]> {
    const cache = await this.#open();
    if (!cache) return [];
    const found: CachedModel[] = [];
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      if (!response) continue;
      let size = Number(response.headers.get('content-length'));
      if (!Number.isSafeInteger(size)) size = (await response.blob()).size;
      found.push({
        url: request.url,
        size,
        storedAt: Number(response.headers.get(STORED_AT_HEADER)) || 0,
      });
    }
    return found;
  }

  async delete(url: string): Promise<boolean> {
    const cache = await this.#open();
    return cache ? cache.delete(url) : false;
  }

  async clear(): Promise<void> {
    if (typeof caches !== 'undefined') await caches.delete(CACHE_NAME);
  }
}

let backendInstance: CacheBackend | null = null;

/** @internal The cache of this environment. */
export function cacheBackend(): CacheBackend {
  backendInstance ??= isNode() ? new DirectoryCache() : new BrowserCache();
  return backendInstance;
}

/** Node: the cache directory ($PIPIT_CACHE_DIR, $XDG_CACHE_HOME/pipit or ~/.cache/pipit). */
export async function cacheDirectory(): Promise<string> {
  const { path, os } = await nodeModules();
  const env = process.env;
  if (env.PIPIT_CACHE_DIR) return path.resolve(env.PIPIT_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'pipit');
}

/** @internal The URL a model name stands for: catalog ids and hf:// become https URLs. */
export function modelUrlOf(model: string): string {
  const entry = findCatalogEntry(model);
  if (entry) return entry.url;
  return resolveHfUrl(model);
}

function checkUrl(where: string, url: unknown): string {
  if (typeof url !== 'string' && !(url instanceof URL)) {
    throw new InvalidArgumentError(`${where}: give the model's URL, hf:// name or catalog id`);
  }
  return modelUrlOf(url instanceof URL ? url.href : url);
}

/** The models downloaded so far (see LoadOptions.cache). */
export const cache = Object.freeze({
  /** Every cached model file. */
  list(): Promise<CachedModel[]> {
    return cacheBackend().list();
  },
  /** Removes one model (its URL, hf:// name or catalog id); false when it was not cached. */
  delete(url: string | URL): Promise<boolean> {
    return cacheBackend().delete(checkUrl('cache.delete', url));
  },
  /** Removes every cached model. */
  clear(): Promise<void> {
    return cacheBackend().clear();
  },
});
