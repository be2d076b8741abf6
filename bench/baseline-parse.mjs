// Baseline for the validation benchmark: what bare Node.js costs to start, read every
// manifest in a folder and parse it with the `yaml` package (`parseDocument`, no
// validation). Usage: node bench/baseline-parse.mjs <dir>
// Prints `{"files":n,"documents":n}` and exits 0, or 1 if a file does not parse.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node bench/baseline-parse.mjs <dir>\n');
  process.exit(2);
}

const files = readdirSync(dir)
  .filter((name) => name.endsWith('.yaml') || name.endsWith('.yml'))
  .sort();

let documents = 0;
let failures = 0;
for (const name of files) {
  const document = parseDocument(readFileSync(join(dir, name), 'utf8'));
  if (document.errors.length > 0) failures += 1;
  else documents += 1;
}

process.stdout.write(`${JSON.stringify({ files: files.length, documents })}\n`);
process.exitCode = failures > 0 ? 1 : 0;
