import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ProviderDocument, ProviderOperation } from '../../engine/types/provider.generated.js';

/** The repository's providers/ folder. */
export const providersDir = join(import.meta.dirname, '..', '..', 'providers');

/**
 * The bundled catalogue, parsed straight from providers/*.yaml (merge keys on, as the manifest
 * reader has them), by provider name. Tests read it this way so they see the files as they are
 * now, not a build snapshot.
 */
let loaded: Map<string, ProviderDocument> | undefined;

export function loadBundledProviders(): Map<string, ProviderDocument> {
  if (loaded !== undefined) return structuredClone(loaded);
  const providers = new Map<string, ProviderDocument>();
  for (const file of readdirSync(providersDir).filter((name) => /\.ya?ml$/.test(name)).sort()) {
    for (const document of parseAllDocuments(readFileSync(join(providersDir, file), 'utf8'), { merge: true })) {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]!.message}`);
      const value = document.toJS({ maxAliasCount: -1 }) as ProviderDocument | null;
      if (value?.kind === 'Provider') providers.set(value.metadata.name, value);
    }
  }
  loaded = providers;
  return structuredClone(providers);
}

/** One bundled provider; throws when it does not exist. */
export function bundledProvider(name: string): ProviderDocument {
  const provider = loadBundledProviders().get(name);
  if (provider === undefined) throw new Error(`no bundled provider ${name}`);
  return provider;
}

/** A provider document around the given operations, for shapes the catalogue does not have. */
export function providerDocument(spec: Partial<ProviderDocument['spec']>, operations: Record<string, ProviderOperation>): ProviderDocument {
  return {
    apiVersion: 'patchbay/v1',
    kind: 'Provider',
    metadata: { name: 'acme' },
    spec: { displayName: 'Acme', auth: [{ type: 'none' }], baseUrl: 'https://api.acme.test', ...spec, operations },
  };
}
