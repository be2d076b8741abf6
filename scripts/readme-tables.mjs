// Regenerates the README tables that mirror the code: the error codes (from dist/diag/codes.js)
// and the provider catalogue (from dist/providers/catalogue.json). test/readme.test.ts fails when
// either is stale, and points here. Run after `npm run build`: `node scripts/readme-tables.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const readmePath = `${root}README.md`;
const { codes } = await import(new URL('../dist/diag/codes.js', import.meta.url).href);
const { renderCatalogueTable } = await import(new URL('../dist/providers/catalogue-table.js', import.meta.url).href);
const { readCatalogueSnapshot } = await import(new URL('../dist/providers/catalogue.js', import.meta.url).href);

const escape = (text) => text.replaceAll('|', '\\|');
const errorTable = [
  '| code | severity | retry | meaning |',
  '|---|---|---|---|',
  ...Object.entries(codes).map(([code, entry]) => `| \`${code}\` | ${entry.severity} | ${entry.retry} | ${escape(entry.summary)} |`),
].join('\n');

const snapshot = readCatalogueSnapshot();
if (snapshot === undefined) throw new Error('dist/providers/catalogue.json is missing: run `npm run build` first');
const providers = Object.values(snapshot.files).flatMap((file) => file.providers);
const catalogueTable = renderCatalogueTable(providers);

function replaceBetween(text, start, end, body) {
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`README.md lacks the ${start} … ${end} markers`);
  return `${text.slice(0, from + start.length)}\n${body}\n${text.slice(to)}`;
}

let readme = readFileSync(readmePath, 'utf8');
readme = replaceBetween(readme, '<!-- error-codes:start -->', '<!-- error-codes:end -->', errorTable);
readme = replaceBetween(readme, '<!-- catalogue:start -->', '<!-- catalogue:end -->', catalogueTable);
writeFileSync(readmePath, readme);
console.log(`README.md: ${Object.keys(codes).length} error codes, ${providers.length} providers`);
