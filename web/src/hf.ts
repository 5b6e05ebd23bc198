// Model names the loader accepts besides plain URLs and paths: the `hf://` shorthand for a file
// in a Hugging Face repository, and the ids of models/catalog.json.

import { InvalidArgumentError } from './errors.js';

const HF_RESOLVE_BASE = 'https://huggingface.co';

/**
 * `hf://owner/repo/path/file.gguf` or `hf://owner/repo@revision/path/file.gguf` as the
 * https URL Hugging Face serves the file from (revision: a branch, tag or commit; default main).
 * Any other text comes back unchanged.
 */
export function resolveHfUrl(text: string): string {
  if (!/^hf:\/\//i.test(text)) return text;
  const rest = text.slice('hf://'.length);
  const match = /^([^/@]+)\/([^/@]+)(?:@([^/]+))?\/(.+)$/.exec(rest);
  if (!match) {
    throw new InvalidArgumentError(
      `${text} is not a Hugging Face file: write hf://owner/repo/file.gguf or ` +
        'hf://owner/repo@revision/file.gguf',
    );
  }
  const [, owner, repo, revision, file] = match as unknown as [string, string, string, string | undefined, string];
  if (file.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new InvalidArgumentError(`${text}: the file path inside the repository is malformed`);
  }
  const encodedFile = file.split('/').map(encodeURIComponent).join('/');
  const rev = encodeURIComponent(revision ?? 'main');
  return `${HF_RESOLVE_BASE}/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/resolve/${rev}/${encodedFile}`;
}
