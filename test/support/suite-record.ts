import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { inject } from 'vitest';

/**
 * Keeps what a test wrote for the scan that runs after the whole suite (suite-scan.ts): copies of
 * state files (with their -wal, when one is left), log texts, and the secrets and personal-data
 * samples that must appear in none of them. Call it after the store is closed.
 */
export function keepForSuiteScan(kept: { readonly label: string; readonly files?: readonly string[]; readonly logs?: readonly string[]; readonly secrets: readonly string[] }): void {
  const dir = inject('suiteScanDir');
  const tag = `${kept.label.replace(/[^A-Za-z0-9-]+/g, '-')}-${randomBytes(4).toString('hex')}`;
  for (const file of kept.files ?? []) {
    for (const path of [file, `${file}-wal`]) {
      if (existsSync(path)) copyFileSync(path, join(dir, `${tag}-${basename(path)}`));
    }
  }
  (kept.logs ?? []).forEach((text, index) => writeFileSync(join(dir, `${tag}-${index}.log`), text));
  writeFileSync(join(dir, `${tag}.secrets.json`), JSON.stringify(kept.secrets));
}
