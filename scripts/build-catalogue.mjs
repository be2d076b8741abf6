#!/usr/bin/env node
// Validates the bundled provider catalogue with the compiled engine and writes
// dist/providers/catalogue.json: the documents of every file that has no problem, keyed by the
// file's SHA-256 (see engine/providers/catalogue.ts). Files with problems are left out, so the
// CLI parses and reports them at run time; their diagnostics are printed here too.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const { validateManifests } = await import(join(root, 'dist', 'manifest', 'validate.js'));
const { hashBytes, catalogueSnapshotPath } = await import(join(root, 'dist', 'providers', 'catalogue.js'));

const result = await validateManifests({
  paths: [join(root, 'providers')],
  bundledProviders: false,
  providerDirs: [],
  cwd: root,
  catalogueSnapshot: false,
});
const broken = new Set(result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.file));
for (const d of result.diagnostics) {
  process.stderr.write(`${d.file}:${d.start.line}:${d.start.column}: ${d.severity} ${d.code}: ${d.message}\n`);
}
const files = {};
for (const provider of result.registry.values()) {
  const file = provider.source.file;
  if (broken.has(file)) continue;
  const absolute = join(root, file);
  const key = relative(root, absolute);
  files[key] ??= { sha256: hashBytes(readFileSync(absolute)), providers: [] };
  files[key].providers.push(provider.document);
}
const target = catalogueSnapshotPath();
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, JSON.stringify({ version: 1, files }));
process.stdout.write(`catalogue snapshot: ${Object.keys(files).length} files, ${broken.size} left out\n`);
