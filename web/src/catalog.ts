// The models of models/catalog.json (copied next to this module by the build), which
// createEngine({ model: id }) and Pipit.load(id) accept by id.

import data from './catalog.json' with { type: 'json' };

export interface CatalogEntry {
  /** What to pass as the model: `createEngine({ model: 'smollm2-135m-instruct' })`. */
  readonly id: string;
  /** A name to show people. */
  readonly name: string;
  /** Where the GGUF file is downloaded from (a Hugging Face resolve URL). */
  readonly url: string;
  /** The weights' quantization, as llama.cpp names it (Q8_0, Q4_K_M, F32...). */
  readonly quant: string;
  /** Parameter count as people write it: '135M', '1.1B'. */
  readonly params: string;
  /** The GGUF's general.architecture. */
  readonly architecture: string;
  /** SPDX-style licence id of the weights. */
  readonly license: string;
  /** The chat template the model was tuned with (a pipit template name), or null for a base model. */
  readonly chatTemplate: string | null;
  /** File size in bytes, or null where it was not verified. */
  readonly sizeBytes: number | null;
  /** SHA-256 of the file (lowercase hex), checked on load; null where it was not verified. */
  readonly sha256: string | null;
  readonly description: string;
}

function freezeEntries(entries: CatalogEntry[]): readonly CatalogEntry[] {
  return Object.freeze(entries.map((entry) => Object.freeze({ ...entry })));
}

/** The models pipit knows by name, in the order of models/catalog.json. */
export const catalog: readonly CatalogEntry[] = freezeEntries(data.models as CatalogEntry[]);

/** The catalog entry whose id is `id` (case-insensitive), or undefined. */
export function findCatalogEntry(id: string): CatalogEntry | undefined {
  const wanted = id.toLowerCase();
  return catalog.find((entry) => entry.id === wanted);
}
