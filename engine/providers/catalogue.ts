import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProviderDocument } from '../types/provider.generated.js';
import { packageRoot } from '../lib/package-root.js';

/**
 * The bundled catalogue as validated by the build: for each providers/ file that had no
 * problem, its content hash and its provider documents. Parsing the catalogue's YAML costs
 * about half a second per CLI run, more than validating a typical repository; a file whose
 * hash no longer matches is parsed and checked normally, so the snapshot can never hide a problem.
 */
export interface CatalogueSnapshot {
  readonly version: 1;
  readonly files: Record<string, { readonly sha256: string; readonly providers: ProviderDocument[] }>;
}

export const catalogueSnapshotPath = (): string => join(packageRoot, 'dist', 'providers', 'catalogue.json');

/** Hex SHA-256 of a file's bytes. */
export function hashBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads the snapshot, or returns undefined when there is none or it is unreadable. */
export function readCatalogueSnapshot(): CatalogueSnapshot | undefined {
  let text: string;
  try {
    text = readFileSync(catalogueSnapshotPath(), 'utf8');
  } catch {
    // No snapshot (running from sources, or before the first build): parse the catalogue.
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as CatalogueSnapshot;
    return parsed.version === 1 && parsed.files && typeof parsed.files === 'object' ? parsed : undefined;
  } catch {
    // A damaged snapshot is only a lost optimisation: the catalogue is parsed instead.
    return undefined;
  }
}
