// Types of catalog.json (models/catalog.json, copied to web/lib by the build).
declare const catalog: {
  version: number;
  models: Array<{
    id: string;
    name: string;
    url: string;
    quant: string;
    params: string;
    architecture: string;
    license: string;
    chatTemplate: string | null;
    sizeBytes: number | null;
    sha256: string | null;
    description: string;
  }>;
};
export = catalog;
