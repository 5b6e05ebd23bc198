// Downloaded models kept in the browser's Cache Storage, so a second visit loads without the
// network. Written against a small interface so that the package's own cache
// (pipit.cache.list/delete/clear, when it lands) can replace it without touching the page.

export interface CachedModel {
  url: string;
  bytes: number;
}

export interface ModelCache {
  list(): Promise<CachedModel[]>;
  get(url: string): Promise<Blob | null>;
  put(url: string, blob: Blob): Promise<void>;
  delete(url: string): Promise<void>;
  clear(): Promise<void>;
}

const NAME = 'pipit-demo-models';

function available(): boolean {
  return typeof caches !== 'undefined';
}

export const modelCache: ModelCache = {
  async list() {
    if (!available()) return [];
    const cache = await caches.open(NAME);
    const out: CachedModel[] = [];
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      const bytes = Number(response?.headers.get('Content-Length') ?? 0);
      out.push({ url: request.url, bytes });
    }
    return out;
  },
  async get(url) {
    if (!available()) return null;
    const response = await (await caches.open(NAME)).match(url);
    return response ? response.blob() : null;
  },
  async put(url, blob) {
    if (!available()) return;
    const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(blob.size) };
    await (await caches.open(NAME)).put(url, new Response(blob, { headers }));
  },
  async delete(url) {
    if (available()) await (await caches.open(NAME)).delete(url);
  },
  async clear() {
    if (available()) await caches.delete(NAME);
  },
};

/** Fetches `url` with progress (bytes so far, total or 0 when unknown, bytes per second). */
export async function download(
  url: string,
  onProgress: (loaded: number, total: number, bytesPerSecond: number) => void,
  signal?: AbortSignal,
): Promise<Blob> {
  const response = await fetch(url, signal ? { signal } : {});
  if (!response.ok || response.body === null) {
    throw new Error(`download failed: ${url} answered ${response.status} ${response.statusText}`);
  }
  const total = Number(response.headers.get('Content-Length') ?? 0);
  const reader = response.body.getReader();
  const parts: Uint8Array[] = [];
  let loaded = 0;
  const started = performance.now();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    loaded += value.byteLength;
    const seconds = (performance.now() - started) / 1000;
    onProgress(loaded, total, seconds > 0 ? loaded / seconds : 0);
  }
  return new Blob(parts as BlobPart[]);
}
