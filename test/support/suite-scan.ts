import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { SecretScan } from './secret-scan.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Folder where test files leave state files, logs and the secrets they used (see suite-record.ts). */
    suiteScanDir: string;
  }
}

/**
 * Global setup: makes the folder test files fill through `keepForSuiteScan`, and after the whole
 * suite scans every kept SQLite file and log for every kept secret and personal-data sample (raw,
 * URL-, form- and base64-encoded). Any occurrence fails the run; so does a scan with nothing in it.
 */
export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-suite-scan-'));
  project.provide('suiteScanDir', dir);
  return () => {
    try {
      const scan = new SecretScan();
      const names = readdirSync(dir);
      let files = 0;
      for (const name of names) {
        if (name.endsWith('.secrets.json')) {
          for (const secret of JSON.parse(readFileSync(join(dir, name), 'utf8')) as string[]) scan.secret(secret);
        } else {
          files += 1;
          // latin1 keeps every byte as one character, so binary pages are searched as they are.
          scan.text(name, readFileSync(join(dir, name)).toString('latin1'));
        }
      }
      const { secrets } = scan.counts();
      // Only when the suite ran the tests that keep files: a filtered run (one test file) skips the scan.
      if (files === 0 && secrets === 0) return;
      if (files === 0 || secrets === 0) {
        process.exitCode = 1;
        throw new Error(`suite redaction scan is vacuous: ${files} files, ${secrets} secrets`);
      }
      try {
        scan.assertClean();
      } catch (error) {
        // vitest reports an error thrown by a global teardown but still exits 0: set the code.
        process.exitCode = 1;
        throw error;
      }
      process.stdout.write(`suite redaction scan: ${files} state files and logs, ${secrets} secrets and personal-data samples, no occurrence\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}
